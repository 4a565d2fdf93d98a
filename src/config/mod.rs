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
mod convert_dns;
pub mod cpu_map;
pub mod dns;
pub mod duration;
mod error;
mod files;
mod haproxy;
mod http;
mod model;
pub mod pem;
mod report;
pub mod rules;
mod rules_actions;
mod rules_parse;
mod suggest;
pub mod tcp_check;
mod tls;
mod toml;
mod toml_rules;
mod validate;

pub use convert::to_toml;
pub use error::{ConfigError, Diagnostic};
pub use files::Source;
pub use model::*;

use std::path::{Path, PathBuf};

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
    /// `.notice` lines of the file: shown at start-up, neither warnings nor errors.
    pub notices: Vec<Diagnostic>,
}

/// A configuration that was refused, with what was found beside the errors: HAProxy
/// prints warnings even when the file is invalid, and so does warren.
#[derive(Debug)]
pub struct Rejected {
    pub error: ConfigError,
    pub warnings: Vec<Diagnostic>,
    pub notices: Vec<Diagnostic>,
}

impl From<ConfigError> for Rejected {
    fn from(error: ConfigError) -> Rejected {
        Rejected {
            error,
            warnings: Vec::new(),
            notices: Vec::new(),
        }
    }
}

/// Reads, parses and validates a configuration file, in the syntax [`detect`] finds.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    load_files(&[path.to_path_buf()]).map_err(|r| r.error)
}

/// Reads, parses and validates a configuration made of several files or directories
/// (`-f` given several times; a directory stands for its `*.cfg` files in lexical order).
/// Several files are read as HAProxy syntax, one after the other; a single file may be
/// warren's TOML. Environment variables come from the process.
pub fn load_files(paths: &[PathBuf]) -> Result<Loaded, Rejected> {
    let sources = files::read(paths)?;
    let env = |name: &str| std::env::var(name).ok();
    match sources.as_slice() {
        [] => Err(ConfigError::Invalid(vec![Diagnostic::new(
            &paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            0,
            "no configuration file found (a directory gives its *.cfg files only)",
        )])
        .into()),
        [one] if detect(&one.path, &one.text) == Syntax::Toml => {
            finish(Report::new(&one.name), |report| {
                toml::parse(&one.text, report)
            })
        }
        many => {
            if let Some(toml) = many
                .iter()
                .find(|s| detect(&s.path, &s.text) == Syntax::Toml)
            {
                return Err(ConfigError::Invalid(vec![Diagnostic::new(
                    &toml.name,
                    0,
                    "a TOML file cannot be combined with other files: give it alone, or convert the others with 'warren convert'",
                )])
                .into());
            }
            let list: Vec<(&str, &str)> = many
                .iter()
                .map(|s| (s.name.as_str(), s.text.as_str()))
                .collect();
            let report = Report::over_files(list.iter().map(|(n, t)| (*n, t.lines().count())));
            finish(report, |report| Some(haproxy::parse(&list, &env, report)))
        }
    }
}

/// Parses and validates configuration text; `file_name` is used in messages only.
/// Every error is reported at once, in file order. Environment variables come from the
/// process.
pub fn load_str(text: &str, file_name: &str, syntax: Syntax) -> Result<Loaded, ConfigError> {
    let report = Report::new(file_name);
    let env = |name: &str| std::env::var(name).ok();
    finish(report, |report| match syntax {
        Syntax::Haproxy => Some(haproxy::parse(&[(file_name, text)], &env, report)),
        Syntax::Toml => toml::parse(text, report),
    })
    .map_err(|r| r.error)
}

/// Runs a parser, then validation, and sorts what was found into the outcome.
fn finish(
    mut report: Report,
    parse: impl FnOnce(&mut Report) -> Option<(Config, validate::Origins)>,
) -> Result<Loaded, Rejected> {
    if let Some((config, origins)) = parse(&mut report) {
        validate::validate(&config, &origins, &mut report);
        report.sort();
        if report.errors.is_empty() {
            return Ok(Loaded {
                config,
                warnings: report.warnings,
                notices: report.notices,
            });
        }
    }
    report.sort();
    Err(Rejected {
        error: ConfigError::Invalid(report.errors),
        warnings: report.warnings,
        notices: report.notices,
    })
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

/// This machine's name: the default `node` name, and the host in RFC 5424 log lines.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string())
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
