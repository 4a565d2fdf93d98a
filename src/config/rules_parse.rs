//! Reading the conditions and `%[fetch]` values of `http-request`/`http-response` lines,
//! the same for both syntaxes (TOML writes these lines as strings in HAProxy's syntax),
//! through the one ACL engine (`haproxy::acl`). Every mistake comes back as a sentence;
//! the caller adds the line.

use super::haproxy::acl::{check_place, fetch as acl_fetch, Place, Scope as AclScope, Table};
use super::rules::{Format, Part};
use crate::acl::{Acl, Condition, Matcher, Named, Term};

/// Words back into one line that reads back to the same words (quoted where needed).
pub fn join(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            let plain =
                !w.is_empty() && !w.contains(|c: char| c.is_whitespace() || "#'\"\\".contains(c));
            if plain {
                w.clone()
            } else if !w.contains('\'') {
                format!("'{w}'")
            } else {
                format!("\"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a rule may refer to.
pub struct Scope<'a> {
    /// The proxy's ACLs declared so far (one namespace for TCP and HTTP rules).
    pub table: &'a Table,
    /// Backend, frontend and userlist names for fetch arguments.
    pub names: &'a AclScope<'a>,
    /// The `http-errors` sections (`deny`/`return ... errorfiles <name>`).
    pub http_errors: &'a [super::rules::HttpErrors],
    /// `http-response` rules: `res.hdr()` reads response headers; request-only actions
    /// and fetches are refused.
    pub response: bool,
}

impl Scope<'_> {
    fn place(&self) -> Place {
        if self.response {
            Place::HttpResponse
        } else {
            Place::HttpRequest
        }
    }
}

/// `if|unless <terms>`: `words[0]` is `if` or `unless`.
pub fn condition(words: &[String], scope: &Scope<'_>) -> Result<Condition, String> {
    let c = scope.table.condition(words, scope.names)?;
    check_place(&c, scope.place(), true)?;
    Ok(c)
}

/// A value with `%[fetch]` parts (`%%` is a `%`).
pub fn format(text: &str, scope: &Scope<'_>) -> Result<Format, String> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('%') {
        literal.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('%') {
            literal.push('%');
            rest = r;
            continue;
        }
        let Some(inner) = after.strip_prefix('[') else {
            return Err(format!(
                "'{text}': only %[fetch] and %% are supported in values"
            ));
        };
        let Some(end) = inner.find(']') else {
            return Err(format!("'{text}': '%[' is not closed with ']'"));
        };
        let fetch_text = &inner[..end];
        if fetch_text.contains(',') {
            return Err(format!("'{fetch_text}': converters are not supported yet"));
        }
        let (fetch, _) = acl_fetch(fetch_text, scope.names)?;
        let probe = Condition {
            unless: false,
            any_of: vec![vec![Term {
                negate: false,
                acl: std::sync::Arc::new(Named {
                    name: fetch_text.to_string(),
                    lines: vec![Acl {
                        fetch: fetch.clone(),
                        matcher: Matcher::Found,
                    }],
                }),
            }]],
            text: String::new(),
        };
        check_place(&probe, scope.place(), true)?;
        if !literal.is_empty() {
            parts.push(Part::Text(std::mem::take(&mut literal)));
        }
        parts.push(Part::Fetch(fetch));
        rest = &inner[end + 1..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        parts.push(Part::Text(literal));
    }
    Ok(Format(parts))
}
