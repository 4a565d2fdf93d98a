//! Which sample fetches warren's ACLs have, how a fetch is written (`path_beg`,
//! `hdr(host)`, `nbsrv(be)`), and where each may be used: a rule that runs before its
//! facts exist (a `tcp-request` rule reading the HTTP request, an `http-response` rule
//! reading the request's path) is refused with what to write instead.

use super::acl::Scope;
use crate::acl::{Condition, Fetch, Needs};
use crate::config::suggest;

/// The fetches warren evaluates, for messages and suggestions.
const FETCHES: [&str; 13] = [
    "src",
    "dst",
    "src_port",
    "dst_port",
    "ssl_fc",
    "ssl_fc_sni",
    "req.ssl_sni",
    "req_ssl_sni",
    "nbsrv",
    "be_conn",
    "fe_conn",
    "always_true",
    "always_false",
];

/// Fetches that only exist for HTTP (those warren has first).
const HTTP_FETCHES: [&str; 17] = [
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
    "url",
    "status",
    "req.body",
];

/// How many of [`HTTP_FETCHES`] warren has.
const HTTP_KNOWN: usize = 14;

/// Where a condition is used: which facts exist when its rule runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// `tcp-request connection`: right after accept.
    TcpConnection,
    /// `tcp-request session`: after the PROXY header and TLS.
    TcpSession,
    /// `tcp-request content`.
    TcpContent,
    /// `use_backend`, `use-server`: per connection in TCP mode, per request in HTTP mode.
    Switching,
    HttpRequest,
    HttpResponse,
}

/// Refuses a condition that reads what does not exist where it is used (HAProxy warns
/// that such an ACL never matches; warren says what to write instead). `http`: the proxy
/// is `mode http`.
pub fn check_place(cond: &Condition, place: Place, http: bool) -> Result<(), String> {
    for f in cond.fetches() {
        let name = fetch_name(f);
        match (f.needs(), place) {
            (Needs::Connection, _) => {}
            (Needs::Payload, Place::TcpConnection | Place::TcpSession) => {
                return Err(format!("'tcp-request {}' rules run before any byte is read: req.ssl_sni needs 'tcp-request content' with 'tcp-request inspect-delay'", if place == Place::TcpConnection { "connection" } else { "session" }));
            }
            (Needs::Payload, Place::TcpContent | Place::Switching) if !http => {}
            (Needs::Payload, _) => {
                return Err("req.ssl_sni reads a TLS ClientHello passing through, and this proxy reads HTTP requests: use ssl_fc_sni (TLS terminated by warren) or hdr(host)".into());
            }
            (Needs::Request, Place::HttpRequest) => {}
            (Needs::Request, Place::Switching) if http => {}
            (Needs::Request, Place::HttpResponse) => {
                return Err(match f {
                    // HAProxy's plain `hdr()` in an http-response condition does not see
                    // the response's headers (tested against 2.6); say which one is meant.
                    Fetch::ReqHdr(h) => format!("in http-response rules write 'res.hdr({h})' for the response's headers"),
                    _ => format!("'{name}' reads the request, which http-response rules cannot see (HAProxy would never match it)"),
                });
            }
            (Needs::Request, _) => {
                return Err(format!("'{name}' reads the HTTP request, and tcp-request rules run before there is one: use an http-request rule"));
            }
            (Needs::Response, Place::HttpResponse) => {}
            (Needs::Response, _) => {
                return Err(format!(
                    "'{name}' reads the response: only http-response rules can use it"
                ));
            }
        }
    }
    Ok(())
}

/// A fetch as written (for messages).
pub fn fetch_name(f: &Fetch) -> String {
    match f {
        Fetch::Path => "path".into(),
        Fetch::Method => "method".into(),
        Fetch::ReqHdr(h) => format!("hdr({h})"),
        Fetch::ResHdr(h) => format!("res.hdr({h})"),
        Fetch::HttpAuth(u) => format!("http_auth({})", u.name),
        Fetch::ReqSslSni => "req.ssl_sni".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// A fetch with its optional argument (`nbsrv(be)`, `be_conn`, `src`, `hdr(host)`), and
/// the match method its name implies (`path_beg` is `path -m beg`).
pub fn fetch(word: &str, scope: &Scope<'_>) -> Result<(Fetch, Option<&'static str>), String> {
    if word.contains(',') {
        return Err(format!(
            "converters ('{word}') are not supported: warren's ACLs take a fetch alone"
        ));
    }
    let (name, arg) = match word.split_once('(') {
        Some((name, rest)) => {
            let arg = rest
                .strip_suffix(')')
                .ok_or_else(|| format!("'{word}': missing ')'"))?;
            (name, Some(arg.trim()).filter(|a| !a.is_empty()))
        }
        None => (word, None),
    };
    let backend = |what: &str| -> Result<Option<usize>, String> {
        match arg {
            None => Ok(None),
            Some(a) => scope.backends.get(a).copied().map(Some).ok_or_else(|| {
                format!(
                    "'{what}({a})': no backend named '{a}'{}",
                    suggest::hint(a, scope.backends.keys().map(String::as_str))
                )
            }),
        }
    };
    let no_arg = |f: Fetch| match arg {
        None => Ok((f, None)),
        Some(a) => Err(format!("'{name}' takes no argument, not '{a}'")),
    };
    let tcp = match name {
        "src" => Some(no_arg(Fetch::Src)),
        "dst" => Some(no_arg(Fetch::Dst)),
        "src_port" => Some(no_arg(Fetch::SrcPort)),
        "dst_port" => Some(no_arg(Fetch::DstPort)),
        "ssl_fc" => Some(no_arg(Fetch::SslFc)),
        "ssl_fc_sni" => Some(no_arg(Fetch::SslFcSni)),
        "req.ssl_sni" | "req_ssl_sni" => Some(no_arg(Fetch::ReqSslSni)),
        "always_true" => Some(no_arg(Fetch::AlwaysTrue)),
        "always_false" => Some(no_arg(Fetch::AlwaysFalse)),
        "nbsrv" => Some(backend(name).map(|b| (Fetch::Nbsrv(b), None))),
        "be_conn" => Some(backend(name).map(|b| (Fetch::BeConn(b), None))),
        "fe_conn" => Some(match arg {
            None => Ok((Fetch::FeConn(None), None)),
            Some(a) if scope.frontends.contains_key(a) => Err(format!(
                "'fe_conn({a})': warren counts the connections of the frontend the rule is in; write 'fe_conn' without an argument (another frontend's count is not available to rules)"
            )),
            Some(a) => Err(format!(
                "'fe_conn({a})': no frontend named '{a}'{}",
                suggest::hint(a, scope.frontends.keys().map(String::as_str))
            )),
        }),
        _ => None,
    };
    if let Some(found) = tcp {
        return found;
    }
    let http_word = HTTP_FETCHES.contains(&name)
        || name.starts_with("req.")
        || name.starts_with("res.")
        || name.starts_with("http");
    if !scope.http {
        return Err(if http_word {
            format!(
                "the fetch '{name}' reads HTTP, and this is a TCP proxy: warren's TCP ACLs use {}",
                FETCHES.join(", ")
            )
        } else {
            format!(
                "the fetch '{name}' is not supported in warren's TCP ACLs (they use {}){}",
                FETCHES.join(", "),
                suggest::hint(name, FETCHES)
            )
        });
    }
    let header = || -> Result<String, String> {
        match arg {
            Some(h) if h.bytes().all(crate::config::http::is_token_byte) => Ok(h.to_string()),
            _ => Err(format!(
                "'{word}' needs a header name, as in '{name}(host)'"
            )),
        }
    };
    let path = |m| -> Result<(Fetch, Option<&'static str>), String> {
        no_arg(Fetch::Path).map(|(f, _)| (f, m))
    };
    match name {
        "path" => path(None),
        "path_beg" => path(Some("beg")),
        "path_end" => path(Some("end")),
        "path_sub" => path(Some("sub")),
        "path_reg" => path(Some("reg")),
        "method" => no_arg(Fetch::Method),
        "hdr" | "req.hdr" => Ok((Fetch::ReqHdr(header()?), None)),
        "res.hdr" => Ok((Fetch::ResHdr(header()?), None)),
        "hdr_beg" => Ok((Fetch::ReqHdr(header()?), Some("beg"))),
        "hdr_end" => Ok((Fetch::ReqHdr(header()?), Some("end"))),
        "hdr_sub" => Ok((Fetch::ReqHdr(header()?), Some("sub"))),
        "hdr_reg" => Ok((Fetch::ReqHdr(header()?), Some("reg"))),
        "http_auth" => {
            let Some(list) = arg else {
                return Err("'http_auth' needs a userlist, as in 'http_auth(admins)'".into());
            };
            match scope.userlists.iter().find(|u| u.name == list) {
                Some(u) => Ok((Fetch::HttpAuth(u.clone()), None)),
                None => Err(format!(
                    "no userlist named '{list}'{}",
                    suggest::hint(list, scope.userlists.iter().map(|u| u.name.as_str()))
                )),
            }
        }
        _ => {
            let known = FETCHES.iter().chain(&HTTP_FETCHES[..HTTP_KNOWN]);
            Err(format!(
                "the fetch '{name}' is not supported in warren's ACLs (they use {}){}",
                known.clone().copied().collect::<Vec<_>>().join(", "),
                suggest::hint(name, known.copied())
            ))
        }
    }
}
