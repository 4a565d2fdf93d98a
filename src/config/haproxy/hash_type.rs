//! `hash-type consistent|map-based [<function>] [avalanche]`: how `balance source` spreads
//! clients (`balance::source` and `balance::source_map`).

use super::draft::Draft;
use crate::config::report::Report;
use crate::config::suggest;

/// `hash-type <method> [<function>] [<modifier>]`: warren keeps its own hash function (the
/// function and `avalanche` are accepted with a warning); the method is honoured.
pub fn keyword(draft: &mut Draft, words: &[String], line: usize, report: &mut Report) {
    use crate::config::model::HashType;
    if !draft.kind.has_backend() {
        report.warn(
            line,
            format!(
                "'hash-type' is ignored in {}: it belongs to backends",
                draft.describe()
            ),
        );
        return;
    }
    let method = match words.get(1).map(String::as_str) {
        Some("consistent") => HashType::Consistent,
        Some("map-based") => HashType::MapBased,
        Some(other) => {
            report.error(
                line,
                format!(
                    "unknown hash-type '{other}': use 'consistent' or 'map-based'{}",
                    suggest::hint(other, ["consistent", "map-based"])
                ),
            );
            return;
        }
        None => {
            report.error(line, "'hash-type' needs 'consistent' or 'map-based'");
            return;
        }
    };
    for extra in &words[2.min(words.len())..] {
        match extra.as_str() {
            "sdbm" | "djb2" | "wt6" | "crc32" | "none" | "avalanche" => report.warn(line, format!("'hash-type ... {extra}' is ignored: warren hashes client addresses with its own function (the spread is as even; the server a given client lands on differs from HAProxy's)")),
            other => {
                report.error(line, format!("unknown hash-type function '{other}' (HAProxy's are sdbm, djb2, wt6, crc32, none; modifier avalanche)"));
                return;
            }
        }
    }
    draft.hash_type = Some(method);
}
