//! The answers warren itself gives in HTTP mode, worded as HAProxy's built-in pages (so
//! monitoring that greps for them keeps working), or the proxy's `errorfile` for that
//! status.

use crate::config::rules::HttpRules;

/// HAProxy's built-in answer for `status`. `close`: the connection ends after it (said
/// in a `Connection: close` header, as HAProxy's error pages do).
pub fn page(status: u16, close: bool) -> Vec<u8> {
    let (reason, text) = match status {
        200 => ("OK", "Service ready."),
        400 => ("Bad request", "Your browser sent an invalid request."),
        401 => (
            "Unauthorized",
            "You need a valid user and password to access this content.",
        ),
        403 => ("Forbidden", "Request forbidden by administrative rules."),
        404 => ("Not Found", "The resource could not be found."),
        408 => (
            "Request Time-out",
            "Your browser didn't send a complete request in time.",
        ),
        500 => (
            "Internal Server Error",
            "An internal server error occurred.",
        ),
        502 => (
            "Bad Gateway",
            "The server returned an invalid or incomplete response.",
        ),
        503 => (
            "Service Unavailable",
            "No server is available to handle this request.",
        ),
        504 => ("Gateway Time-out", "The server didn't respond in time."),
        _ => ("Error", "An error occurred."),
    };
    let body = format!("<html><body><h1>{status} {reason}</h1>\n{text}\n</body></html>\n");
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-length: {}\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n{}\r\n{body}",
        body.len(),
        if close { "connection: close\r\n" } else { "" }
    )
    .into_bytes()
}

/// A closing error page (the connection ends after it).
pub fn error(status: u16) -> Vec<u8> {
    page(status, true)
}

/// The proxy's `errorfile` for `status` (frontend first, then backend), else the built-in
/// page. An errorfile is sent as written; the connection closes after it.
pub fn custom(status: u16, close: bool, sets: &[&HttpRules]) -> (Vec<u8>, bool) {
    for rules in sets {
        if let Some((_, bytes, _)) = rules.errorfiles.iter().find(|(c, _, _)| *c == status) {
            return (bytes.clone(), true);
        }
    }
    (page(status, close), close)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_length_is_the_body_length() {
        for (status, close) in [(503, true), (401, false), (200, false)] {
            let r = String::from_utf8(super::page(status, close)).unwrap_or_default();
            let (head, body) = r.split_once("\r\n\r\n").unwrap_or_default();
            assert!(head.contains(&format!("content-length: {}\r\n", body.len())));
            assert_eq!(head.contains("connection: close"), close);
        }
        // HAProxy's own pages, byte for byte in the body.
        let r = String::from_utf8(super::page(401, false)).unwrap_or_default();
        assert!(r.ends_with("<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and password to access this content.\n</body></html>\n"));
        assert!(r.contains("content-length: 112\r\n"));
    }
}
