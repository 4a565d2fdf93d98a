//! Configuration: file → typed, validated [`Config`].
//!
//! ```text
//! haproxy.cfg ──haproxy::parse──┐
//!                               ├──▶ Config + line numbers ──validate──▶ Loaded
//! warren.toml ──toml::parse─────┘                                        (config, warnings)
//! ```
//!
//! Both parsers fill defaults and resolve references (backend names, `log global`, server
//! addresses) themselves, then hand the result to [`validate`], so every check that does not
//! depend on the syntax lives in one place. Errors carry `file:line` and a plain sentence;
//! warnings (HTTP-only directives in a TCP proxy, missing timeouts) are returned beside the
//! config rather than printed, so the binary decides where they go. [`to_toml`] prints any
//! config in warren's own format (`warren convert`).

mod addr;
mod convert;
pub mod duration;
mod error;
mod haproxy;
mod http;
mod model;
mod report;
pub mod rules;
mod rules_actions;
mod rules_parse;
mod suggest;
mod toml;
mod validate;

pub use convert::to_toml;
pub use error::{ConfigError, Diagnostic};
pub use model::*;

use std::path::Path;

use report::Report;

/// Which syntax a file is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Haproxy,
    Toml,
}

/// A configuration that passed validation, with the warnings it raised.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
}

/// Reads, parses and validates a configuration file, in the syntax [`detect`] finds.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let syntax = detect(path, &text);
    load_str(&text, &path.display().to_string(), syntax)
}

/// Parses and validates configuration text; `file_name` is used in messages only.
/// Every error is reported at once, in file order.
pub fn load_str(text: &str, file_name: &str, syntax: Syntax) -> Result<Loaded, ConfigError> {
    let mut report = Report::new(file_name);
    let (config, origins) = match syntax {
        Syntax::Haproxy => haproxy::parse(text, &mut report),
        Syntax::Toml => match toml::parse(text, &mut report) {
            Some(parsed) => parsed,
            None => return Err(ConfigError::Invalid(report.errors)),
        },
    };
    validate::validate(&config, &origins, &mut report);
    report.sort();
    if report.errors.is_empty() {
        Ok(Loaded {
            config,
            warnings: report.warnings,
        })
    } else {
        Err(ConfigError::Invalid(report.errors))
    }
}

/// Tells the syntax of a file: `.toml` and `.cfg` by extension, otherwise by content
/// (a `[table]` or `key = value` line means TOML; HAProxy's lines never look like that).
pub fn detect(path: &Path, text: &str) -> Syntax {
    match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => return Syntax::Toml,
        Some("cfg") => return Syntax::Haproxy,
        _ => {}
    }
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let toml_like = line.starts_with('[')
            || line.split_once('=').is_some_and(|(key, _)| {
                let key = key.trim();
                !key.is_empty() && !key.contains(char::is_whitespace)
            });
        return if toml_like {
            Syntax::Toml
        } else {
            Syntax::Haproxy
        };
    }
    Syntax::Haproxy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_by_extension_then_content() {
        assert_eq!(detect(Path::new("a.toml"), "global"), Syntax::Toml);
        assert_eq!(detect(Path::new("a.cfg"), "[global]"), Syntax::Haproxy);
        assert_eq!(
            detect(Path::new("conf"), "# hi\n[global]\nmaxconn = 1"),
            Syntax::Toml
        );
        assert_eq!(detect(Path::new("conf"), "maxconn = 1"), Syntax::Toml);
        assert_eq!(
            detect(Path::new("conf"), "\nglobal\n  maxconn 1"),
            Syntax::Haproxy
        );
        assert_eq!(detect(Path::new("conf"), ""), Syntax::Haproxy);
    }
}
