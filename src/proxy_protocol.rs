//! The PROXY protocol (HAProxy's `doc/proxy-protocol.txt`), versions 1 (text) and 2
//! (binary): who the real client is, when a load balancer stands in between.
//!
//! Warren writes it to servers (`send-proxy`, `send-proxy-v2`: RabbitMQ with
//! `proxy_protocol = true` then shows the client's address) and reads it from clients on a
//! bind with `accept-proxy` (warren behind another balancer). Reading peeks first and then
//! consumes exactly the header, so no byte of the client's own stream is lost.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The 12 bytes every v2 header starts with.
const V2_SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];
/// A v1 line is at most 107 bytes, CRLF included.
const V1_MAX: usize = 107;
/// Address blocks beyond this (TLVs included) are refused: nobody needs more, and the
/// header is read into memory.
const V2_MAX_LEN: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

impl From<crate::config::ProxyProtocol> for Version {
    fn from(v: crate::config::ProxyProtocol) -> Version {
        match v {
            crate::config::ProxyProtocol::V1 => Version::V1,
            crate::config::ProxyProtocol::V2 => Version::V2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("no PROXY protocol header")]
    Missing,
    #[error("malformed PROXY protocol header: {0}")]
    Malformed(&'static str),
    #[error("no complete PROXY protocol header in time")]
    Timeout,
    #[error("the connection closed before the PROXY protocol header ended")]
    Closed,
}

/// What a header said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// The original client and the address it connected to.
    Proxied {
        source: SocketAddr,
        destination: SocketAddr,
    },
    /// v1 `UNKNOWN` or v2 `LOCAL`: a health check of the balancer in front; keep the real
    /// peer address.
    Local,
}

/// Encodes a header announcing `source` → `destination`. Mixed families (an IPv4 client
/// on an IPv6 socket) are expressed in IPv6, as the spec asks.
pub fn encode(version: Version, source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let (source, destination) = same_family(source, destination);
    match version {
        Version::V1 => {
            let family = if source.is_ipv4() { "TCP4" } else { "TCP6" };
            format!(
                "PROXY {family} {} {} {} {}\r\n",
                source.ip(),
                destination.ip(),
                source.port(),
                destination.port()
            )
            .into_bytes()
        }
        Version::V2 => {
            let mut out = V2_SIGNATURE.to_vec();
            out.push(0x21); // version 2, PROXY command
            match (source.ip(), destination.ip()) {
                (IpAddr::V4(s), IpAddr::V4(d)) => {
                    out.push(0x11); // TCP over IPv4
                    out.extend_from_slice(&12u16.to_be_bytes());
                    out.extend_from_slice(&s.octets());
                    out.extend_from_slice(&d.octets());
                }
                (s, d) => {
                    out.push(0x21); // TCP over IPv6
                    out.extend_from_slice(&36u16.to_be_bytes());
                    out.extend_from_slice(&v6(s).octets());
                    out.extend_from_slice(&v6(d).octets());
                }
            }
            out.extend_from_slice(&source.port().to_be_bytes());
            out.extend_from_slice(&destination.port().to_be_bytes());
            out
        }
    }
}

fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

fn same_family(s: SocketAddr, d: SocketAddr) -> (SocketAddr, SocketAddr) {
    if s.is_ipv4() == d.is_ipv4() {
        (s, d)
    } else {
        (
            SocketAddr::new(IpAddr::V6(v6(s.ip())), s.port()),
            SocketAddr::new(IpAddr::V6(v6(d.ip())), d.port()),
        )
    }
}

/// Parses a header at the start of `data`: `Ok(Some((header, length)))` when complete,
/// `Ok(None)` when more bytes are needed.
pub fn parse(data: &[u8]) -> Result<Option<(Header, usize)>, HeaderError> {
    if data.is_empty() {
        return Ok(None);
    }
    let sig = &V2_SIGNATURE[..data.len().min(12)];
    if data[..sig.len()] == *sig {
        return parse_v2(data);
    }
    let v1 = b"PROXY ";
    let n = data.len().min(v1.len());
    if data[..n] == v1[..n] {
        return parse_v1(data);
    }
    Err(HeaderError::Missing)
}

fn parse_v1(data: &[u8]) -> Result<Option<(Header, usize)>, HeaderError> {
    let Some(end) = data.windows(2).take(V1_MAX - 1).position(|w| w == b"\r\n") else {
        return if data.len() >= V1_MAX {
            Err(HeaderError::Malformed("v1 line longer than 107 bytes"))
        } else {
            Ok(None)
        };
    };
    let line = std::str::from_utf8(&data[..end])
        .map_err(|_| HeaderError::Malformed("v1 line is not text"))?;
    let words: Vec<&str> = line.split(' ').collect();
    let header = match words.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Header::Local,
        ["PROXY", family @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let ip = |s: &str| {
                s.parse::<IpAddr>()
                    .map_err(|_| HeaderError::Malformed("bad address"))
            };
            let port = |s: &str| {
                s.parse::<u16>()
                    .map_err(|_| HeaderError::Malformed("bad port"))
            };
            let (src, dst) = (ip(src)?, ip(dst)?);
            // Both addresses in the announced family: `TCP6` with one IPv4 address would
            // give a mixed pair, which no socket has (HAProxy refuses it too).
            let v4 = *family == "TCP4";
            if src.is_ipv4() != v4 || dst.is_ipv4() != v4 {
                return Err(HeaderError::Malformed("address family does not match"));
            }
            Header::Proxied {
                source: SocketAddr::new(src, port(sport)?),
                destination: SocketAddr::new(dst, port(dport)?),
            }
        }
        _ => {
            return Err(HeaderError::Malformed(
                "v1 line is not 'PROXY TCP4|TCP6|UNKNOWN ...'",
            ))
        }
    };
    Ok(Some((header, end + 2)))
}

fn parse_v2(data: &[u8]) -> Result<Option<(Header, usize)>, HeaderError> {
    if data.len() < 16 {
        return Ok(None);
    }
    let (ver_cmd, family) = (data[12], data[13]);
    let len = u16::from_be_bytes([data[14], data[15]]) as usize;
    if ver_cmd >> 4 != 2 {
        return Err(HeaderError::Malformed("v2 version is not 2"));
    }
    if len > V2_MAX_LEN {
        return Err(HeaderError::Malformed("v2 address block too long"));
    }
    if data.len() < 16 + len {
        return Ok(None);
    }
    let body = &data[16..16 + len];
    let header = match (ver_cmd & 0x0F, family) {
        (0x0, _) => Header::Local,
        (0x1, 0x11) if len >= 12 => {
            let ip = |o: usize| {
                IpAddr::V4(Ipv4Addr::new(
                    body[o],
                    body[o + 1],
                    body[o + 2],
                    body[o + 3],
                ))
            };
            let port = |o: usize| u16::from_be_bytes([body[o], body[o + 1]]);
            Header::Proxied {
                source: SocketAddr::new(ip(0), port(8)),
                destination: SocketAddr::new(ip(4), port(10)),
            }
        }
        (0x1, 0x21) if len >= 36 => {
            let ip = |o: usize| {
                let mut b = [0u8; 16];
                b.copy_from_slice(&body[o..o + 16]);
                IpAddr::V6(Ipv6Addr::from(b))
            };
            let port = |o: usize| u16::from_be_bytes([body[o], body[o + 1]]);
            Header::Proxied {
                source: SocketAddr::new(ip(0), port(32)),
                destination: SocketAddr::new(ip(16), port(34)),
            }
        }
        // UNSPEC, UNIX or UDP: nothing warren can use; the peer address stands.
        (0x1, 0x00 | 0x31 | 0x32 | 0x12 | 0x22) => Header::Local,
        (0x1, _) => {
            return Err(HeaderError::Malformed(
                "v2 address family unknown or block too short",
            ))
        }
        _ => return Err(HeaderError::Malformed("v2 command unknown")),
    };
    Ok(Some((header, 16 + len)))
}

/// Reads the header a client must send on an `accept-proxy` bind, consuming exactly its
/// bytes (v2: the fixed 16 bytes, then the announced length; v1: up to the CRLF), so the
/// client's own stream starts right after. Fails on a missing or malformed header, or none
/// by `deadline`.
pub async fn read(stream: &mut TcpStream, deadline: Instant) -> Result<Header, HeaderError> {
    match tokio::time::timeout_at(deadline, read_header(stream)).await {
        Ok(result) => result,
        Err(_) => Err(HeaderError::Timeout),
    }
}

async fn read_header(stream: &mut TcpStream) -> Result<Header, HeaderError> {
    let mut buf = Vec::with_capacity(64);
    let mut byte = [0u8; 1];
    stream
        .read_exact(&mut byte)
        .await
        .map_err(|_| HeaderError::Closed)?;
    buf.push(byte[0]);
    if byte[0] == V2_SIGNATURE[0] {
        buf.resize(16, 0);
        stream
            .read_exact(&mut buf[1..])
            .await
            .map_err(|_| HeaderError::Closed)?;
        if buf[..12] != V2_SIGNATURE {
            return Err(HeaderError::Missing);
        }
        let len = u16::from_be_bytes([buf[14], buf[15]]) as usize;
        if len > V2_MAX_LEN {
            return Err(HeaderError::Malformed("v2 address block too long"));
        }
        buf.resize(16 + len, 0);
        stream
            .read_exact(&mut buf[16..])
            .await
            .map_err(|_| HeaderError::Closed)?;
    } else {
        // v1: a short text line; byte by byte so nothing after the CRLF is consumed.
        while !buf.ends_with(b"\r\n") {
            if buf.len() >= V1_MAX {
                return Err(HeaderError::Malformed("v1 line longer than 107 bytes"));
            }
            if parse(&buf)?.is_none() {
                stream
                    .read_exact(&mut byte)
                    .await
                    .map_err(|_| HeaderError::Closed)?;
                buf.push(byte[0]);
            }
        }
    }
    match parse(&buf)? {
        Some((header, len)) if len == buf.len() => Ok(header),
        _ => Err(HeaderError::Malformed(
            "header length does not match its content",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn v1_round_trip_and_exact_length() {
        let h = encode(
            Version::V1,
            addr("192.168.0.1:56324"),
            addr("192.168.0.11:443"),
        );
        assert_eq!(h, b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
        let mut data = h.clone();
        data.extend_from_slice(b"AMQP");
        let parsed = parse(&data).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            parsed,
            Some((
                Header::Proxied {
                    source: addr("192.168.0.1:56324"),
                    destination: addr("192.168.0.11:443")
                },
                h.len()
            ))
        );
        assert_eq!(parse(b"PROXY UNKNOWN\r\n"), Ok(Some((Header::Local, 15))));
    }

    #[test]
    fn v2_round_trip_both_families() {
        for (s, d) in [
            ("10.0.0.1:1234", "10.0.0.2:5672"),
            ("[2001:db8::1]:1234", "[2001:db8::2]:5672"),
        ] {
            let h = encode(Version::V2, addr(s), addr(d));
            assert_eq!(
                parse(&h),
                Ok(Some((
                    Header::Proxied {
                        source: addr(s),
                        destination: addr(d)
                    },
                    h.len()
                )))
            );
        }
        // Mixed families come out as IPv6.
        let h = encode(Version::V2, addr("10.0.0.1:1"), addr("[::1]:2"));
        assert!(
            matches!(parse(&h), Ok(Some((Header::Proxied { source, .. }, _))) if source.is_ipv6())
        );
    }

    #[test]
    fn partial_headers_ask_for_more_and_garbage_is_refused() {
        let h = encode(Version::V2, addr("10.0.0.1:1234"), addr("10.0.0.2:5672"));
        for cut in 1..h.len() {
            assert_eq!(parse(&h[..cut]), Ok(None), "cut at {cut}");
        }
        let h1 = encode(Version::V1, addr("10.0.0.1:1234"), addr("10.0.0.2:5672"));
        for cut in 1..h1.len() {
            assert_eq!(parse(&h1[..cut]), Ok(None), "v1 cut at {cut}");
        }
        assert_eq!(parse(b"AMQP\x00\x00\x09\x01"), Err(HeaderError::Missing));
        assert!(matches!(
            parse(b"PROXY TCP4 1.2.3.4 ::1 1 2\r\n"),
            Err(HeaderError::Malformed(_))
        ));
        assert!(matches!(
            parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n"),
            Err(HeaderError::Malformed(_))
        ));
        let long = [b"PROXY ".as_slice(), &[b'1'; 120]].concat();
        assert!(matches!(parse(&long), Err(HeaderError::Malformed(_))));
        let mut bad_len = h.clone();
        bad_len[14] = 0xFF;
        assert!(matches!(parse(&bad_len), Err(HeaderError::Malformed(_))));
    }
}
