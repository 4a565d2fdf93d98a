//! Running a proxy's `http-request` and `http-response` rules (and `monitor-uri`): each
//! rule whose condition holds changes the message (headers, path) or answers in warren's
//! name (deny, return, redirect, auth). Frontend rules run before backend rules on
//! requests, after them on responses, as in HAProxy; the first answering rule ends it.

use super::acl::{self, Subject};
use super::head::Head;
use super::reply;
use super::rewrite::Edit;
use crate::acl::{applies, Facts, Sample};
use crate::config::rules::{Action, Format, HttpRules, Part, RedirectKind, Reply};
use crate::proxy::rules::Conn;

/// How request rules ended.
pub enum Outcome {
    /// Forward the (changed) request.
    Forward,
    /// Answer with these bytes; `close`: the connection ends after them. `cause` is the
    /// log's termination character (`P` refused, `L` answered locally).
    Answer {
        bytes: Vec<u8>,
        status: u16,
        close: bool,
        cause: char,
    },
}

/// The value of a format string (a fetch gives its first value; nothing when missing).
fn render(f: &Format, s: &Subject<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    for part in &f.0 {
        match part {
            Part::Text(t) => out.extend_from_slice(t.as_bytes()),
            Part::Fetch(fetch) => {
                s.any(fetch, &mut |sample| {
                    match sample {
                        Sample::Str(t) => out.extend_from_slice(t.as_bytes()),
                        Sample::Bool(b) => out.push(if *b { b'1' } else { b'0' }),
                        Sample::Ip(ip) => out.extend_from_slice(ip.to_string().as_bytes()),
                        Sample::Int(n) => out.extend_from_slice(n.to_string().as_bytes()),
                        Sample::Missing => {}
                    }
                    true
                });
            }
        }
    }
    out
}

/// Removes every header `name` (from the message and from earlier edits).
fn delete(head: &Head, edits: &mut Vec<Edit>, name: &str) {
    edits.retain(|e| match e {
        Edit::AddNamed(n, _) => !n.eq_ignore_ascii_case(name),
        Edit::Add(n, _) => !n.eq_ignore_ascii_case(name),
        _ => true,
    });
    for (index, (n, _)) in head.headers().enumerate() {
        if n.eq_ignore_ascii_case(name.as_bytes()) {
            edits.push(Edit::Remove(index));
        }
    }
}

/// `replace-header`: every whole value of `name` matching `re` is rewritten.
fn replace(head: &Head, edits: &mut Vec<Edit>, name: &str, re: &regex::Regex, with: &str) {
    for (index, (n, v)) in head.headers().enumerate() {
        if !n.eq_ignore_ascii_case(name.as_bytes()) {
            continue;
        }
        let current = edits
            .iter()
            .rev()
            .find_map(|e| match e {
                Edit::Remove(i) if *i == index => Some(None),
                Edit::Replace(i, v) if *i == index => Some(Some(v.clone())),
                _ => None,
            })
            .unwrap_or_else(|| Some(v.to_vec()));
        let Some(current) = current else { continue };
        let text = String::from_utf8_lossy(&current);
        if re.is_match(&text) {
            let new = re.replace(&text, with).into_owned().into_bytes();
            edits.push(Edit::Replace(index, new));
        }
    }
    for e in edits.iter_mut() {
        if let Edit::AddNamed(n, v) = e {
            if n.eq_ignore_ascii_case(name) {
                let text = String::from_utf8_lossy(v).into_owned();
                if re.is_match(&text) {
                    *v = re.replace(&text, with).into_owned().into_bytes();
                }
            }
        }
    }
}

/// A header-changing action; `false` if the action is not one.
fn edit(action: &Action, head: &Head, edits: &mut Vec<Edit>, s: &Subject<'_>) -> bool {
    match action {
        Action::SetHeader(name, f) => {
            let v = render(f, s);
            delete(head, edits, name);
            edits.push(Edit::AddNamed(name.clone(), v));
        }
        Action::AddHeader(name, f) => {
            let v = render(f, s);
            edits.push(Edit::AddNamed(name.clone(), v));
        }
        Action::DelHeader(name) => delete(head, edits, name),
        Action::ReplaceHeader(name, re, with) => replace(head, edits, name, &re.0, with),
        _ => return false,
    }
    true
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// The answer of `deny`/`return`, and whether the connection closes after it: an
/// errorfile is sent as written and closes (as `reply::custom`); a text reply closes
/// only when the request's body is left unread.
pub fn reply(status: u16, how: &Reply, body: bool, sets: &[&HttpRules]) -> (Vec<u8>, bool) {
    match how {
        Reply::Default => reply::custom(status, body, sets),
        Reply::Errorfile(bytes, _) => (bytes.to_vec(), true),
        Reply::Text {
            content_type,
            body: text,
        } => {
            let mut out = format!(
                "HTTP/1.1 {status} {}\r\ncontent-length: {}\r\n",
                reason(status),
                text.len()
            );
            if let Some(t) = content_type {
                out.push_str(&format!("content-type: {t}\r\n"));
            }
            if body {
                out.push_str("connection: close\r\n");
            }
            out.push_str("\r\n");
            out.push_str(text);
            (out.into_bytes(), body)
        }
    }
}

/// Runs `monitor-uri` (when `monitor`: the frontend's turn) and the request rules of one
/// proxy; `errorfiles`: whose errorfiles answer, in order. `body`: the request has a
/// body, which an answer leaves unread (the connection then closes).
#[allow(clippy::too_many_arguments)]
pub fn request(
    rules: &HttpRules,
    monitor: bool,
    errorfiles: &[&HttpRules],
    req: &Head,
    edits: &mut Vec<Edit>,
    conn: &Conn<'_>,
    body: bool,
) -> Outcome {
    let sets = errorfiles;
    if monitor
        && rules
            .monitor_uri
            .as_deref()
            .is_some_and(|m| m.as_bytes() == acl::path(req.target().as_bytes()))
    {
        let (bytes, close) = reply::custom(200, body, sets);
        return Outcome::Answer {
            bytes,
            status: 200,
            close,
            cause: 'L',
        };
    }
    {
        for rule in &rules.request {
            let holds = {
                let s = Subject {
                    conn,
                    request: req,
                    request_edits: edits,
                    response: None,
                };
                applies(rule.condition.as_ref(), &s)
            };
            if !holds {
                continue;
            }
            let rendered = {
                let s = Subject {
                    conn,
                    request: req,
                    request_edits: edits,
                    response: None,
                };
                match &rule.action {
                    Action::SetPath(f) => Some(render(f, &s)),
                    Action::Redirect { value, .. } => Some(render(value, &s)),
                    _ => None,
                }
            };
            let mut changed = edits.clone();
            let s = Subject {
                conn,
                request: req,
                request_edits: edits,
                response: None,
            };
            if edit(&rule.action, req, &mut changed, &s) {
                *edits = changed;
                continue;
            }
            match &rule.action {
                Action::SetPath(_) => {
                    let target = acl::target(req, edits);
                    let query = target
                        .iter()
                        .position(|b| *b == b'?')
                        .map(|i| target[i..].to_vec());
                    let mut t = rendered.unwrap_or_default();
                    if let Some(q) = query {
                        t.extend_from_slice(&q);
                    }
                    edits.push(Edit::SetTarget(t));
                }
                Action::Deny(code, how) => {
                    let (bytes, close) = reply(*code, how, body, sets);
                    return Outcome::Answer {
                        bytes,
                        status: *code,
                        close,
                        cause: 'P',
                    };
                }
                Action::Auth { realm } => {
                    let mut page = reply::page(401, body);
                    let at = page
                        .windows(2)
                        .position(|w| w == b"\r\n")
                        .map_or(0, |i| i + 2);
                    let header = format!("www-authenticate: Basic realm=\"{realm}\"\r\n");
                    page.splice(at..at, header.into_bytes());
                    return Outcome::Answer {
                        bytes: page,
                        status: 401,
                        close: body,
                        cause: 'P',
                    };
                }
                Action::Return(code, how) => {
                    let (bytes, close) = reply(*code, how, body, sets);
                    return Outcome::Answer {
                        bytes,
                        status: *code,
                        close,
                        cause: 'L',
                    };
                }
                Action::Redirect { kind, code, .. } => {
                    let value = rendered.unwrap_or_default();
                    let target = acl::target(req, edits);
                    let location: Vec<u8> = match kind {
                        RedirectKind::Location => value,
                        RedirectKind::Prefix => {
                            let mut l = value;
                            if l.ends_with(b"/") && target.starts_with(b"/") {
                                l.pop();
                            }
                            l.extend_from_slice(target);
                            l
                        }
                        RedirectKind::Scheme => {
                            let host = req.header("host").unwrap_or(b"");
                            let mut l = value;
                            l.extend_from_slice(b"://");
                            l.extend_from_slice(host);
                            l.extend_from_slice(target);
                            l
                        }
                    };
                    let mut out = format!(
                        "HTTP/1.1 {code} {}\r\ncontent-length: 0\r\nlocation: ",
                        reason(*code)
                    )
                    .into_bytes();
                    out.extend_from_slice(&location);
                    out.extend_from_slice(b"\r\n");
                    if body {
                        out.extend_from_slice(b"connection: close\r\n");
                    }
                    out.extend_from_slice(b"\r\n");
                    return Outcome::Answer {
                        bytes: out,
                        status: *code,
                        close: body,
                        cause: 'L',
                    };
                }
                _ => {}
            }
        }
    }
    Outcome::Forward
}

/// Runs the response rules of `sets` (backend first, then frontend); `Some` when a rule
/// denies the response: the client then gets that status and answer instead.
pub fn response(
    sets: &[&HttpRules],
    req: &Head,
    req_edits: &[Edit],
    res: &Head,
    edits: &mut Vec<Edit>,
    conn: &Conn<'_>,
) -> Option<(u16, Vec<u8>)> {
    for rules in sets {
        for rule in &rules.response {
            let mut changed = edits.clone();
            let s = Subject {
                conn,
                request: req,
                request_edits: req_edits,
                response: Some((res, edits)),
            };
            if !applies(rule.condition.as_ref(), &s) {
                continue;
            }
            if let Action::Deny(code, how) = &rule.action {
                return Some((*code, reply(*code, how, true, sets).0));
            }
            if edit(&rule.action, res, &mut changed, &s) {
                *edits = changed;
            }
        }
    }
    None
}
