//! Addresses as HAProxy writes them, shared by both syntaxes: listeners (`bind`), servers
//! and syslog targets.
//!
//! HAProxy splits host and port at the *last* colon, so `:::10000` is port 10000 on `::`
//! and `:10000` is port 10000 on every IPv4 address. Names are resolved once, when the file
//! is loaded, as HAProxy does without a `resolvers` section; server names go through
//! `init-addr` (see `dns`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

use super::model::{LogDestination, ServerDns};

/// The standard syslog port, used when a `log` address has none.
pub const SYSLOG_PORT: u16 = 514;

/// Splits `host:port` at the last colon, removing IPv6 brackets (`[::1]:5672`).
fn split_host_port(text: &str) -> (&str, Option<&str>) {
    if let Some(rest) = text.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']') {
            return (host, after.strip_prefix(':'));
        }
    }
    match text.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (text, None),
    }
}

/// Removes HAProxy's protocol prefixes that warren understands (`ipv4@`, `tcp6@`, ...).
fn strip_prefix<'a>(text: &'a str, prefixes: &[&str]) -> &'a str {
    prefixes
        .iter()
        .find_map(|p| text.strip_prefix(p))
        .unwrap_or(text)
}

/// Resolves a host name or literal to one IP address.
fn resolve_host(host: &str, port: u16) -> Result<IpAddr, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    // A fuzzer invents millions of host names: each would be a DNS query (slow, and
    // traffic to a resolver nobody asked for). Fuzzing builds resolve no names at all.
    if cfg!(fuzzing) {
        return Err(format!(
            "cannot resolve '{host}': name resolution is off in fuzzing builds"
        ));
    }
    let mut addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve '{host}': {e}"))?;
    addrs
        .next()
        .map(|a| a.ip())
        .ok_or_else(|| format!("'{host}' resolves to no address"))
}

/// Parses one listener address of a `bind` line: `ip:port`, `*:port`, `:port`, `[v6]:port`,
/// `:::port`, `host:port`, or a port range `ip:first-last` (one listener per port).
pub fn parse_bind(text: &str) -> Result<Vec<SocketAddr>, String> {
    let bare = strip_prefix(text, &["ipv4@", "ipv6@", "tcp4@", "tcp6@", "tcp@"]);
    let (host, port) = split_host_port(bare);
    let port = match port {
        Some(p) if !p.is_empty() => p,
        _ => {
            return Err(format!(
                "bind address '{text}' needs a port (for example '{bare}:5672')"
            ))
        }
    };
    let wildcard_v6 = text.starts_with("ipv6@") || text.starts_with("tcp6@");
    let ip = match host {
        "" | "*" if wildcard_v6 => IpAddr::from([0u16; 8]),
        "" | "*" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        host => resolve_host(host, 0).map_err(|e| format!("bind address '{text}': {e}"))?,
    };
    let (first, last) = match port.split_once('-') {
        Some((a, b)) => (parse_port(a, text)?, parse_port(b, text)?),
        None => {
            let p = parse_port(port, text)?;
            (p, p)
        }
    };
    if first > last {
        return Err(format!("bind address '{text}' has an empty port range"));
    }
    Ok((first..=last).map(|p| SocketAddr::new(ip, p)).collect())
}

fn parse_port(text: &str, whole: &str) -> Result<u16, String> {
    text.parse()
        .map_err(|_| format!("'{whole}' has an invalid port '{text}' (expected 0 to 65535)"))
}

/// Host and port of a server address; the port is required because warren has no
/// destination port of its own to forward to. An SRV name (`_amqp._tcp.rabbitmq`) may come
/// without a port (port 0: the records give it), as in HAProxy.
fn server_parts(text: &str) -> Result<(&str, u16), String> {
    let bare = strip_prefix(text, &["ipv4@", "ipv6@", "tcp4@", "tcp6@", "tcp@"]);
    if bare.starts_with('_') && !bare.contains(':') {
        return Ok((bare, 0));
    }
    let (host, port) = split_host_port(bare);
    let port = match port {
        Some(p) if !p.is_empty() => parse_port(p, text)?,
        _ => {
            return Err(format!(
                "server address '{text}' needs a port (for example '{bare}:5672')"
            ))
        }
    };
    if host.is_empty() {
        return Err(format!("server address '{text}' needs a host"));
    }
    Ok((host, port))
}

/// A server address with what DNS needs: an IP is taken as written (`dns` is dropped); a
/// name gets its start-up address from the `init-addr` methods in `dns` (its `fqdn` and
/// `resolved_by` are filled here). `slot`: the position of a `server-template` server.
pub fn server_with_dns(
    text: &str,
    mut dns: ServerDns,
    slot: Option<usize>,
) -> Result<(SocketAddr, Option<ServerDns>), String> {
    let (host, port) = server_parts(text)?;
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok((SocketAddr::new(ip, port), None));
    }
    if port == 0 && dns.resolvers.is_none() {
        return Err(format!(
            "server address '{text}' is an SRV name: it needs 'resolvers <section>' to be resolved"
        ));
    }
    if dns.resolvers.is_none() && dns.init_addr.is_empty() && dns.template.is_none() {
        // Nothing to follow and HAProxy's default methods: resolved once, as always.
        let ip = resolve_host(host, port).map_err(|e| format!("server address '{text}': {e}"))?;
        return Ok((SocketAddr::new(ip, port), None));
    }
    dns.fqdn = host.to_string();
    let initial = super::dns::initial(host, port, &dns, slot)
        .map_err(|e| format!("server address '{text}': {e}"))?;
    dns.resolved_by = initial.resolved_by;
    Ok((initial.addr, Some(dns)))
}

/// Parses a `log` target: `stderr`, `stdout`, an absolute path (a file), or a syslog
/// address `host[:port]` (UDP, port 514 by default), optionally prefixed `udp@`/`udp4@`/`udp6@`.
pub fn parse_log_destination(text: &str) -> Result<LogDestination, String> {
    match text {
        "stderr" | "fd@2" => return Ok(LogDestination::Stderr),
        "stdout" | "fd@1" => return Ok(LogDestination::Stdout),
        _ => {}
    }
    if text.starts_with('/') {
        return Ok(LogDestination::File(text.into()));
    }
    let bare = strip_prefix(text, &["udp4@", "udp6@", "udp@", "ipv4@", "ipv6@"]);
    let (host, port) = if bare.parse::<IpAddr>().is_ok() {
        // A bare IPv6 literal: its colons are not a port separator.
        (bare, None)
    } else {
        split_host_port(bare)
    };
    let port = match port {
        Some(p) if !p.is_empty() => parse_port(p, text)?,
        _ => SYSLOG_PORT,
    };
    if host.is_empty() {
        return Err(format!("log address '{text}' needs a host"));
    }
    let ip = resolve_host(host, port).map_err(|e| format!("log address '{text}': {e}"))?;
    Ok(LogDestination::Udp(SocketAddr::new(ip, port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> SocketAddr {
        let v = parse_bind(text).expect("valid bind");
        assert_eq!(v.len(), 1);
        v[0]
    }

    #[test]
    fn bind_forms() {
        assert_eq!(one("0.0.0.0:10000"), "0.0.0.0:10000".parse().unwrap());
        assert_eq!(one(":10000"), "0.0.0.0:10000".parse().unwrap());
        assert_eq!(one("*:10000"), "0.0.0.0:10000".parse().unwrap());
        assert_eq!(one("[::1]:10000"), "[::1]:10000".parse().unwrap());
        assert_eq!(one(":::10000"), "[::]:10000".parse().unwrap());
        assert_eq!(one("ipv4@127.0.0.1:5"), "127.0.0.1:5".parse().unwrap());
        assert_eq!(parse_bind("127.0.0.1:7-9").unwrap().len(), 3);
    }

    #[test]
    fn bind_errors() {
        assert!(parse_bind("127.0.0.1")
            .unwrap_err()
            .contains("needs a port"));
        assert!(parse_bind("127.0.0.1:99999")
            .unwrap_err()
            .contains("invalid port"));
        assert!(parse_bind("127.0.0.1:9-7")
            .unwrap_err()
            .contains("empty port range"));
    }

    fn parse_server(text: &str) -> Result<SocketAddr, String> {
        let dns = ServerDns {
            fqdn: String::new(),
            init_addr: vec![super::super::dns::InitAddr::Libc],
            resolved_by: None,
            resolvers: None,
            prefer: Default::default(),
            template: None,
        };
        server_with_dns(text, dns, None).map(|(a, _)| a)
    }

    #[test]
    fn server_forms() {
        assert_eq!(
            parse_server("127.0.0.1:5672"),
            Ok("127.0.0.1:5672".parse().unwrap())
        );
        assert_eq!(
            parse_server("[::1]:5672"),
            Ok("[::1]:5672".parse().unwrap())
        );
        assert!(parse_server("localhost:5672").is_ok());
        assert!(parse_server("127.0.0.1")
            .unwrap_err()
            .contains("needs a port"));
        assert!(parse_server("no-such-host.invalid:5672")
            .unwrap_err()
            .contains("cannot resolve"));
    }

    #[test]
    fn log_forms() {
        assert_eq!(parse_log_destination("stderr"), Ok(LogDestination::Stderr));
        assert_eq!(
            parse_log_destination("127.0.0.1"),
            Ok(LogDestination::Udp("127.0.0.1:514".parse().unwrap()))
        );
        assert_eq!(
            parse_log_destination("udp@127.0.0.1:1514"),
            Ok(LogDestination::Udp("127.0.0.1:1514".parse().unwrap()))
        );
        assert_eq!(
            parse_log_destination("::1"),
            Ok(LogDestination::Udp("[::1]:514".parse().unwrap()))
        );
        assert_eq!(
            parse_log_destination("/var/log/w.log"),
            Ok(LogDestination::File("/var/log/w.log".into()))
        );
    }
}
