//! `stats` directives of a proxy: the HTTP statistics page.

use super::draft::Draft;
use super::{duration, no_more_than};
use crate::config::model::{Secret, StatsUser};
use crate::config::report::Report;
use crate::config::suggest;

const KNOWN: [&str; 10] = [
    "enable",
    "uri",
    "refresh",
    "realm",
    "auth",
    "hide-version",
    "admin",
    "show-legends",
    "show-node",
    "show-desc",
];

pub fn keyword(draft: &mut Draft, words: &[String], line: usize, report: &mut Report) {
    let Some(sub) = words.get(1).map(String::as_str) else {
        report.error(
            line,
            format!("'stats' needs a directive: {}", KNOWN.join(", ")),
        );
        return;
    };
    let stats = &mut draft.stats;
    let value = words.get(2);
    match sub {
        "enable" => {
            no_more_than(words, 2, "stats enable", report, line);
        }
        "uri" => match value {
            Some(uri) if uri.starts_with('/') => stats.uri = Some(uri.clone()),
            Some(uri) => {
                report.error(
                    line,
                    format!("'stats uri' must start with '/', not '{uri}'"),
                );
                return;
            }
            None => {
                report.error(line, "'stats uri' needs a path, for example '/haproxy'");
                return;
            }
        },
        "refresh" => match report.check(line, duration("stats refresh", value)) {
            Some(d) => stats.refresh = (!d.is_zero()).then_some(d),
            None => return,
        },
        "realm" => {
            let Some(realm) = value else {
                report.error(line, "'stats realm' needs a name");
                return;
            };
            // HAProxy reads one word and drops the rest without a word; say so.
            if words.len() > 3 {
                report.warn(
                    line,
                    format!(
                        "'stats realm' takes one word, so the realm is '{realm}' as in HAProxy and '{}' is ignored; escape spaces ('{realm}\\ {}') to keep them",
                        words[3..].join(" "),
                        words[3..].join("\\ ")
                    ),
                );
            }
            stats.realm = Some(realm.clone());
        }
        "auth" => {
            let Some((user, password)) = value.and_then(|v| v.split_once(':')) else {
                report.error(line, "'stats auth' needs 'user:password'");
                return;
            };
            stats.users.push(StatsUser {
                user: user.to_string(),
                password: Secret(password.to_string()),
            });
        }
        "hide-version" => stats.hide_version = true,
        "admin" => {
            let cond: Vec<&str> = words[2..].iter().map(String::as_str).collect();
            if cond != ["if", "TRUE"] {
                report.error(line, "warren supports 'stats admin if TRUE' only (admin actions for every authenticated user)");
                return;
            }
            stats.admin = true;
        }
        // Warren's page always has its legend.
        "show-legends" => {}
        "show-node" => stats.show_node = Some(value.cloned()),
        "show-desc" => stats.show_desc = Some((words.len() > 2).then(|| words[2..].join(" "))),
        _ => {
            report.error(
                line,
                format!(
                    "unknown stats directive '{sub}'{}",
                    suggest::hint(sub, KNOWN)
                ),
            );
            return;
        }
    }
    stats.enabled = true;
    stats.own_line.get_or_insert(line);
}
