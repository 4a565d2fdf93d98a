//! warren's own format: TOML read with serde, unknown keys refused (`deny_unknown_fields`).
//!
//! ```text
//! text ──serde──▶ raw tables (Options, spans) ──build, fill defaults──▶ Config + lines
//! ```
//!
//! Syntax and type errors come from the `toml` crate with its span; semantic errors (an
//! unknown backend, a bad duration) use the span of the offending value, so both carry
//! `file:line`. The keys mirror HAProxy's keywords, so `warren convert` output reads
//! naturally to someone who knows `haproxy.cfg`.

use toml::Spanned;

mod build;
mod check;
mod dns;
mod http;
mod logs;
mod raw;
mod servers;
mod values;

use super::model::Config;
use super::report::Report;
use super::validate::Origins;
use raw::File;

/// Turns byte offsets into 1-based line numbers.
struct Lines<'a>(&'a str);

impl Lines<'_> {
    fn of(&self, offset: usize) -> usize {
        let end = offset.min(self.0.len());
        let mut before = &self.0.as_bytes()[..end];
        // The end of a file that ends with a newline is on its last line (an unclosed
        // array is reported there), not on a line after it that editors do not show.
        if end == self.0.len() {
            before = before.strip_suffix(b"\n").unwrap_or(before);
        }
        before.iter().filter(|b| **b == b'\n').count() + 1
    }
    fn span<T>(&self, s: &Spanned<T>) -> usize {
        self.of(s.span().start)
    }
}

/// Parses `text`; `None` when the TOML itself could not be read (the error is in `report`).
pub(crate) fn parse(text: &str, report: &mut Report) -> Option<(Config, Origins)> {
    let lines = Lines(text);
    let file: File = match toml::from_str(text) {
        Ok(f) => f,
        Err(e) => {
            let line = e.span().map(|s| lines.of(s.start)).unwrap_or(0);
            let on_line = text.lines().nth(line.saturating_sub(1)).unwrap_or("");
            let message = syntax_message(text, &e);
            // serde quotes the offending value ("invalid type: integer `1234`"); on a line
            // holding a secret that value may be the password, and errors reach the logs.
            let message = if holds_secret(on_line) {
                hide_values(&message)
            } else {
                message
            };
            report.error(line, message);
            return None;
        }
    };
    let mut b = Builder {
        lines,
        report,
        userlists: Vec::new(),
    };
    Some(b.build(file))
}

/// A TOML line that may carry a password or a secret header value.
fn holds_secret(line: &str) -> bool {
    ["password", "value", "auth"]
        .iter()
        .any(|k| line.contains(k))
}

/// Replaces every quoted value in a parser message (`` `…` `` or `"…"`) by "(hidden)".
fn hide_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quote: Option<char> = None;
    for c in message.chars() {
        match quote {
            Some(q) if c == q => {
                out.push_str("(hidden)");
                quote = None;
            }
            Some(_) => {}
            None if c == '`' || c == '"' => quote = Some(c),
            None => out.push(c),
        }
    }
    out
}

/// The TOML parser's message, or, where it has none (a control character in a comment
/// gets an empty one), what it stopped at: a diagnostic must always say what is wrong.
fn syntax_message(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    if !message.is_empty() {
        return message.to_string();
    }
    match e
        .span()
        .and_then(|s| text.get(s.start..))
        .and_then(|rest| rest.chars().next())
    {
        Some(c) if c.is_control() => {
            format!("invalid character U+{:04X} (control characters are allowed only as escapes in strings)", u32::from(c))
        }
        Some(c) => format!("invalid TOML: unexpected {c:?}"),
        None => "invalid TOML: unexpected end of file".to_string(),
    }
}

/// Turns the raw tables into the model, reporting each mistake at its line.
struct Builder<'a, 'r> {
    lines: Lines<'a>,
    report: &'r mut Report,
    /// The `[[userlist]]` tables, read first (rules name them).
    userlists: Vec<crate::config::rules::Userlist>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mistyped_password_is_not_echoed_in_the_error() {
        let text = "[[stats]]\nname = \"s\"\nbind = [\"127.0.0.1:0\"]\nauth = [{ user = \"a\", password = 918273645 }]\n";
        let mut report = Report::new("w.toml");
        assert!(parse(text, &mut report).is_none());
        let all: Vec<String> = report.errors.iter().map(|d| d.to_string()).collect();
        assert_eq!(all.len(), 1, "{all:?}");
        assert!(
            all[0].starts_with("w.toml:4: invalid type: integer (hidden), expected a string"),
            "{all:?}"
        );
        assert!(!all[0].contains("918273645"));
        // Elsewhere the value stays, to help.
        let mut report = Report::new("w.toml");
        assert!(parse("[global]\nmaxconn = \"lots\"\n", &mut report).is_none());
        assert!(
            report.errors[0].message.contains("lots"),
            "{:?}",
            report.errors
        );
    }
}
