//! The settings of `mode http` proxies (HAProxy's HTTP/1.1 reverse proxy): how connections
//! are kept on each side, `option forwardfor`, and the per-request limits. Both syntaxes
//! fill these; the HTTP proxy (`crate::http`) trusts them.

use std::net::IpAddr;

/// Largest request or response head warren reads (HAProxy's `tune.bufsize`): a head that
/// does not fit is refused with 400 (request) or 502 (response).
pub const DEFAULT_BUFSIZE: u32 = 16 * 1024;

/// The smallest `tune.bufsize` accepted: below it ordinary browser requests do not fit.
pub const MIN_BUFSIZE: u32 = 1024;

/// How HTTP connections are kept open (HAProxy's `option http-keep-alive`,
/// `option http-server-close`, `option httpclose`). When a frontend and its backend
/// differ, the one that closes more wins, as in HAProxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum ConnMode {
    /// Both sides kept open between requests; server connections are pooled and reused.
    #[default]
    KeepAlive,
    /// The client side is kept open; each server connection serves one request.
    ServerClose,
    /// Both sides close after each request and response.
    Close,
}

impl ConnMode {
    pub const ALL: [(&'static str, ConnMode); 3] = [
        ("keep-alive", ConnMode::KeepAlive),
        ("server-close", ConnMode::ServerClose),
        ("close", ConnMode::Close),
    ];

    pub fn from_name(name: &str) -> Option<ConnMode> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, m)| *m)
    }

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, m)| *m == self)
            .map(|(n, _)| *n)
            .unwrap_or("keep-alive")
    }

    /// HAProxy's `option` that selects this mode.
    pub fn option(self) -> &'static str {
        match self {
            ConnMode::KeepAlive => "http-keep-alive",
            ConnMode::ServerClose => "http-server-close",
            ConnMode::Close => "httpclose",
        }
    }
}

/// `option forwardfor [except <network>] [header <name>]`: the client's address is added
/// to each request, so the management UI (and its access log) sees who asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardFor {
    /// `X-Forwarded-For` unless `header` names another.
    pub header: String,
    /// Clients in this network (address, prefix length) get no header (typically a local
    /// proxy in front of warren that already added one).
    pub except: Option<(IpAddr, u8)>,
}

impl ForwardFor {
    pub const DEFAULT_HEADER: &'static str = "X-Forwarded-For";

    /// Whether `client` is in the `except` network.
    pub fn excepted(&self, client: IpAddr) -> bool {
        let Some((net, bits)) = self.except else {
            return false;
        };
        match (net, client) {
            (IpAddr::V4(n), IpAddr::V4(c)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
                u32::from(n) & mask == u32::from(c) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(c)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
                u128::from(n) & mask == u128::from(c) & mask
            }
            _ => false,
        }
    }

    /// Parses `a.b.c.d[/len]` or an IPv6 address with an optional prefix length.
    pub fn parse_network(text: &str) -> Result<(IpAddr, u8), String> {
        let (addr, bits) = match text.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (text, None),
        };
        let ip: IpAddr = addr.parse().map_err(|_| {
            format!("'{text}' is not an address or network (for example 127.0.0.0/8)")
        })?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) => match b.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("the prefix length in '{text}' must be 0 to {max}")),
            },
        };
        Ok((ip, bits))
    }

    /// `except` as written in haproxy.cfg.
    pub fn except_text(&self) -> Option<String> {
        self.except.map(|(ip, bits)| format!("{ip}/{bits}"))
    }
}

/// A byte allowed in an HTTP header name (RFC 9110 `tchar`).
pub fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// How the persistence cookie is carried (`cookie <name> insert|rewrite|prefix`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieMode {
    /// warren adds its own `Set-Cookie` (HAProxy's default is `rewrite` when no mode is
    /// given; warren keeps that).
    Insert,
    /// The server sets the cookie; warren replaces its value with the server's id.
    Rewrite,
    /// The server's own cookie of that name gets `<server id>~` in front.
    Prefix,
}

impl CookieMode {
    pub fn name(self) -> &'static str {
        match self {
            CookieMode::Insert => "insert",
            CookieMode::Rewrite => "rewrite",
            CookieMode::Prefix => "prefix",
        }
    }

    pub fn from_name(name: &str) -> Option<CookieMode> {
        match name {
            "insert" => Some(CookieMode::Insert),
            "rewrite" => Some(CookieMode::Rewrite),
            "prefix" => Some(CookieMode::Prefix),
            _ => None,
        }
    }
}

/// `cookie <name> ...` on a backend: cookie-based persistence, as HAProxy's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookiePersist {
    pub name: String,
    pub mode: CookieMode,
    /// Insert: the cookie is not passed to servers, and a server's own is removed.
    pub indirect: bool,
    /// Insert: a response that gets the cookie is made `Cache-Control: private`.
    pub nocache: bool,
    /// Insert: only responses to POST get the cookie.
    pub postonly: bool,
    /// A cookie of that name set by the server is left alone.
    pub preserve: bool,
    pub httponly: bool,
    pub secure: bool,
    /// `domain` attributes (one `Domain=` per value, as HAProxy writes them).
    pub domains: Vec<String>,
    /// Insert: a cookie not seen for this long is ignored.
    pub maxidle: Option<std::time::Duration>,
    /// Insert: a cookie first set this long ago is ignored.
    pub maxlife: Option<std::time::Duration>,
    /// `attr <value>`: extra attributes appended as written.
    pub attrs: Vec<String>,
}

/// The HTTP settings of one frontend or backend.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpProxy {
    pub connection: ConnMode,
    /// `option forwardfor`; on either the frontend or the backend it applies.
    pub forwardfor: Option<ForwardFor>,
    /// Backends: cookie persistence.
    pub cookie: Option<CookiePersist>,
    /// `acl`, `http-request`, `http-response`, `monitor-uri`, `errorfile`.
    pub rules: super::rules::HttpRules,
}

/// Persistence that cannot work as written: server cookies without the backend's
/// `cookie`, or the reverse, or two servers with one value (warnings: HAProxy starts).
pub(super) fn check_backend(
    b: &super::model::Backend,
    line: usize,
    server_lines: &[usize],
    report: &mut super::report::Report,
) {
    let at = |i: usize| server_lines.get(i).copied().unwrap_or(line);
    let with_cookie: Vec<usize> = (0..b.servers.len())
        .filter(|i| b.servers[*i].cookie.is_some())
        .collect();
    match (&b.http.cookie, b.mode) {
        (Some(c), super::model::Mode::Http) if with_cookie.is_empty() => report.warn(
            line,
            format!("backend '{}' has 'cookie {}' but no server has 'cookie <value>': no request will stick", b.name, c.name),
        ),
        (None, _) | (_, super::model::Mode::Tcp | super::model::Mode::Amqp) => {
            if let Some(i) = with_cookie.first() {
                report.warn(
                    at(*i),
                    format!("'cookie' on server '{}' is ignored: backend '{}' has no 'cookie <name>' in mode http", b.servers[*i].name, b.name),
                );
            }
        }
        _ => {}
    }
    for (k, i) in with_cookie.iter().enumerate() {
        let value = &b.servers[*i].cookie;
        if let Some(j) = with_cookie[..k]
            .iter()
            .find(|j| &b.servers[**j].cookie == value)
        {
            report.warn(
                at(*i),
                format!("servers '{}' and '{}' of backend '{}' have the same cookie value: requests with it go to the first that is up", b.servers[*j].name, b.servers[*i].name, b.name),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_and_exceptions() {
        let f = ForwardFor {
            header: ForwardFor::DEFAULT_HEADER.into(),
            except: Some(
                ForwardFor::parse_network("127.0.0.0/8").unwrap_or_else(|e| panic!("{e}")),
            ),
        };
        assert!(f.excepted("127.1.2.3".parse().unwrap_or_else(|_| unreachable!())));
        assert!(!f.excepted("10.0.0.1".parse().unwrap_or_else(|_| unreachable!())));
        assert!(!f.excepted("::1".parse().unwrap_or_else(|_| unreachable!())));
        assert!(ForwardFor::parse_network("10.0.0.0/33").is_err());
        assert!(ForwardFor::parse_network("nonsense").is_err());
        assert_eq!(
            ForwardFor::parse_network("::1"),
            Ok(("::1".parse().unwrap_or_else(|_| unreachable!()), 128))
        );
        let all = ForwardFor {
            except: Some(ForwardFor::parse_network("0.0.0.0/0").unwrap_or_else(|e| panic!("{e}"))),
            ..f
        };
        assert!(all.excepted("8.8.8.8".parse().unwrap_or_else(|_| unreachable!())));
    }
}
