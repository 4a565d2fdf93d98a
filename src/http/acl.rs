//! The facts of one request (or response) for the one ACL engine (`crate::acl`): the HTTP
//! fetches read the message as the rules have changed it so far (a header set by one
//! rule is seen by the next); every other fetch (`src`, `dst_port`, `ssl_fc`, `nbsrv()`,
//! ...) is the connection's, answered by `proxy::rules::Conn` as for TCP rules.

use std::borrow::Cow;

use super::auth;
use super::head::Head;
use super::rewrite::Edit;
use crate::acl::{Facts, Fetch, Sample};
use crate::proxy::rules::Conn;

/// What a condition is evaluated against.
pub struct Subject<'a> {
    /// The connection's facts.
    pub conn: &'a Conn<'a>,
    pub request: &'a Head,
    /// Changes the request's rules made so far.
    pub request_edits: &'a [Edit],
    /// For `http-response` rules: the response and its changes so far.
    pub response: Option<(&'a Head, &'a [Edit])>,
}

/// The values of header `name` in `head` as changed by `edits`, split on commas (as
/// HAProxy's `hdr()` does).
pub fn header_values<'h>(head: &'h Head, edits: &'h [Edit], name: &str) -> Vec<Cow<'h, [u8]>> {
    let mut out: Vec<Cow<'h, [u8]>> = Vec::new();
    let mut push = |v: Cow<'h, [u8]>| {
        for part in v.split(|b| *b == b',') {
            let part = part.trim_ascii();
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

impl Facts for Subject<'_> {
    fn sample(&self, fetch: &Fetch) -> Sample<'_> {
        match fetch {
            Fetch::Method => Sample::Str(self.request.method()),
            Fetch::HttpAuth(list) => {
                Sample::Bool(authorized(self.request, self.request_edits, list))
            }
            // Text that may not be UTF-8, or several values: see `any`.
            Fetch::Path | Fetch::ReqHdr(_) | Fetch::ResHdr(_) => Sample::Missing,
            other => self.conn.sample(other),
        }
    }

    fn any(&self, fetch: &Fetch, f: &mut dyn FnMut(&Sample<'_>) -> bool) -> bool {
        let each = |values: Vec<Cow<'_, [u8]>>, f: &mut dyn FnMut(&Sample<'_>) -> bool| {
            values
                .iter()
                .any(|v| f(&Sample::Str(&String::from_utf8_lossy(v))))
        };
        match fetch {
            Fetch::Path => {
                let p = path(target(self.request, self.request_edits));
                f(&Sample::Str(&String::from_utf8_lossy(p)))
            }
            Fetch::ReqHdr(name) => each(header_values(self.request, self.request_edits, name), f),
            Fetch::ResHdr(name) => match self.response {
                Some((res, edits)) => each(header_values(res, edits, name), f),
                None => false,
            },
            other => f(&self.sample(other)),
        }
    }
}

/// Whether the request's basic-auth credentials are valid in `list` (the whole header:
/// commas are part of the credentials).
fn authorized(req: &Head, edits: &[Edit], list: &crate::acl::userlist::Userlist) -> bool {
    if header_values(req, edits, "authorization").is_empty() {
        return false;
    }
    req.headers()
        .find(|(n, _)| n.eq_ignore_ascii_case(b"authorization"))
        .and_then(|(_, v)| auth::basic(v))
        .is_some_and(|(u, p)| auth::check(list, &u, &p))
}
