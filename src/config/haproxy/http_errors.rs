//! `http-errors` sections, read before the proxies (a proxy's `errorfiles <name>` may name
//! one defined further down, as in HAProxy):
//!
//! ```text
//! http-errors site
//!     errorfile 503 /etc/haproxy/errors/503-rabbit.http
//!     errorfile 408 /dev/null        # an empty file: close without an answer
//! ```
//!
//! The files are read once, here, as HAProxy reads them at start (and at reload).

use super::http_rules::{errorfile, ERRORFILE_CODES};
use crate::config::report::Report;
use crate::config::rules::HttpErrors;

/// Every `http-errors` section of the configuration (its preprocessed lines, with their
/// numbers); errors go to `report` with their lines.
pub fn collect(lines: &[(usize, Vec<String>)], report: &mut Report) -> Vec<HttpErrors> {
    let mut sections: Vec<HttpErrors> = Vec::new();
    let mut current: Option<HttpErrors> = None;
    for (line, words) in lines {
        let line = *line;
        let Some(first) = words.first() else { continue };
        if super::SECTIONS.contains(&first.as_str()) {
            if let Some(done) = current.take() {
                sections.push(done);
            }
            if first == "http-errors" {
                match words.get(1) {
                    Some(name) if sections.iter().any(|s| s.name == *name) => report.error(
                        line,
                        format!("an http-errors section named '{name}' already exists"),
                    ),
                    Some(name) if words.len() == 2 => {
                        current = Some(HttpErrors {
                            name: name.clone(),
                            files: Vec::new(),
                        })
                    }
                    Some(_) => report.error(line, "'http-errors' takes one name"),
                    None => report.error(line, "'http-errors' needs a name"),
                }
            }
            continue;
        }
        let Some(section) = current.as_mut() else {
            continue;
        };
        if first != "errorfile" {
            report.error(
                line,
                format!("'{first}' is not allowed in an http-errors section: it holds 'errorfile <code> <file>' lines"),
            );
            continue;
        }
        match code_and_file(words) {
            Ok((code, bytes, path)) => {
                section.files.retain(|(c, _, _)| *c != code);
                section.files.push((code, bytes, path));
            }
            Err(e) => report.error(line, e),
        }
    }
    if let Some(done) = current {
        sections.push(done);
    }
    sections
}

/// `errorfile <code> <file>`: the status (one HAProxy can answer with) and the file read.
pub fn code_and_file(words: &[String]) -> Result<(u16, Vec<u8>, String), String> {
    let (Some(code), Some(path), None) = (words.get(1), words.get(2), words.get(3)) else {
        return Err("'errorfile' needs a status code and a file".into());
    };
    let Some(code) = code
        .parse::<u16>()
        .ok()
        .filter(|c| ERRORFILE_CODES.contains(c))
    else {
        return Err(format!(
            "'errorfile {code}': warren (as HAProxy) replaces only these statuses: {ERRORFILE_CODES:?}"
        ));
    };
    Ok((code, errorfile(path)?, path.clone()))
}
