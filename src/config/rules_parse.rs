//! Reading `acl`, conditions and `http-request`/`http-response` actions from the words
//! of a line, the same for both syntaxes (TOML writes these lines as strings in HAProxy's
//! syntax). Every mistake comes back as a sentence; the caller adds the line.

use super::http::{is_token_byte, ForwardFor};
use super::rules::{
    Acl, Condition, Fetch, Format, MatchKind, Matcher, Part, Pattern, Term, Userlist,
};
use super::suggest;

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
    pub acls: &'a [Acl],
    pub userlists: &'a [Userlist],
    /// The `http-errors` sections (`deny`/`return ... errorfiles <name>`).
    pub http_errors: &'a [super::rules::HttpErrors],
    /// `http-response` rules: `hdr()` reads response headers; request-only actions refused.
    pub response: bool,
}

const CRITERIA: [&str; 17] = [
    "path",
    "path_beg",
    "path_end",
    "path_sub",
    "path_reg",
    "hdr",
    "hdr_beg",
    "hdr_end",
    "hdr_sub",
    "hdr_reg",
    "req.hdr",
    "res.hdr",
    "method",
    "http_auth",
    "src",
    "ssl_fc",
    "TRUE",
];

/// HAProxy's predefined ACLs that warren has.
fn predefined(name: &str) -> Option<Matcher> {
    let m = |fetch: Fetch, kind: MatchKind, patterns: &[&str]| Matcher {
        fetch,
        kind,
        ignore_case: false,
        patterns: patterns.iter().map(|p| p.to_string()).collect(),
        regexes: Vec::new(),
        networks: Vec::new(),
    };
    Some(match name {
        "TRUE" => m(Fetch::Const(true), MatchKind::Bool, &[]),
        "FALSE" => m(Fetch::Const(false), MatchKind::Bool, &[]),
        "METH_GET" => m(Fetch::Method, MatchKind::Str, &["GET", "HEAD"]),
        "METH_POST" => m(Fetch::Method, MatchKind::Str, &["POST"]),
        "METH_PUT" => m(Fetch::Method, MatchKind::Str, &["PUT"]),
        "METH_DELETE" => m(Fetch::Method, MatchKind::Str, &["DELETE"]),
        "METH_OPTIONS" => m(Fetch::Method, MatchKind::Str, &["OPTIONS"]),
        "LOCALHOST" => Matcher {
            networks: vec![("127.0.0.0".parse().ok()?, 8), ("::1".parse().ok()?, 128)],
            ..m(Fetch::Src, MatchKind::Ip, &[])
        },
        _ => return None,
    })
}

/// `<criterion> [flags] [values...]`, the body of an `acl` line or of `{ ... }`.
pub fn matcher(words: &[String], scope: &Scope<'_>) -> Result<Matcher, String> {
    let Some(criterion) = words.first() else {
        return Err("an ACL needs a criterion, for example 'path_beg /api'".into());
    };
    let (base, arg) = match criterion.split_once('(') {
        Some((b, rest)) => match rest.strip_suffix(')') {
            Some(a) => (b, Some(a)),
            None => return Err(format!("'{criterion}': unbalanced parenthesis")),
        },
        None => (criterion.as_str(), None),
    };
    let header = |a: Option<&str>| -> Result<String, String> {
        match a {
            Some(h) if !h.is_empty() && h.bytes().all(is_token_byte) => Ok(h.to_string()),
            _ => Err(format!(
                "'{criterion}' needs a header name, as in '{base}(host)'"
            )),
        }
    };
    let (fetch, mut kind) = match base {
        "path" => (Fetch::Path, MatchKind::Str),
        "path_beg" => (Fetch::Path, MatchKind::Beg),
        "path_end" => (Fetch::Path, MatchKind::End),
        "path_sub" => (Fetch::Path, MatchKind::Sub),
        "path_reg" => (Fetch::Path, MatchKind::Reg),
        "hdr" | "req.hdr" | "res.hdr" => (Fetch::Hdr(header(arg)?), MatchKind::Str),
        "hdr_beg" => (Fetch::Hdr(header(arg)?), MatchKind::Beg),
        "hdr_end" => (Fetch::Hdr(header(arg)?), MatchKind::End),
        "hdr_sub" => (Fetch::Hdr(header(arg)?), MatchKind::Sub),
        "hdr_reg" => (Fetch::Hdr(header(arg)?), MatchKind::Reg),
        "method" => (Fetch::Method, MatchKind::Str),
        "src" => (Fetch::Src, MatchKind::Ip),
        "ssl_fc" => (Fetch::SslFc, MatchKind::Bool),
        "TRUE" | "FALSE" => (Fetch::Const(base == "TRUE"), MatchKind::Bool),
        "http_auth" => {
            let Some(name) = arg else {
                return Err("'http_auth' needs a userlist, as in 'http_auth(admins)'".into());
            };
            match scope.userlists.iter().find(|u| u.name == name) {
                Some(u) => (Fetch::HttpAuth(u.clone()), MatchKind::Bool),
                None => {
                    return Err(format!(
                        "no userlist named '{name}'{}",
                        suggest::hint(name, scope.userlists.iter().map(|u| u.name.as_str()))
                    ))
                }
            }
        }
        other => {
            return Err(format!(
                "unknown ACL criterion '{other}'; warren knows path, path_beg, path_end, path_sub, path_reg, hdr(), hdr_beg(), hdr_end(), hdr_sub(), hdr_reg(), method, http_auth(), src, ssl_fc{}",
                suggest::hint(other, CRITERIA)
            ))
        }
    };
    if scope.response && matches!(fetch, Fetch::Path | Fetch::Method | Fetch::HttpAuth(_)) {
        // HAProxy warns that such a condition never matches; warren refuses it.
        return Err(format!("'{base}' reads the request, which http-response rules cannot see (HAProxy would never match it)"));
    }
    if scope.response && base.starts_with("hdr") {
        // HAProxy's plain `hdr()` in an http-response condition does not see the
        // response's headers (tested against 2.6); say which one is meant.
        return Err(format!(
            "in http-response rules write 'res.hdr({})' for the response's headers",
            arg.unwrap_or("name")
        ));
    }
    if (base == "res.hdr") != scope.response && base.contains('.') {
        return Err(format!(
            "'{base}' cannot be used in {} rules",
            if scope.response {
                "http-response"
            } else {
                "http-request"
            }
        ));
    }
    let mut ignore_case = false;
    let mut i = 1;
    while let Some(w) = words.get(i) {
        match w.as_str() {
            "-i" => ignore_case = true,
            "-m" => {
                i += 1;
                kind = match words.get(i).map(String::as_str) {
                    Some("str") => MatchKind::Str,
                    Some("beg") => MatchKind::Beg,
                    Some("end") => MatchKind::End,
                    Some("sub") => MatchKind::Sub,
                    Some("reg") => MatchKind::Reg,
                    Some("found") => MatchKind::Found,
                    Some("ip") if fetch == Fetch::Src => MatchKind::Ip,
                    Some("bool") if kind == MatchKind::Bool => MatchKind::Bool,
                    other => {
                        return Err(format!(
                            "'-m {}' is not supported: use str, beg, end, sub, reg or found",
                            other.unwrap_or("")
                        ))
                    }
                };
                if matches!(
                    fetch,
                    Fetch::Src | Fetch::SslFc | Fetch::HttpAuth(_) | Fetch::Const(_)
                ) && !matches!(kind, MatchKind::Ip | MatchKind::Bool | MatchKind::Found)
                {
                    return Err(format!("'{criterion}' cannot be matched as text"));
                }
            }
            "--" => {
                i += 1;
                break;
            }
            f if f.starts_with('-') && f.len() > 1 => {
                return Err(format!(
                    "ACL flag '{f}' is not supported yet (warren has -i, -m and --)"
                ))
            }
            _ => break,
        }
        i += 1;
    }
    let values: Vec<String> = words[i.min(words.len())..].to_vec();
    let mut m = Matcher {
        fetch,
        kind,
        ignore_case,
        patterns: Vec::new(),
        regexes: Vec::new(),
        networks: Vec::new(),
    };
    match kind {
        MatchKind::Bool | MatchKind::Found => {
            if let Some(v) = values.first() {
                return Err(format!("'{criterion}' takes no value here: remove '{v}'"));
            }
        }
        MatchKind::Ip => {
            if values.is_empty() {
                return Err("'src' needs an address or network, as in 'src 10.0.0.0/8'".into());
            }
            for v in &values {
                m.networks.push(ForwardFor::parse_network(v)?);
            }
        }
        MatchKind::Reg => {
            if values.is_empty() {
                return Err(format!("'{criterion}' needs a regular expression"));
            }
            for v in &values {
                let r = regex::RegexBuilder::new(v)
                    .case_insensitive(ignore_case)
                    .build()
                    .map_err(|e| format!("bad regular expression '{v}': {e}"))?;
                m.regexes.push(Pattern(r));
            }
        }
        _ => {
            if values.is_empty() {
                return Err(format!("'{criterion}' needs at least one value to match"));
            }
            m.patterns = values;
        }
    }
    Ok(m)
}

/// `acl <name> <criterion> [flags] [values]`; a second line with the same name adds to
/// the first (any line matching makes the ACL true).
pub fn acl(words: &[String], acls: &mut Vec<Acl>, scope: &Scope<'_>) -> Result<(), String> {
    let Some(name) = words.get(1) else {
        return Err(
            "'acl' needs a name and a criterion, for example 'acl is_api path_beg /api'".into(),
        );
    };
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
    {
        return Err(format!(
            "the ACL name '{name}' may hold letters, digits, '-', '_', '.' and ':' only"
        ));
    }
    let m = matcher(&words[2..], scope)?;
    match acls.iter_mut().find(|a| a.name == *name) {
        Some(a) => a.matchers.push(m),
        None => acls.push(Acl {
            name: name.clone(),
            matchers: vec![m],
        }),
    }
    Ok(())
}

/// `if|unless <terms>`: `words[0]` is `if` or `unless`.
pub fn condition(words: &[String], scope: &Scope<'_>) -> Result<Condition, String> {
    let unless = words.first().map(String::as_str) == Some("unless");
    let mut any_of: Vec<Vec<Term>> = vec![Vec::new()];
    let mut i = 1;
    while let Some(w) = words.get(i) {
        if w == "or" || w == "||" {
            if any_of.last().is_some_and(Vec::is_empty) {
                return Err(format!("'{w}' needs a condition on each side"));
            }
            any_of.push(Vec::new());
            i += 1;
            continue;
        }
        let (negate, rest) = match w.strip_prefix('!') {
            Some("") => {
                i += 1;
                (true, words.get(i).map(String::as_str).unwrap_or(""))
            }
            Some(r) => (true, r),
            None => (false, w.as_str()),
        };
        let matchers = if rest == "{" {
            let start = i + 1;
            let Some(end) = words[start..]
                .iter()
                .position(|w| w == "}")
                .map(|p| start + p)
            else {
                return Err("an anonymous ACL '{ ... }' is not closed with '}'".into());
            };
            i = end;
            vec![matcher(&words[start..end], scope)?]
        } else if let Some(a) = scope.acls.iter().find(|a| a.name == rest) {
            a.matchers.clone()
        } else if let Some(p) = predefined(rest) {
            vec![p]
        } else if rest.is_empty() {
            return Err("'!' must be followed by an ACL".into());
        } else {
            return Err(format!(
                "unknown ACL '{rest}' (declare it with 'acl' before this line){}",
                suggest::hint(rest, scope.acls.iter().map(|a| a.name.as_str()))
            ));
        };
        if let Some(last) = any_of.last_mut() {
            last.push(Term { negate, matchers });
        }
        i += 1;
    }
    if any_of.iter().any(Vec::is_empty) {
        return Err(format!(
            "'{}' needs a condition",
            if unless { "unless" } else { "if" }
        ));
    }
    Ok(Condition { unless, any_of })
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
        let m = matcher(
            &[fetch_text.to_string(), "-m".into(), "found".into()],
            scope,
        )?;
        if !literal.is_empty() {
            parts.push(Part::Text(std::mem::take(&mut literal)));
        }
        parts.push(Part::Fetch(m.fetch));
        rest = &inner[end + 1..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        parts.push(Part::Text(literal));
    }
    Ok(Format(parts))
}
