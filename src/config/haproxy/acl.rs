//! `acl` lines and `if`/`unless` conditions, compiled into [`crate::acl`]'s types: the one
//! ACL parser, for TCP and HTTP rules alike (HTTP fetches only in `mode http` proxies).
//!
//! ```text
//! acl <name> <fetch>[(<arg>)] [-i] [-f <file>] [-m <method>] [--] [<operator>] [<value>...]
//! if|unless [!]<name> [!]{ <fetch> ... } [or|'||'] ...
//! ```
//!
//! Names in fetch arguments (`nbsrv(be)`) are resolved through [`Scope`], so this runs
//! once every section is known. Like HAProxy, an ACL must be declared before a rule uses it.

use std::collections::HashMap;
use std::sync::Arc;

pub use super::fetches::{check_place, fetch, Place};
use crate::acl::{
    int_range, Acl, Condition, Fetch, IpNet, Kind, Matcher, Named, Regex, StrMatch, Term,
};
use crate::config::suggest;

/// The names a fetch argument may refer to, and whether HTTP fetches have a message to
/// read (the proxy is `mode http`).
pub struct Scope<'a> {
    pub backends: &'a HashMap<String, usize>,
    pub frontends: &'a HashMap<String, usize>,
    pub userlists: &'a [crate::config::rules::Userlist],
    pub http: bool,
}

/// The ACLs of one proxy, by name, as declared so far.
#[derive(Default)]
pub struct Table {
    named: HashMap<String, Named>,
}

impl Table {
    /// `acl <name> <expression...>` (the words after `acl`). Returns a warning, if any.
    pub fn declare(
        &mut self,
        words: &[String],
        scope: &Scope<'_>,
    ) -> Result<Option<String>, String> {
        let Some(name) = words.first() else {
            return Err(
                "'acl' needs a name, a fetch and values, for example 'acl internal src 10.0.0.0/8'"
                    .into(),
            );
        };
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "-_.:".contains(*c)))
        {
            return Err(format!("the ACL name '{name}' contains '{bad}'; use letters, digits, '-', '_', '.' and ':'"));
        }
        let (acl, warning) = expression(&words[1..], scope)?;
        self.named
            .entry(name.clone())
            .or_insert_with(|| Named {
                name: name.clone(),
                lines: Vec::new(),
            })
            .lines
            .push(acl);
        Ok(warning)
    }

    /// `if|unless <terms>`: `words` starts at `if` or `unless`.
    pub fn condition(&self, words: &[String], scope: &Scope<'_>) -> Result<Condition, String> {
        let unless = match words.first().map(String::as_str) {
            Some("if") => false,
            Some("unless") => true,
            Some(other) => return Err(format!("expected 'if' or 'unless', not '{other}'")),
            None => return Err("expected 'if' or 'unless'".into()),
        };
        let terms = &words[1..];
        if terms.is_empty() {
            return Err(format!("'{}' needs a condition", words[0]));
        }
        let mut any_of: Vec<Vec<Term>> = vec![Vec::new()];
        let mut i = 0;
        while i < terms.len() {
            let word = terms[i].as_str();
            if word == "or" || word == "||" {
                if any_of.last().is_some_and(Vec::is_empty) {
                    return Err(format!("'{word}' needs a condition on each side"));
                }
                any_of.push(Vec::new());
                i += 1;
                continue;
            }
            let (negate, rest) = match word.strip_prefix('!') {
                Some(r) => (true, r),
                None => (false, word),
            };
            let (negate, rest) = if rest.is_empty() {
                // `! name`: the negation as a word of its own.
                i += 1;
                match terms.get(i) {
                    Some(next) => (negate, next.as_str()),
                    None => return Err("'!' must be followed by an ACL".into()),
                }
            } else {
                (negate, rest)
            };
            let acl = if rest == "{" {
                let close = terms[i + 1..]
                    .iter()
                    .position(|w| w == "}")
                    .ok_or("an anonymous ACL '{' needs a closing '}' (with spaces around both)")?;
                let inner = &terms[i + 1..i + 1 + close];
                let (acl, _) = expression(inner, scope)?;
                i += close + 1;
                Arc::new(Named {
                    name: format!("{{ {} }}", inner.join(" ")),
                    lines: vec![acl],
                })
            } else {
                Arc::new(self.lookup(rest)?)
            };
            if let Some(all) = any_of.last_mut() {
                all.push(Term { negate, acl });
            }
            i += 1;
        }
        if any_of.last().is_some_and(Vec::is_empty) {
            return Err("a condition cannot end with 'or'".into());
        }
        Ok(Condition {
            unless,
            any_of,
            text: terms.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" "),
        })
    }

    fn lookup(&self, name: &str) -> Result<Named, String> {
        if let Some(named) = self.named.get(name) {
            return Ok(named.clone());
        }
        // HAProxy's predefined ACLs that make sense in a TCP proxy.
        let predefined = match name {
            "TRUE" => Some((Fetch::AlwaysTrue, Matcher::Bool)),
            "FALSE" => Some((Fetch::AlwaysFalse, Matcher::Bool)),
            "LOCALHOST" => Some((
                Fetch::Src,
                Matcher::Ip(vec![
                    IpNet::parse("127.0.0.1/8").map_err(|e| e.to_string())?,
                    IpNet::parse("::1").map_err(|e| e.to_string())?,
                ]),
            )),
            _ => name.strip_prefix("METH_").and_then(|m| {
                let methods: &[&str] = match m {
                    "GET" => &["GET", "HEAD"],
                    "POST" | "PUT" | "DELETE" | "OPTIONS" | "HEAD" | "TRACE" | "CONNECT" => &[m],
                    _ => return None,
                };
                let values = methods.iter().map(|v| v.to_string()).collect();
                Some((
                    Fetch::Method,
                    Matcher::Str {
                        how: StrMatch::Exact,
                        nocase: false,
                        values,
                    },
                ))
            }),
        };
        match predefined {
            Some((fetch, matcher)) => Ok(Named {
                name: name.to_string(),
                lines: vec![Acl { fetch, matcher }],
            }),
            None => Err(format!(
                "unknown ACL '{name}': no ACL named '{name}' is declared before this line in this section{}",
                suggest::hint(name, self.named.keys().map(String::as_str))
            )),
        }
    }
}

/// `<fetch> [flags] [operator] [values]`: one ACL expression; also returns a warning.
fn expression(words: &[String], scope: &Scope<'_>) -> Result<(Acl, Option<String>), String> {
    let Some(fetch_word) = words.first() else {
        return Err("an ACL needs a fetch, for example 'src'".into());
    };
    let (fetch, default_method) = fetch(fetch_word, scope)?;
    let mut nocase = false;
    let mut method: Option<String> = default_method.map(str::to_string);
    let mut values: Vec<String> = Vec::new();
    let mut i = 1;
    let mut explicit_end = false;
    while let Some(w) = words.get(i) {
        if !w.starts_with('-') || w.len() < 2 {
            break;
        }
        match w.as_str() {
            "-i" => nocase = true,
            "-m" => {
                i += 1;
                method = Some(words.get(i).ok_or("'-m' needs a method such as str, beg, ip or int")?.clone());
            }
            "-f" => {
                i += 1;
                let path = words.get(i).ok_or("'-f' needs a file of values, one a line")?;
                values.extend(value_file(path)?);
            }
            "-n" | "-u" => {}
            "--" => {
                explicit_end = true;
                i += 1;
                break;
            }
            other if other.parse::<i64>().is_ok() => break,
            other => {
                return Err(format!(
                    "unknown ACL flag '{other}' (warren knows -i, -f <file>, -m <method>, -n, -u and --)"
                ))
            }
        }
        i += 1;
    }
    let rest = &words[i.min(words.len())..];
    let kind = fetch.kind();
    let method = method.unwrap_or_else(|| {
        match kind {
            Kind::Ip => "ip",
            Kind::Int => "int",
            Kind::Str => "str",
            Kind::Bool => "bool",
        }
        .to_string()
    });
    let mut inline: Vec<String> = rest.to_vec();
    let mut op = None;
    if method == "int" {
        if let Some(first) = inline.first().map(String::as_str) {
            if ["eq", "ge", "gt", "le", "lt"].contains(&first) {
                op = Some(first.to_string());
                inline.remove(0);
            }
        }
    }
    values.extend(inline);
    let matcher = match method.as_str() {
        "bool" | "found" => {
            if !values.is_empty() {
                return Err(format!("'-m {method}' takes no value, but '{}' follows", values[0]));
            }
            if method == "bool" && matches!(kind, Kind::Str | Kind::Ip) {
                return Err(format!("'-m bool' applies to boolean and integer fetches, not '{fetch_word}'"));
            }
            if method == "bool" { Matcher::Bool } else { Matcher::Found }
        }
        "ip" => {
            need(kind, &[Kind::Ip], &method, fetch_word)?;
            Matcher::Ip(values.iter().map(|v| IpNet::parse(v)).collect::<Result<_, _>>()?)
        }
        "int" => {
            need(kind, &[Kind::Int, Kind::Bool], &method, fetch_word)?;
            if op.is_some() && values.len() != 1 {
                return Err(format!("'{}' takes exactly one number", op.unwrap_or_default()));
            }
            Matcher::Int(values.iter().map(|v| int_range(op.as_deref(), v)).collect::<Result<_, _>>()?)
        }
        "str" | "beg" | "end" | "sub" => {
            need(kind, &[Kind::Str], &method, fetch_word)?;
            let how = match method.as_str() {
                "str" => StrMatch::Exact,
                "beg" => StrMatch::Begin,
                "end" => StrMatch::End,
                _ => StrMatch::Sub,
            };
            let values = if nocase {
                values.iter().map(|v| v.to_lowercase()).collect()
            } else {
                values
            };
            Matcher::Str { how, nocase, values }
        }
        "reg" => {
            need(kind, &[Kind::Str], &method, fetch_word)?;
            let list = values
                .iter()
                .map(|v| {
                    regex::RegexBuilder::new(v)
                        .case_insensitive(nocase)
                        .size_limit(1 << 20)
                        .build()
                        .map(Regex)
                        .map_err(|e| format!("bad regular expression '{v}': {e}"))
                })
                .collect::<Result<_, _>>()?;
            Matcher::Reg(list)
        }
        other => {
            return Err(format!(
                "unknown match method '-m {other}' (warren knows ip, int, str, beg, end, sub, reg, bool, found){}",
                suggest::hint(other, ["ip", "int", "str", "beg", "end", "sub", "reg", "bool", "found"])
            ))
        }
    };
    let never = match &matcher {
        Matcher::Ip(v) => v.is_empty(),
        Matcher::Int(v) => v.is_empty(),
        Matcher::Str { values, .. } => values.is_empty(),
        Matcher::Reg(v) => v.is_empty(),
        Matcher::Bool | Matcher::Found => false,
    };
    // HAProxy's warning, unless `--` says the empty list is meant.
    let warning = (never && !explicit_end && !words.iter().any(|w| w == "-f")).then(|| {
        format!("the ACL on '{fetch_word}' has no value to match, so it never matches (add '--' if that is meant, use '-m found' to test existence or '-m bool' for an integer as a boolean)")
    });
    Ok((Acl { fetch, matcher }, warning))
}

fn need(kind: Kind, allowed: &[Kind], method: &str, fetch: &str) -> Result<(), String> {
    if allowed.contains(&kind) {
        return Ok(());
    }
    let what = match kind {
        Kind::Ip => "an address",
        Kind::Int => "an integer",
        Kind::Str => "a string",
        Kind::Bool => "a boolean",
    };
    Err(format!(
        "'-m {method}' cannot match '{fetch}', which gives {what}"
    ))
}

/// `-f <file>`: one value a line; blank lines and lines starting with `#` are skipped,
/// as in HAProxy.
fn value_file(path: &str) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("'-f {path}': cannot read the file: {e}"))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

/// A word as it must be written in a line to read back as the same word: as is when
/// nothing in it is special, otherwise in double quotes with HAProxy's escapes.
pub fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !"#'\"\\$".contains(c));
    if plain {
        return word.to_string();
    }
    let mut out = String::from("\"");
    for c in word.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '$' => out.push_str("\\$"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::{Facts, Sample};

    struct Client {
        src: &'static str,
        port: i64,
        sni: Option<&'static str>,
        nbsrv: i64,
    }

    impl Facts for Client {
        fn sample(&self, fetch: &Fetch) -> Sample<'_> {
            match fetch {
                Fetch::Src => Sample::Ip(self.src.parse().expect("ip")),
                Fetch::SrcPort => Sample::Int(self.port),
                Fetch::ReqSslSni | Fetch::SslFcSni => self.sni.map_or(Sample::Missing, Sample::Str),
                Fetch::SslFc => Sample::Bool(self.sni.is_some()),
                Fetch::Nbsrv(_) => Sample::Int(self.nbsrv),
                _ => Sample::Missing,
            }
        }
    }

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    fn scope_maps() -> (HashMap<String, usize>, HashMap<String, usize>) {
        let b = HashMap::from([("be".to_string(), 0), ("other".to_string(), 1)]);
        let f = HashMap::from([("fe".to_string(), 0)]);
        (b, f)
    }

    fn table(lines: &[&str]) -> Table {
        let (b, f) = scope_maps();
        let scope = Scope {
            backends: &b,
            frontends: &f,
            userlists: &[],
            http: false,
        };
        let mut t = Table::default();
        for l in lines {
            t.declare(&words(l), &scope).expect(l);
        }
        t
    }

    fn cond(t: &Table, text: &str) -> Result<Condition, String> {
        let (b, f) = scope_maps();
        t.condition(
            &words(text),
            &Scope {
                backends: &b,
                frontends: &f,
                userlists: &[],
                http: false,
            },
        )
    }

    #[test]
    fn conditions_over_declared_acls() {
        let t = table(&[
            "internal src 10.0.0.0/8 192.168.0.0/16",
            "internal src 127.0.0.1",
            "high src_port 1024:",
            "rabbit req.ssl_sni -i -m end .rabbit.example",
            "up nbsrv(be) gt 0",
        ]);
        let c = |src, port, sni, nbsrv| Client {
            src,
            port,
            sni,
            nbsrv,
        };
        let local = c("127.0.0.1", 5000, None, 1);
        let outside = c("8.8.8.8", 80, Some("a.RABBIT.example"), 0);
        let hold = |text: &str, who: &Client| cond(&t, text).expect(text).holds(who);
        assert!(hold("if internal high", &local));
        assert!(!hold("if internal high", &outside));
        assert!(hold("if internal or rabbit", &outside));
        assert!(hold("if !internal rabbit || FALSE", &outside));
        assert!(hold("unless up", &outside) && !hold("unless up", &local));
        assert!(hold("if ! internal", &outside));
        assert!(hold("if { src 8.8.0.0/16 } { src_port lt 1024 }", &outside));
        assert!(!hold("if !{ src 8.8.0.0/16 }", &outside));
        assert!(hold("if LOCALHOST TRUE", &local));
        assert!(!hold(
            "if { req_ssl_sni -m reg ^a\\.rabbit } !{ ssl_fc_sni -m found } || FALSE",
            &outside
        ));
        assert!(hold("if { req_ssl_sni -i -m reg ^a\\.rabbit }", &outside));
    }

    #[test]
    fn mistakes_say_what_to_write() {
        let t = table(&["a src 1.2.3.4"]);
        for (text, fragment) in [
            ("if b", "no ACL named 'b'"),
            ("if", "needs a condition"),
            ("if a or", "cannot end with 'or'"),
            ("if or a", "each side"),
            ("if { src 1.2.3.4", "closing '}'"),
            ("when a", "expected 'if' or 'unless'"),
        ] {
            let e = cond(&t, text).expect_err(text);
            assert!(e.contains(fragment), "{text}: {e}");
        }
        let (b, f) = scope_maps();
        let scope = Scope {
            backends: &b,
            frontends: &f,
            userlists: &[],
            http: false,
        };
        let mut t = Table::default();
        for (text, fragment) in [
            ("x hdr(host) -i a", "reads HTTP"),
            ("x src_prot 1", "did you mean 'src_port'"),
            ("x src -m beg 1", "cannot match 'src'"),
            ("x src 10.0.0.0/40", "not an address"),
            ("x src_port 9:1", "empty"),
            ("x nbsrv(nope) 1", "no backend named 'nope'"),
            ("x req.ssl_sni -m reg (", "bad regular expression"),
            ("x src,ipmask(24) 1", "converters"),
            ("x src -z", "unknown ACL flag"),
            ("x src -m nope", "unknown match method"),
            ("x ssl_fc -m bool 1", "takes no value"),
            ("x src -f /nonexistent/list", "cannot read"),
            ("bad!name src 1.2.3.4", "contains '!'"),
        ] {
            let e = t.declare(&words(text), &scope).expect_err(text);
            assert!(e.contains(fragment), "{text}: {e}");
        }
        let w = t.declare(&words("x src"), &scope).expect("valid");
        assert!(w.is_some_and(|w| w.contains("never matches")));
        let w = t.declare(&words("x src --"), &scope).expect("valid");
        assert!(w.is_none());
    }

    #[test]
    fn quoting_round_trips_through_the_tokenizer() {
        let none = |_: &str| None;
        for word in [
            "plain",
            "a b",
            "it's",
            "#x",
            r"^a\.b$",
            "",
            "$HOME",
            "a\r\nb\t\x01\"q\"\\",
        ] {
            let line = format!("x {}", quote(word));
            let got = crate::config::haproxy::tokenize::words(&line, &none).expect("valid");
            assert_eq!(got, ["x", word], "{line}");
        }
    }
}
