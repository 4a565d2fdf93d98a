//! The answers warren itself gives in HTTP mode, worded as HAProxy's built-in error pages
//! (so monitoring that greps for them keeps working). Each closes the connection.

/// One of HAProxy's built-in answers.
pub fn error(status: u16) -> Vec<u8> {
    let (reason, text) = match status {
        400 => ("Bad request", "Your browser sent an invalid request."),
        403 => ("Forbidden", "Request forbidden by administrative rules."),
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
        "HTTP/1.1 {status} {reason}\r\ncontent-length: {}\r\ncache-control: no-cache\r\ncontent-type: text/html\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_length_is_the_body_length() {
        let r = String::from_utf8(super::error(503)).unwrap_or_default();
        let (head, body) = r.split_once("\r\n\r\n").unwrap_or_default();
        assert!(head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        assert!(head.contains(&format!("content-length: {}\r\n", body.len())));
    }
}
