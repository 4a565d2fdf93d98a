//! Evaluating HTTP ACLs and conditions (`config::rules`) against a request or response
//! as the rules have changed it so far (a header set by one rule is seen by the next).
//!
//! Merging with the TCP side's ACLs: the TCP evaluator answers `src` (and its own
//! fetches) from the connection; this one answers the HTTP fetches from the message. A
//! unified evaluator takes a `Subject` with an optional message, and `fetch` below
//! becomes the HTTP arm of one `match` over the unified `Fetch` enum.

use std::borrow::Cow;
use std::net::IpAddr;

use super::auth;
use super::head::Head;
use super::rewrite::Edit;
use crate::config::rules::in_network;
use crate::config::rules::{Condition, Fetch, MatchKind, Matcher};

/// What a condition is evaluated against.
pub struct Subject<'a> {
    pub request: &'a Head,
    /// Changes the request's rules made so far.
    pub request_edits: &'a [Edit],
    /// For `http-response` rules: the response and its changes so far.
    pub response: Option<(&'a Head, &'a [Edit])>,
    pub client: IpAddr,
    pub tls: bool,
}

/// The values of header `name` in `head` as changed by `edits`, split on commas (as
/// HAProxy's `hdr()` does).
pub fn header_values<'h>(head: &'h Head, edits: &'h [Edit], name: &str) -> Vec<Cow<'h, [u8]>> {
    let mut out: Vec<Cow<'h, [u8]>> = Vec::new();
    let mut push = |v: Cow<'h, [u8]>| {
        for part in v.split(|b| *b == b',') {
            let part = trim(part);
            if !part.is_empty() {
                out.push(Cow::Owned(part.to_vec()));
            }
        }
    };
    for (index, (n, v)) in head.headers().enumerate() {
        if !n.eq_ignore_ascii_case(name.as_bytes()) {
            continue;
        }
        let mut value: Option<Cow<'h, [u8]>> = Some(Cow::Borrowed(v));
        for e in edits {
            match e {
                Edit::Remove(i) if *i == index => value = None,
                Edit::Replace(i, v) if *i == index => value = Some(Cow::Borrowed(v)),
                _ => {}
            }
        }
        if let Some(v) = value {
            push(v);
        }
    }
    for e in edits {
        let (n, v) = match e {
            Edit::Add(n, v) => (*n, v),
            Edit::AddNamed(n, v) => (n.as_str(), v),
            _ => continue,
        };
        if n.eq_ignore_ascii_case(name) {
            push(Cow::Borrowed(v));
        }
    }
    out
}

/// The request target as the rules left it.
pub fn target<'h>(head: &'h Head, edits: &'h [Edit]) -> &'h [u8] {
    edits
        .iter()
        .rev()
        .find_map(|e| match e {
            Edit::SetTarget(t) => Some(&t[..]),
            _ => None,
        })
        .unwrap_or(head.target().as_bytes())
}

/// The path of a target: no query string, no scheme and authority (absolute form).
pub fn path(target: &[u8]) -> &[u8] {
    let mut t = target;
    for scheme in [&b"http://"[..], b"https://"] {
        if t.len() > scheme.len() && t[..scheme.len()].eq_ignore_ascii_case(scheme) {
            let rest = &t[scheme.len()..];
            t = rest
                .iter()
                .position(|b| *b == b'/')
                .map_or(b"/", |i| &rest[i..]);
        }
    }
    let end = t.iter().position(|b| *b == b'?').unwrap_or(t.len());
    &t[..end]
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end.max(start)]
}

/// What a fetch returns: text values, or a truth value.
pub enum Value<'a> {
    Text(Vec<Cow<'a, [u8]>>),
    Bool(bool),
    Addr(IpAddr),
}

/// Evaluates one fetch.
pub fn fetch<'a>(f: &Fetch, s: &'a Subject<'a>) -> Value<'a> {
    match f {
        Fetch::Path => Value::Text(vec![Cow::Borrowed(path(target(
            s.request,
            s.request_edits,
        )))]),
        Fetch::Method => Value::Text(vec![Cow::Borrowed(s.request.method().as_bytes())]),
        Fetch::Hdr(name) => match s.response {
            Some((res, edits)) => Value::Text(header_values(res, edits, name)),
            None => Value::Text(header_values(s.request, s.request_edits, name)),
        },
        Fetch::HttpAuth(list) => Value::Bool(
            header_values(s.request, s.request_edits, "authorization")
                .first()
                .and_then(|_| {
                    // The whole header (commas are part of the credentials).
                    s.request
                        .headers()
                        .find(|(n, _)| n.eq_ignore_ascii_case(b"authorization"))
                        .and_then(|(_, v)| auth::basic(v))
                })
                .is_some_and(|(u, p)| auth::check(list, &u, &p)),
        ),
        Fetch::Src => Value::Addr(s.client),
        Fetch::SslFc => Value::Bool(s.tls),
        Fetch::Const(b) => Value::Bool(*b),
    }
}

/// Whether one ACL line matches.
pub fn matches(m: &Matcher, s: &Subject<'_>) -> bool {
    match fetch(&m.fetch, s) {
        Value::Bool(b) => match m.kind {
            MatchKind::Found => true,
            _ => b,
        },
        Value::Addr(ip) => match m.kind {
            MatchKind::Found => true,
            _ => m.networks.iter().any(|n| in_network(*n, ip)),
        },
        Value::Text(values) => values.iter().any(|v| text_matches(m, v)),
    }
}

fn text_matches(m: &Matcher, value: &[u8]) -> bool {
    if m.kind == MatchKind::Found {
        return true;
    }
    if m.kind == MatchKind::Reg {
        let text = String::from_utf8_lossy(value);
        return m.regexes.iter().any(|r| r.0.is_match(&text));
    }
    m.patterns.iter().any(|p| {
        let p = p.as_bytes();
        let eq = |a: &[u8], b: &[u8]| {
            if m.ignore_case {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        match m.kind {
            MatchKind::Str => eq(value, p),
            MatchKind::Beg => value.len() >= p.len() && eq(&value[..p.len()], p),
            MatchKind::End => value.len() >= p.len() && eq(&value[value.len() - p.len()..], p),
            MatchKind::Sub => p.is_empty() || value.windows(p.len()).any(|w| eq(w, p)),
            _ => false,
        }
    })
}

/// Whether a rule's condition holds (no condition: always).
pub fn holds(c: Option<&Condition>, s: &Subject<'_>) -> bool {
    let Some(c) = c else { return true };
    let any = c.any_of.iter().any(|all| {
        all.iter().all(|t| {
            let hit = t.matchers.iter().any(|m| matches(m, s));
            hit != t.negate
        })
    });
    any != c.unless
}
