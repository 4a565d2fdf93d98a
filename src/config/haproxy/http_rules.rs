//! `http-request`, `http-response`, `monitor-uri`, `errorfile` and `errorfiles` lines of a
//! proxy section (the rules are kept as written and compiled by `rules::compile`, with the
//! proxy's `acl` lines).

use super::draft::{Draft, Kind};
use crate::config::report::Report;

/// Statuses `errorfile` may replace (HAProxy's list).
pub const ERRORFILE_CODES: [u16; 17] = [
    200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429, 500, 501, 502, 503, 504,
];

/// Handles one of these keywords; returns whether it was taken (errors are reported).
pub fn keyword(draft: &mut Draft, words: &[String], line: usize, report: &mut Report) -> bool {
    let key = words[0].as_str();
    let in_defaults = draft.kind == Kind::Defaults;
    match key {
        "http-request" | "http-response" if in_defaults => {
            report.error(line, format!("'{key}' is not allowed in a defaults section (as in HAProxy 2.6): write it in the frontend, backend or listen section"));
            false
        }
        "http-request" | "http-response" => {
            // Compiled with the proxy's `acl` and `tcp-request` lines, in file order, so
            // all of them share one ACL namespace (see `rules::compile`).
            draft.rule_lines.push((words.to_vec(), line));
            true
        }
        "monitor-uri" => {
            match words.get(1) {
                Some(uri) if uri.starts_with('/') && words.len() == 2 => {
                    if !draft.kind.has_frontend() {
                        report.warn(line, "'monitor-uri' is ignored in a backend section (it answers on frontends)");
                        return false;
                    }
                    draft.http.rules.monitor_uri = Some(uri.clone());
                    true
                }
                _ => {
                    report.error(line, "'monitor-uri' needs one path starting with '/'");
                    false
                }
            }
        }
        "errorfile" => match super::http_errors::code_and_file(words) {
            Ok((code, bytes, path)) => {
                let files = &mut draft.http.rules.errorfiles;
                files.retain(|(c, _, _)| *c != code);
                files.push((code, bytes, path));
                true
            }
            Err(e) => {
                report.error(line, e);
                false
            }
        },
        _ => errorfiles(draft, words, line, report),
    }
}

/// `errorfiles <name> [<code>...]`: the files of an `http-errors` section (those of the
/// codes listed, else all) replace the proxy's, as if written one `errorfile` each.
fn errorfiles(draft: &mut Draft, words: &[String], line: usize, report: &mut Report) -> bool {
    let Some(name) = words.get(1) else {
        report.error(
            line,
            "'errorfiles' needs the name of an http-errors section",
        );
        return false;
    };
    let sections = std::sync::Arc::clone(&draft.http_errors);
    let Some(section) = sections.iter().find(|s| s.name == *name) else {
        report.error(
            line,
            format!(
                "'errorfiles {name}': no http-errors section named '{name}'{}",
                crate::config::suggest::hint(name, sections.iter().map(|s| s.name.as_str()))
            ),
        );
        return false;
    };
    let mut codes = Vec::new();
    for word in &words[2..] {
        match word.parse::<u16>() {
            Ok(c) if ERRORFILE_CODES.contains(&c) => codes.push(c),
            _ => {
                report.error(line, format!("'errorfiles {name} {word}': warren (as HAProxy) replaces only these statuses: {ERRORFILE_CODES:?}"));
                return false;
            }
        }
    }
    for code in &codes {
        if !section.files.iter().any(|(c, _, _)| c == code) {
            // HAProxy's warning: the status keeps its current page.
            report.warn(line, format!("'errorfiles {name} {code}': the http-errors section '{name}' has no errorfile for {code}"));
        }
    }
    let files = &mut draft.http.rules.errorfiles;
    for (code, bytes, path) in &section.files {
        if codes.is_empty() || codes.contains(code) {
            files.retain(|(c, _, _)| c != code);
            files.push((*code, bytes.clone(), path.clone()));
        }
    }
    true
}

/// Reads an HAProxy `.http` file: a complete HTTP/1.x response. Line ends in its head
/// may be bare LFs (as hand-written files often have); they are sent as CRLF.
/// An empty file (HAProxy's `/dev/null` idiom) is an empty answer: the connection closes
/// without one.
pub fn errorfile(path: &str) -> Result<Vec<u8>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("cannot read errorfile '{path}': {e}"))?;
    if raw.is_empty() {
        return Ok(raw);
    }
    if !(raw.starts_with(b"HTTP/1.0 ") || raw.starts_with(b"HTTP/1.1 ")) {
        return Err(format!("errorfile '{path}' must hold a whole HTTP response, starting with 'HTTP/1.0' or 'HTTP/1.1'"));
    }
    let (head_end, sep) = match (find(&raw, b"\r\n\r\n"), find(&raw, b"\n\n")) {
        (Some(a), Some(b)) if b < a => (b, 2),
        (Some(a), _) => (a, 4),
        (None, Some(b)) => (b, 2),
        (None, None) => {
            return Err(format!(
                "errorfile '{path}' has no empty line after its headers"
            ))
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).replace("\r\n", "\n");
    let mut out = head.replace('\n', "\r\n").into_bytes();
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(&raw[head_end + sep..]);
    Ok(out)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
