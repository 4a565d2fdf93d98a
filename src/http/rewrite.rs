//! The heads warren sends on: the received head, minus the hop-by-hop headers that
//! describe the connection it came on (`Connection`, `Keep-Alive`, `Proxy-Connection`),
//! plus what this hop says about its own connection, plus `option forwardfor`. Written
//! into a buffer the session reuses, header by header from the received bytes.

use std::io::Write;
use std::net::IpAddr;

use super::head::Head;

/// A change to a head's headers; indexes are those of [`Head::headers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// The header at this index is dropped.
    Remove(usize),
    /// The header at this index keeps its name and gets this value.
    Replace(usize, Vec<u8>),
    /// A header added at the end.
    Add(&'static str, Vec<u8>),
    /// A header added at the end, named by a rule.
    AddNamed(String, Vec<u8>),
    /// The request target (`set-path`); the last one wins.
    SetTarget(Vec<u8>),
}

/// What the request to the server must say.
pub struct RequestPlan<'a> {
    /// Ask the server to close after its response (`http-server-close`, `httpclose`).
    pub close: bool,
    /// `option forwardfor`: header name and the client's address.
    pub forwarded_for: Option<(&'a str, IpAddr)>,
    /// Header changes (persistence cookie).
    pub edits: &'a [Edit],
}

fn hop_by_hop(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"connection")
        || name.eq_ignore_ascii_case(b"keep-alive")
        || name.eq_ignore_ascii_case(b"proxy-connection")
}

/// The request line and headers for the server.
pub fn request(out: &mut Vec<u8>, head: &Head, plan: &RequestPlan<'_>) {
    out.clear();
    let target = plan
        .edits
        .iter()
        .rev()
        .find_map(|e| match e {
            Edit::SetTarget(t) => Some(&t[..]),
            _ => None,
        })
        .unwrap_or(head.target().as_bytes());
    out.extend_from_slice(head.method().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target);
    let _ = write!(out, " HTTP/1.{}\r\n", head.minor);
    headers(out, head, plan.edits);
    if head.upgrade {
        out.extend_from_slice(b"Connection: upgrade\r\n");
    } else if plan.close {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if head.minor == 0 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    if let Some((name, ip)) = plan.forwarded_for {
        let _ = write!(out, "{name}: {ip}\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The status line and headers for the client. `close`: warren closes the client
/// connection after this response; `client_minor`: the client's HTTP/1.x version.
pub fn response(out: &mut Vec<u8>, head: &Head, client_minor: u8, close: bool, edits: &[Edit]) {
    out.clear();
    let _ = write!(out, "HTTP/1.{} {} ", head.minor, head.status);
    out.extend_from_slice(head.reason());
    out.extend_from_slice(b"\r\n");
    headers(out, head, edits);
    if head.status == 101 {
        out.extend_from_slice(b"Connection: upgrade\r\n");
    } else if close {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if client_minor == 0 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The head's headers with `edits` applied, hop-by-hop ones left out.
fn headers(out: &mut Vec<u8>, head: &Head, edits: &[Edit]) {
    for (index, (name, value)) in head.headers().enumerate() {
        if hop_by_hop(name) {
            continue;
        }
        let mut value = Some(value);
        for e in edits {
            match e {
                Edit::Remove(i) if *i == index => value = None,
                Edit::Replace(i, v) if *i == index => value = Some(v),
                _ => {}
            }
        }
        if let Some(v) = value {
            line(out, name, v);
        }
    }
    for e in edits {
        match e {
            Edit::Add(name, value) => line(out, name.as_bytes(), value),
            Edit::AddNamed(name, value) => line(out, name.as_bytes(), value),
            _ => {}
        }
    }
}

fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head;

    fn parse(text: &str) -> Head {
        head::request(text.as_bytes(), 16384)
            .unwrap_or_else(|e| panic!("{e:?}"))
            .unwrap_or_else(|| panic!("complete"))
    }

    #[test]
    fn hop_by_hop_headers_are_replaced() {
        let h = parse("GET /x HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nKeep-Alive: 300\r\nX-A: b\r\n\r\n");
        let mut out = Vec::new();
        request(
            &mut out,
            &h,
            &RequestPlan {
                close: true,
                forwarded_for: Some((
                    "X-Forwarded-For",
                    "10.1.2.3".parse().unwrap_or_else(|_| unreachable!()),
                )),
                edits: &[],
            },
        );
        assert_eq!(
            String::from_utf8_lossy(&out),
            "GET /x HTTP/1.1\r\nHost: a\r\nX-A: b\r\nConnection: close\r\nX-Forwarded-For: 10.1.2.3\r\n\r\n"
        );
    }
}
