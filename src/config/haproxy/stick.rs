//! `stick-table` and `stick on src`: client stickiness by source address.
//!
//! ```text
//! stick-table type ip size 200k expire 30m [peers <name>] [nopurge]
//! stick on src [table <name>]
//! ```
//!
//! Tables that store counters (`store conn_cur,...`) serve `track-sc` rules, which warren
//! does not have; other keys than the source address are refused with a sentence.

use super::draft::{Draft, Kind};
use super::duration;
use crate::config::model::Stick;
use crate::config::report::Report;

pub fn stick_table(draft: &mut Draft, words: &[String], line: usize, report: &mut Report) {
    let mut size = None;
    let mut expire = None;
    let mut i = 1;
    while let Some(w) = words.get(i) {
        let value = words.get(i + 1);
        let result = match w.as_str() {
            "type" => match value.map(String::as_str) {
                Some("ip" | "ipv6") => Ok(()),
                other => Err(format!(
                    "'stick-table type {}' is not supported: warren sticks clients by source address ('type ip' with 'stick on src')",
                    other.unwrap_or("")
                )),
            },
            "size" => size_value(value).map(|n| size = Some(n)),
            "expire" => duration("stick-table expire", value).map(|d| expire = Some(d)),
            "peers" => {
                report.warn(line, "'stick-table ... peers' is accepted: the table stays local to this warren (instances share no state)");
                Ok(())
            }
            "nopurge" => {
                i += 1;
                continue;
            }
            "store" => Err("'stick-table ... store' keeps counters for track-sc rules, which warren does not have; remove it (stickiness needs no counters)".to_string()),
            other => Err(format!("unknown stick-table option '{other}' (warren knows type, size, expire, peers, nopurge)")),
        };
        if report.check(line, result).is_none() {
            return;
        }
        i += 2;
    }
    let Some(size) = size else {
        report.error(
            line,
            "'stick-table' needs 'size <n>' (for example 'size 100k')",
        );
        return;
    };
    let Some(expire) = expire else {
        report.error(line, "'stick-table' needs 'expire <time>' here: warren's table forgets clients after it (for example 'expire 30m')");
        return;
    };
    if !draft.kind.has_backend() {
        report.warn(line, format!("the stick-table of {} is ignored: in a frontend it serves track-sc rules, which warren does not have", draft.describe()));
        return;
    }
    draft.stick_table = Some((Stick { size, expire }, line));
}

/// `stick on src [table <name>]`.
pub fn stick(draft: &mut Draft, words: &[String], line: usize, report: &mut Report) {
    if !draft.kind.has_backend() || draft.kind == Kind::Defaults {
        report.error(line, format!("'stick' is not allowed in {}: it belongs to the backend or listen section with the servers", draft.describe()));
        return;
    }
    match (
        words.get(1).map(String::as_str),
        words.get(2).map(String::as_str),
    ) {
        (Some("on" | "match" | "store-request"), Some("src")) => {}
        (Some("on" | "match" | "store-request"), other) => {
            report.error(line, format!("'stick {} {}' is not supported: warren sticks on the source address ('stick on src')", words[1], other.unwrap_or("")));
            return;
        }
        _ => {
            report.error(
                line,
                "'stick' takes 'on src' (warren sticks clients by source address)",
            );
            return;
        }
    }
    match words.get(3).map(String::as_str) {
        None => {}
        Some("table") if words.len() == 5 && words[4] == draft.name => {}
        Some(other) => {
            report.error(line, format!("'stick on src {other} ...' is not supported: warren uses the backend's own stick-table, without conditions"));
            return;
        }
    }
    draft.stick_on = Some(line);
}

/// A size with HAProxy's k/m/g suffixes (×1024 each, as its parser reads them).
fn size_value(value: Option<&String>) -> Result<u32, String> {
    let Some(v) = value else {
        return Err("'size' needs a number (for example 100k)".into());
    };
    let (digits, mult) = match v.chars().last() {
        Some('k' | 'K') => (&v[..v.len() - 1], 1024u64),
        Some('m' | 'M') => (&v[..v.len() - 1], 1024 * 1024),
        Some('g' | 'G') => (&v[..v.len() - 1], 1024 * 1024 * 1024),
        _ => (v.as_str(), 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("'size {v}' is not a table size such as 100000 or 200k"))
}
