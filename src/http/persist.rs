//! Cookie persistence (`cookie <name> insert|rewrite|prefix ...` on the backend, `cookie
//! <value>` on servers), as HAProxy's: the request's cookie names a server, which then
//! takes the request directly when it is up (a DOWN server's cookie is ignored and the
//! request balanced); the response gets (insert), has rewritten (rewrite) or prefixed
//! (prefix) the cookie that brings the client back. Insert cookies may carry their dates
//! for `maxidle`/`maxlife`, in HAProxy's encoding (`SRV|<last seen>|<first seen>`, 30-bit
//! dates in 4-second units, 5 base64 characters), so cookies stay valid across a move
//! between HAProxy and warren.
//!
//! The two log characters after the termination state: request side `N` no cookie, `I`
//! invalid, `D` its server is down, `V` valid, `E` idle too long, `O` too old, `-` no
//! persistence; response side `N` none, `I` inserted, `U` date updated, `P` the server's
//! own kept (preserve), `R` rewritten, `D` deleted, `-` no persistence.

use std::sync::Arc;

use super::head::Head;
use super::rewrite::Edit;
use crate::config::{CookieMode, CookiePersist};
use crate::state::ServerState;

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// HAProxy's `s30tob64`.
fn s30tob64(mut v: u32) -> [u8; 5] {
    let mut out = [0u8; 5];
    for o in &mut out {
        *o = B64[((v >> 24) & 0x3f) as usize];
        v <<= 6;
    }
    out
}

/// HAProxy's `b64tos30`.
fn b64tos30(s: &[u8]) -> Option<u32> {
    let mut out = 0u32;
    for b in s.get(..5)? {
        let v = B64.iter().position(|c| c == b)? as u32;
        out = (out << 6) + v;
    }
    Some(out)
}

/// What the request said about persistence.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    /// The server the cookie names, when it may take the request.
    pub server: Option<usize>,
    /// The log character (request side).
    pub flag: char,
    /// Dates from the cookie (UNIX seconds), for `maxidle`/`maxlife`.
    pub last_seen: Option<u64>,
    pub first_seen: Option<u64>,
    /// Edits of the request's `Cookie` headers (insert+indirect: ours removed; prefix: the
    /// server id removed from the value).
    pub edits: Vec<Edit>,
}

/// Reads the request's cookies; `now` in UNIX seconds.
pub fn lookup(c: &CookiePersist, req: &Head, servers: &[Arc<ServerState>], now: u64) -> Lookup {
    let mut out = Lookup {
        flag: 'N',
        ..Lookup::default()
    };
    for (index, (name, value)) in req.headers().enumerate() {
        if !name.eq_ignore_ascii_case(b"cookie") {
            continue;
        }
        let Ok(value) = std::str::from_utf8(value) else {
            continue;
        };
        let mut kept: Vec<String> = Vec::new();
        let mut changed = false;
        for part in value.split(';') {
            let part = part.trim();
            let Some((n, v)) = part.split_once('=') else {
                kept.push(part.to_string());
                continue;
            };
            if n.trim() != c.name {
                kept.push(part.to_string());
                continue;
            }
            let v = v.trim();
            let (id, app) = match c.mode {
                CookieMode::Prefix => match v.split_once('~') {
                    Some((id, rest)) => (id, Some(rest)),
                    None => ("", None),
                },
                _ => {
                    let mut fields = v.split('|');
                    let id = fields.next().unwrap_or("");
                    out.last_seen = fields
                        .next()
                        .and_then(|d| b64tos30(d.as_bytes()))
                        .map(|d| u64::from(d) << 2);
                    out.first_seen = fields
                        .next()
                        .and_then(|d| b64tos30(d.as_bytes()))
                        .map(|d| u64::from(d) << 2);
                    (id, None)
                }
            };
            let mut id = id;
            if let (Some(first), Some(life)) = (out.first_seen, c.maxlife) {
                if now.saturating_sub(first) > life.as_secs() || first.saturating_sub(now) > 86400 {
                    out.flag = 'O';
                    id = "";
                    (out.first_seen, out.last_seen) = (None, None);
                }
            }
            if let (Some(last), Some(idle), true) = (out.last_seen, c.maxidle, !id.is_empty()) {
                if now.saturating_sub(last) > idle.as_secs() || last.saturating_sub(now) > 86400 {
                    out.flag = 'E';
                    id = "";
                    (out.first_seen, out.last_seen) = (None, None);
                }
            }
            if !id.is_empty() {
                let mut found = false;
                for s in servers
                    .iter()
                    .filter(|s| s.config.cookie.as_deref() == Some(id))
                {
                    found = true;
                    if s.usable() {
                        out.server = Some(s.id);
                        out.flag = 'V';
                        break;
                    }
                    out.flag = 'D';
                }
                if !found {
                    out.flag = 'I';
                }
            } else if !matches!(out.flag, 'O' | 'E') {
                out.flag = 'I';
            }
            match (c.mode, app) {
                (CookieMode::Prefix, Some(app)) => {
                    kept.push(format!("{}={app}", c.name));
                    changed = true;
                }
                (CookieMode::Insert, _) if c.indirect => changed = true,
                _ => kept.push(part.to_string()),
            }
        }
        if changed {
            out.edits.push(if kept.is_empty() {
                Edit::Remove(index)
            } else {
                Edit::Replace(index, kept.join("; ").into_bytes())
            });
        }
    }
    out
}

/// What the response needs: header edits and additions, and the log character.
#[derive(Debug, Default)]
pub struct Answer {
    pub edits: Vec<Edit>,
    pub flag: char,
}

/// Prepares the response's cookie, for a response from `server` to a `method` request.
/// `direct`: the request reached that server by its cookie.
pub fn answer(
    c: &CookiePersist,
    res: &Head,
    server: &ServerState,
    found: &Lookup,
    direct: bool,
    method: &str,
    now: u64,
) -> Answer {
    let post = method == "POST";
    let mut out = Answer {
        flag: 'N',
        ..Answer::default()
    };
    // The server's own Set-Cookie of our name.
    let mut server_set = false;
    for (index, (name, value)) in res.headers().enumerate() {
        if !name.eq_ignore_ascii_case(b"set-cookie") {
            continue;
        }
        let Ok(text) = std::str::from_utf8(value) else {
            continue;
        };
        let Some((n, rest)) = text.split_once('=') else {
            continue;
        };
        if n.trim() != c.name {
            continue;
        }
        server_set = true;
        let id = server.config.cookie.as_deref().unwrap_or("");
        match c.mode {
            _ if c.preserve => out.flag = 'P',
            CookieMode::Insert => {
                out.edits.push(Edit::Remove(index));
                out.flag = 'D';
            }
            CookieMode::Rewrite => {
                let attrs = rest.split_once(';').map_or("", |(_, a)| a);
                let v = if attrs.is_empty() {
                    format!("{}={id}", c.name)
                } else {
                    format!("{}={id};{attrs}", c.name)
                };
                out.edits.push(Edit::Replace(index, v.into_bytes()));
                out.flag = 'R';
            }
            CookieMode::Prefix => {
                out.edits.push(Edit::Replace(
                    index,
                    format!("{}={id}~{}", c.name, rest.trim_start()).into_bytes(),
                ));
                out.flag = 'R';
            }
        }
    }
    if c.mode != CookieMode::Insert || (server_set && c.preserve) {
        return out;
    }
    let dated = c.maxidle.is_some() || c.maxlife.is_some();
    let refresh = dated && found.last_seen.is_none_or(|l| l < now);
    let needed = !direct || refresh || (c.maxlife.is_some() && found.first_seen.is_none());
    if !needed || (c.postonly && !post) {
        return out;
    }
    let mut v = match server.config.cookie.as_deref() {
        None => format!("{}=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/", c.name),
        Some(id) => {
            let mut v = format!("{}={id}", c.name);
            if dated {
                let date = ((now + 3) >> 2) as u32;
                v.push('|');
                v.push_str(std::str::from_utf8(&s30tob64(date)).unwrap_or(""));
                if c.maxlife.is_some() {
                    let first = found.first_seen.map_or(date, |f| (f >> 2) as u32);
                    v.push('|');
                    v.push_str(std::str::from_utf8(&s30tob64(first)).unwrap_or(""));
                }
            }
            v.push_str("; path=/");
            v
        }
    };
    for d in &c.domains {
        v.push_str("; domain=");
        v.push_str(d);
    }
    if c.httponly {
        v.push_str("; HttpOnly");
    }
    if c.secure {
        v.push_str("; Secure");
    }
    for a in &c.attrs {
        v.push_str("; ");
        v.push_str(a);
    }
    out.edits.push(Edit::Add("Set-Cookie", v.into_bytes()));
    out.flag = if direct && server.config.cookie.is_some() {
        'U'
    } else {
        'I'
    };
    if c.nocache && cacheable(method, res) {
        out.edits
            .push(Edit::Add("Cache-Control", b"private".to_vec()));
    }
    out
}

/// Whether a shared cache might keep this response: HAProxy's rule (a safe method; no
/// `Pragma: no-cache`; no `private`, `no-cache`, `no-store`, `s-maxage=0` or lone
/// `max-age=0`; and freshness information or a validator).
fn cacheable(method: &str, res: &Head) -> bool {
    if !matches!(method, "GET" | "HEAD" | "OPTIONS" | "TRACE") || res.status < 200 {
        return false;
    }
    let mut cacheable = true;
    let (mut fresh, mut null_max_age) = (false, false);
    for (n, v) in res.headers() {
        if n.eq_ignore_ascii_case(b"pragma") && v.eq_ignore_ascii_case(b"no-cache") {
            return false;
        }
        if !n.eq_ignore_ascii_case(b"cache-control") {
            continue;
        }
        for token in String::from_utf8_lossy(v).split(',') {
            let t = token.trim().to_ascii_lowercase();
            if t == "public" {
                cacheable = true;
            } else if t == "max-age=0" {
                null_max_age = true;
            } else if t == "private"
                || t.starts_with("private=")
                || t == "no-cache"
                || t.starts_with("no-cache=") && t != "no-cache=\"set-cookie\""
                || t == "no-store"
                || t.starts_with("no-store=")
                || t == "s-maxage=0"
            {
                cacheable = false;
            } else if t.starts_with("s-maxage") {
                fresh = true;
                null_max_age = false;
            } else if t.starts_with("max-age") {
                fresh = true;
            }
        }
    }
    if null_max_age {
        return false;
    }
    let has = |name: &str| {
        res.headers()
            .any(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
    };
    cacheable && (fresh || has("expires") || has("etag") || has("last-modified"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_use_haproxys_encoding() {
        for v in [0u32, 1, 0x3fff_ffff, 441_000_000] {
            assert_eq!(b64tos30(&s30tob64(v)), Some(v));
        }
        // s30tob64(0) is "AAAAA" in HAProxy too.
        assert_eq!(&s30tob64(0), b"AAAAA");
        assert_eq!(b64tos30(b"AA!AA"), None);
    }

    fn setup(line: &str) -> (CookiePersist, Vec<Arc<ServerState>>) {
        let text = format!("defaults\n mode http\n timeout connect 1s\n timeout client 1s\n timeout server 1s\nbackend b\n {line}\n server s1 127.0.0.1:1 cookie s1\n");
        let c = crate::config::load_str(&text, "t.cfg", crate::config::Syntax::Haproxy)
            .unwrap_or_else(|e| panic!("{e}"))
            .config;
        let b = &c.backends[0];
        let servers = vec![Arc::new(ServerState::new(0, "b", b.servers[0].clone()))];
        (
            b.http.cookie.clone().unwrap_or_else(|| panic!("cookie")),
            servers,
        )
    }

    fn request(cookie: &str) -> Head {
        let text = format!("GET / HTTP/1.1\r\nCookie: {cookie}\r\n\r\n");
        crate::http::head::request(text.as_bytes(), 4096)
            .unwrap_or_else(|e| panic!("{e:?}"))
            .unwrap_or_else(|| panic!("complete"))
    }

    #[test]
    fn maxidle_and_maxlife_expire_cookies_and_dates_are_refreshed() {
        let (c, servers) = setup("cookie SRV insert indirect maxidle 30m maxlife 8h");
        let now = 1_800_000_000u64;
        let date = |t: u64| String::from_utf8_lossy(&s30tob64((t >> 2) as u32)).into_owned();
        let fresh = lookup(
            &c,
            &request(&format!("SRV=s1|{}|{}", date(now - 60), date(now - 3600))),
            &servers,
            now,
        );
        assert_eq!((fresh.server, fresh.flag), (Some(0), 'V'));
        assert_eq!(
            fresh.edits,
            [Edit::Remove(0)],
            "indirect: the cookie never reaches the server"
        );
        let idle = lookup(
            &c,
            &request(&format!("SRV=s1|{}|{}", date(now - 3600), date(now - 3600))),
            &servers,
            now,
        );
        assert_eq!((idle.server, idle.flag), (None, 'E'));
        let old = lookup(
            &c,
            &request(&format!(
                "SRV=s1|{}|{}",
                date(now - 60),
                date(now - 9 * 3600)
            )),
            &servers,
            now,
        );
        assert_eq!((old.server, old.flag), (None, 'O'));
        // A valid dated cookie is refreshed: the response carries the new last-seen date
        // and the original first-seen one.
        let res = crate::http::head::response(
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            4096,
            false,
        )
        .unwrap_or_else(|e| panic!("{e:?}"))
        .unwrap_or_else(|| panic!("complete"));
        let a = answer(&c, &res, &servers[0], &fresh, true, "GET", now);
        assert_eq!(a.flag, 'U');
        let Some(Edit::Add(_, v)) = a.edits.first() else {
            panic!("a Set-Cookie")
        };
        let v = String::from_utf8_lossy(v);
        assert!(
            v.starts_with(&format!(
                "SRV=s1|{}|{}; path=/",
                date(now + 3),
                date(now - 3600)
            )),
            "{v}"
        );
    }

    #[test]
    fn postonly_inserts_only_for_post_and_a_cookieless_server_deletes_it() {
        let (c, servers) = setup("cookie SRV insert postonly");
        let res = crate::http::head::response(
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            4096,
            false,
        )
        .unwrap_or_else(|e| panic!("{e:?}"))
        .unwrap_or_else(|| panic!("complete"));
        let none = Lookup {
            flag: 'N',
            ..Lookup::default()
        };
        assert!(answer(&c, &res, &servers[0], &none, false, "GET", 0)
            .edits
            .is_empty());
        assert_eq!(
            answer(&c, &res, &servers[0], &none, false, "POST", 0).flag,
            'I'
        );
        let mut cfg = servers[0].config.clone();
        cfg.cookie = None;
        let bare = ServerState::new(0, "b", cfg);
        let a = answer(&c, &res, &bare, &none, false, "POST", 0);
        assert_eq!(
            a.edits,
            [Edit::Add(
                "Set-Cookie",
                b"SRV=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/".to_vec()
            )]
        );
    }
}
