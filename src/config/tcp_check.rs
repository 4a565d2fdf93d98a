//! `option tcp-check` and its `tcp-check` rules: a scripted health check (connect, send,
//! expect), the way many RabbitMQ users write their AMQP check in HAProxy:
//!
//! ```text
//! option tcp-check
//! tcp-check connect port 5672
//! tcp-check send-binary 414d5150 00000901      # "AMQP" 0-9-1
//! tcp-check expect binary 000a000a             # connection.start (class 10, method 10)
//! ```
//!
//! The lines are parsed here (both syntaxes: warren's TOML keeps them as strings) and run
//! by `health::tcp_check`.

use std::fmt;

/// One `tcp-check` rule.
#[derive(Debug, Clone, PartialEq)]
pub enum TcpStep {
    /// `connect [port <n>] [ssl] [send-proxy]`: (re)connect, to another port if given.
    Connect {
        port: Option<u16>,
        ssl: bool,
        send_proxy: bool,
    },
    /// `send <string>` / `send-binary <hex>`.
    Send(Vec<u8>),
    /// `expect [!] string|rstring|binary|rbinary <pattern>`.
    Expect { negate: bool, pattern: Pattern },
}

/// What an `expect` looks for in the bytes received since the previous `expect`.
#[derive(Debug, Clone)]
pub enum Pattern {
    String(Vec<u8>),
    Binary(Vec<u8>),
    /// A regex over the bytes as text.
    Rstring(regex::bytes::Regex),
    /// A regex over the bytes written as upper-case hex, as HAProxy matches `rbinary`.
    Rbinary(regex::Regex),
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        match (self, other) {
            (Pattern::String(a), Pattern::String(b)) | (Pattern::Binary(a), Pattern::Binary(b)) => {
                a == b
            }
            (Pattern::Rstring(a), Pattern::Rstring(b)) => a.as_str() == b.as_str(),
            (Pattern::Rbinary(a), Pattern::Rbinary(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

impl Pattern {
    pub fn matches(&self, data: &[u8]) -> bool {
        match self {
            Pattern::String(p) | Pattern::Binary(p) => {
                p.is_empty() || data.windows(p.len()).any(|w| w == p.as_slice())
            }
            Pattern::Rstring(r) => r.is_match(data),
            Pattern::Rbinary(r) => r.is_match(&hex(data)),
        }
    }
}

/// As HAProxy names a pattern in check messages: a string itself, `(binary)`, `(regex)`.
impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::String(p) => write!(f, "'{}'", String::from_utf8_lossy(p)),
            Pattern::Binary(_) => f.write_str("(binary)"),
            Pattern::Rstring(_) | Pattern::Rbinary(_) => f.write_str("(regex)"),
        }
    }
}

/// One rule, with the `comment` that names it in messages.
#[derive(Debug, Clone, PartialEq)]
pub struct TcpRule {
    pub step: TcpStep,
    pub comment: Option<String>,
}

/// A whole `option tcp-check` script. No rules: a plain connect check.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TcpCheck {
    pub rules: Vec<TcpRule>,
    /// The `tcp-check` lines as written (without the keyword), for `warren convert`.
    pub lines: Vec<String>,
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02X}")).collect()
}

fn unhex(text: &str) -> Result<Vec<u8>, String> {
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if !clean.len().is_multiple_of(2) || !clean.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "'{text}' is not hexadecimal bytes (an even number of 0-9a-f digits)"
        ));
    }
    (0..clean.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&clean[i..i + 2], 16).map_err(|e| e.to_string()))
        .collect()
}

/// Parses the words after `tcp-check`; `pending_comment` is the text of a `tcp-check
/// comment` line before it. Returns `None` for a `comment` line (its text is returned in
/// `pending_comment`).
pub fn parse(
    words: &[String],
    pending_comment: &mut Option<String>,
) -> Result<Option<TcpRule>, String> {
    let Some(action) = words.first().map(String::as_str) else {
        return Err(
            "'tcp-check' needs an action: connect, send, send-binary, expect or comment".into(),
        );
    };
    let mut rest = &words[1..];
    let mut comment = pending_comment.take();
    // `comment <text>` may end any rule.
    if let Some(i) = rest.iter().position(|w| w == "comment") {
        if action != "comment" {
            let text = rest.get(i + 1).ok_or("'comment' needs a text")?;
            if rest.len() > i + 2 {
                return Err(format!(
                    "unexpected '{}' after the comment (quote a comment with spaces)",
                    rest[i + 2]
                ));
            }
            comment = Some(text.clone());
            rest = &rest[..i];
        }
    }
    let step = match action {
        "comment" => {
            let [text] = rest else {
                return Err("'tcp-check comment' takes one text (quote it if it has spaces)".into());
            };
            *pending_comment = Some(text.clone());
            return Ok(None);
        }
        "connect" => {
            let (mut port, mut ssl, mut send_proxy) = (None, false, false);
            let mut i = 0;
            while let Some(w) = rest.get(i) {
                match w.as_str() {
                    "port" => {
                        i += 1;
                        let p = rest.get(i).ok_or("'port' needs a number")?;
                        port = Some(p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| format!("'port {p}': not a port number from 1 to 65535"))?);
                    }
                    "ssl" => ssl = true,
                    "send-proxy" => send_proxy = true,
                    // warren closes check connections at once anyway.
                    "linger" => {}
                    other => {
                        return Err(format!(
                            "'tcp-check connect {other}' is not supported: warren knows port <n>, ssl, send-proxy and linger"
                        ))
                    }
                }
                i += 1;
            }
            TcpStep::Connect { port, ssl, send_proxy }
        }
        "send" | "send-binary" => {
            let [data] = rest else {
                return Err(format!(
                    "'tcp-check {action}' takes one argument (quote a string with spaces; '-lf' forms are not supported)"
                ));
            };
            let bytes = if action == "send" {
                data.as_bytes().to_vec()
            } else {
                unhex(data)?
            };
            TcpStep::Send(bytes)
        }
        "expect" => {
            let mut rest = rest;
            let negate = rest.first().is_some_and(|w| w == "!");
            if negate {
                rest = &rest[1..];
            }
            let [kind, value] = rest else {
                return Err("'tcp-check expect' takes [!] string|rstring|binary|rbinary <pattern> (other options such as min-recv or on-success are not supported)".into());
            };
            let pattern = match kind.as_str() {
                "string" => Pattern::String(value.as_bytes().to_vec()),
                "binary" => Pattern::Binary(unhex(value)?),
                "rstring" => Pattern::Rstring(
                    regex::bytes::Regex::new(value).map_err(|e| format!("bad regular expression '{value}': {e}"))?,
                ),
                "rbinary" => Pattern::Rbinary(
                    regex::RegexBuilder::new(value)
                        .case_insensitive(true)
                        .build()
                        .map_err(|e| format!("bad regular expression '{value}': {e}"))?,
                ),
                other => {
                    return Err(format!(
                        "'tcp-check expect {other}' is not supported: warren knows string, rstring, binary and rbinary"
                    ))
                }
            };
            TcpStep::Expect { negate, pattern }
        }
        "send-lf" | "send-binary-lf" | "set-var" | "unset-var" => {
            return Err(format!("'tcp-check {action}' is not supported: warren knows connect, send, send-binary, expect and comment"))
        }
        other => {
            return Err(format!(
                "unknown 'tcp-check {other}'{}",
                super::suggest::hint(other, ["connect", "send", "send-binary", "expect", "comment"])
            ))
        }
    };
    Ok(Some(TcpRule { step, comment }))
}

/// A script from rule lines (warren's TOML `check = { type = "tcp-check", rules = [...] }`).
pub fn from_lines(lines: &[String]) -> Result<TcpCheck, String> {
    let none = |_: &str| None;
    let mut check = TcpCheck::default();
    let mut comment = None;
    for text in lines {
        let words = super::haproxy::words(text, &none).map_err(|e| format!("in '{text}': {e}"))?;
        if let Some(rule) = parse(&words, &mut comment).map_err(|e| format!("in '{text}': {e}"))? {
            check.rules.push(rule);
        }
        check.lines.push(text.clone());
    }
    Ok(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(line: &str) -> Result<Option<TcpRule>, String> {
        let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        parse(&words, &mut None)
    }

    #[test]
    fn rules_parse() {
        assert_eq!(
            rule("connect port 5672 send-proxy")
                .expect("ok")
                .map(|r| r.step),
            Some(TcpStep::Connect {
                port: Some(5672),
                ssl: false,
                send_proxy: true
            })
        );
        assert_eq!(
            rule("send-binary 414d5150").expect("ok").map(|r| r.step),
            Some(TcpStep::Send(b"AMQP".to_vec()))
        );
        let r = rule("expect ! string ERR comment bad")
            .expect("ok")
            .expect("rule");
        assert_eq!(r.comment.as_deref(), Some("bad"));
        assert!(matches!(r.step, TcpStep::Expect { negate: true, .. }));
        let mut pending = None;
        assert_eq!(
            parse(&["comment".into(), "hello".into()], &mut pending),
            Ok(None)
        );
        let next = parse(&["send".into(), "x".into()], &mut pending)
            .expect("ok")
            .expect("rule");
        assert_eq!(next.comment.as_deref(), Some("hello"));
        for (bad, fragment) in [
            ("send-binary 41z", "not hexadecimal"),
            ("expect status 200", "not supported"),
            ("expect string", "takes [!]"),
            ("connect port 0", "not a port"),
            ("conect", "did you mean 'connect'"),
            ("send-lf x", "not supported"),
            ("expect rstring (", "bad regular"),
        ] {
            let e = rule(bad).expect_err(bad);
            assert!(e.contains(fragment), "{bad}: {e}");
        }
    }

    #[test]
    fn patterns_match_as_haproxy() {
        let data = b"\x01\x00\x00\x00\x00\x01\xf4\x00\x0a\x00\x0aRabbitMQ";
        let p = |line: &str| match rule(line).expect("ok").map(|r| r.step) {
            Some(TcpStep::Expect { pattern, .. }) => pattern,
            other => panic!("{other:?}"),
        };
        assert!(p("expect binary 000a000a").matches(data));
        assert!(p("expect string RabbitMQ").matches(data));
        assert!(!p("expect string rabbitmq").matches(data));
        assert!(p("expect rstring Rabbit[A-Z]+$").matches(data));
        assert!(p("expect rbinary ^0100.*000a000a").matches(data));
        assert!(!p("expect binary 000b").matches(data));
    }
}
