//! Basic authentication for the stats page (`stats auth user:password`, several allowed)
//! and the CSRF guard of its admin forms. Passwords are compared in constant time and never
//! logged.

use base64::Engine;

use crate::config::StatsUser;

/// True when `authorization` (the header's value) names one of `users` with the right
/// password, or when the page has no users (public).
pub fn allowed(users: &[StatsUser], authorization: Option<&str>) -> bool {
    if users.is_empty() {
        return true;
    }
    let Some(credentials) = authorization
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(decode)
    else {
        return false;
    };
    let Some((user, password)) = credentials.split_once(':') else {
        return false;
    };
    // Check every user, always comparing the password, so the time taken does not say
    // which user names exist.
    let mut ok = false;
    for u in users {
        let name_ok = constant_time_eq(u.user.as_bytes(), user.as_bytes());
        let pass_ok = constant_time_eq(u.password.0.as_bytes(), password.as_bytes());
        ok |= name_ok & pass_ok;
    }
    ok
}

fn decode(b64: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// Compares without returning early on the first difference (the length still shows).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A per-process secret embedded in the admin forms: a cross-site page cannot read it, so
/// it cannot forge a POST that carries it. Without a working random source there is no
/// such secret, and warren refuses to start rather than use a guessable one.
pub fn new_csrf_token() -> std::io::Result<String> {
    token_from(std::path::Path::new("/dev/urandom"))
}

fn token_from(source: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open(source)?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn users() -> Vec<StatsUser> {
        vec![StatsUser {
            user: "duomai".into(),
            password: Secret("shijiemori@2012".into()),
        }]
    }

    fn basic(s: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    }

    #[test]
    fn basic_auth() {
        assert!(allowed(&users(), Some(&basic("duomai:shijiemori@2012"))));
        assert!(!allowed(&users(), Some(&basic("duomai:wrong"))));
        assert!(!allowed(&users(), Some(&basic("other:shijiemori@2012"))));
        assert!(!allowed(&users(), None));
        assert!(!allowed(&users(), Some("Basic %%%")));
        assert!(allowed(&[], None), "no users: public page");
    }

    #[test]
    fn tokens_differ() {
        let token = || new_csrf_token().expect("random source");
        assert_ne!(token(), token());
        assert_eq!(token().len(), 32);
        let err = token_from(std::path::Path::new("/nonexistent/urandom"))
            .expect_err("no source, no token");
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        let empty = std::env::temp_dir().join(format!("warren-empty-{}", std::process::id()));
        std::fs::write(&empty, b"").expect("write");
        let short = token_from(&empty).expect_err("a short read is no token");
        assert_eq!(short.kind(), std::io::ErrorKind::UnexpectedEof);
        let _ = std::fs::remove_file(&empty);
    }
}
