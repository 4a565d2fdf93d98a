//! The server name of a TLS ClientHello, read from a client's first bytes without
//! terminating TLS (`req.ssl_sni`): how a TCP frontend routes AMQPS clients by host name
//! while the nodes keep their own certificates.

/// What the buffered bytes say so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hello {
    /// More bytes are needed to decide.
    Partial,
    /// Not a TLS ClientHello, or one without a server name: `req.ssl_sni` has no value.
    NoName,
    Name(String),
}

/// The largest ClientHello record read: one TLS record (16 KiB) and its header.
pub const MAX_HELLO: usize = 16 * 1024 + 5;

/// Parses the first TLS record in `buf`, as far as it goes.
pub fn server_name(buf: &[u8]) -> Hello {
    // Record header: type 22 (handshake), version 3.x, length.
    if buf.is_empty() {
        return Hello::Partial;
    }
    if buf[0] != 22 {
        return Hello::NoName;
    }
    if buf.len() < 5 {
        return Hello::Partial;
    }
    if buf[1] != 3 {
        return Hello::NoName;
    }
    let len = usize::from(u16::from_be_bytes([buf[3], buf[4]]));
    let Some(record) = buf.get(5..5 + len) else {
        return Hello::Partial;
    };
    parse_hello(record).map_or(Hello::NoName, Hello::Name)
}

/// The SNI host name of a ClientHello handshake message (the record's body).
fn parse_hello(msg: &[u8]) -> Option<String> {
    let mut r = Reader(msg);
    if r.u8()? != 1 {
        return None; // not a ClientHello
    }
    let body_len = r.u24()?;
    let mut body = Reader(r.take(body_len)?);
    body.take(2 + 32)?; // version, random
    let session_id = usize::from(body.u8()?);
    body.take(session_id)?;
    let suites = usize::from(body.u16()?);
    body.take(suites)?;
    let compression = usize::from(body.u8()?);
    body.take(compression)?;
    let ext_len = usize::from(body.u16()?);
    let mut exts = Reader(body.take(ext_len)?);
    while !exts.0.is_empty() {
        let kind = exts.u16()?;
        let len = usize::from(exts.u16()?);
        let data = exts.take(len)?;
        if kind != 0 {
            continue;
        }
        let mut list = Reader(data);
        let list_len = usize::from(list.u16()?);
        let mut names = Reader(list.take(list_len)?);
        while !names.0.is_empty() {
            let name_type = names.u8()?;
            let len = usize::from(names.u16()?);
            let name = names.take(len)?;
            if name_type == 0 {
                return std::str::from_utf8(name).ok().map(str::to_string);
            }
        }
    }
    None
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u24(&mut self) -> Option<usize> {
        self.take(3)
            .map(|b| (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ClientHello record with an SNI extension for `name`.
    pub fn hello(name: &str) -> Vec<u8> {
        let n = name.as_bytes();
        let mut sni = Vec::new();
        sni.extend_from_slice(&((n.len() + 3) as u16).to_be_bytes());
        sni.push(0);
        sni.extend_from_slice(&(n.len() as u16).to_be_bytes());
        sni.extend_from_slice(n);
        let mut ext = vec![0, 0];
        ext.extend_from_slice(&(sni.len() as u16).to_be_bytes());
        ext.extend_from_slice(&sni);
        let mut body = vec![3, 3];
        body.extend_from_slice(&[0; 32]);
        body.push(0); // session id
        body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one suite
        body.extend_from_slice(&[1, 0]); // compression: null
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let mut msg = vec![1];
        msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        msg.extend_from_slice(&body);
        let mut rec = vec![22, 3, 1];
        rec.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        rec.extend_from_slice(&msg);
        rec
    }

    #[test]
    fn finds_the_name_once_the_record_is_complete() {
        let rec = hello("rabbit.example.com");
        for cut in 0..rec.len() {
            assert_eq!(server_name(&rec[..cut]), Hello::Partial, "cut at {cut}");
        }
        assert_eq!(server_name(&rec), Hello::Name("rabbit.example.com".into()));
    }

    #[test]
    fn other_bytes_have_no_name() {
        assert_eq!(server_name(b"AMQP\x00\x00\x09\x01"), Hello::NoName);
        let mut rec = hello("x");
        rec[5] = 2; // a ServerHello
        assert_eq!(server_name(&rec), Hello::NoName);
        // A length that lies about what follows.
        let mut rec = hello("abc");
        let last = rec.len() - 4;
        rec[last] = 0xff;
        assert_eq!(server_name(&rec), Hello::NoName);
    }
}
