//! What warren learns from a connection's channel-0 methods: who the client is (user,
//! vhost, connection name, product), what was negotiated (heartbeat, frame_max,
//! channel_max), and whether either side has started closing.
//!
//! Methods are decoded with `amq-protocol`'s parser from the payload the frame tracker
//! captured. The password in `start-ok` is never kept: only the user name is extracted.

use amq_protocol::protocol::{connection, parse_class, AMQPClass};
use amq_protocol::types::{AMQPValue, FieldTable};

/// The connection as seen so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handshake {
    pub user: Option<String>,
    pub vhost: Option<String>,
    /// The client property `connection_name`, which operators set to tell clients apart.
    pub connection_name: Option<String>,
    /// The client property `product` (e.g. "AMQP 0-9-1 client library for Rust").
    pub product: Option<String>,
    /// `tune-ok`'s values: the client's answer is what both sides use.
    pub heartbeat: Option<u16>,
    pub frame_max: Option<u32>,
    pub channel_max: Option<u16>,
    /// `open-ok` seen: the handshake is over.
    pub opened: bool,
    /// The server sent `connection.close` (it is closing on purpose, e.g. node shutdown).
    pub server_closing: bool,
    /// The client sent `connection.close`.
    pub client_closing: bool,
    /// The client answered a `connection.close` with `close-ok`.
    pub client_close_ok: bool,
    /// Reply code and text of the last `connection.close` seen, for the log.
    pub close_reason: Option<(u16, String)>,
}

/// Which channel-0 method a payload carried, as far as warren cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Start,
    StartOk,
    Tune,
    TuneOk,
    Open,
    OpenOk,
    Close,
    CloseOk,
    Other,
    /// The payload did not parse as an AMQP method.
    Malformed,
}

impl Handshake {
    /// A channel-0 method frame the client sent.
    pub fn client_method(&mut self, payload: &[u8]) -> Seen {
        let Ok((_, AMQPClass::Connection(method))) = parse_class(payload) else {
            return if parse_class(payload).is_ok() {
                Seen::Other
            } else {
                Seen::Malformed
            };
        };
        match method {
            connection::AMQPMethod::StartOk(m) => {
                self.user = user_of(m.mechanism.as_str(), m.response.as_bytes());
                self.connection_name = string_property(&m.client_properties, "connection_name");
                self.product = string_property(&m.client_properties, "product");
                Seen::StartOk
            }
            connection::AMQPMethod::TuneOk(m) => {
                self.heartbeat = Some(m.heartbeat);
                self.frame_max = Some(m.frame_max);
                self.channel_max = Some(m.channel_max);
                Seen::TuneOk
            }
            connection::AMQPMethod::Open(m) => {
                self.vhost = Some(m.virtual_host.as_str().to_string());
                Seen::Open
            }
            connection::AMQPMethod::Close(m) => {
                self.client_closing = true;
                self.close_reason = Some((m.reply_code, m.reply_text.as_str().to_string()));
                Seen::Close
            }
            connection::AMQPMethod::CloseOk(_) => {
                self.client_close_ok = true;
                Seen::CloseOk
            }
            _ => Seen::Other,
        }
    }

    /// A channel-0 method frame the server sent.
    pub fn server_method(&mut self, payload: &[u8]) -> Seen {
        let Ok((_, AMQPClass::Connection(method))) = parse_class(payload) else {
            return if parse_class(payload).is_ok() {
                Seen::Other
            } else {
                Seen::Malformed
            };
        };
        match method {
            connection::AMQPMethod::Start(_) => Seen::Start,
            connection::AMQPMethod::Tune(_) => Seen::Tune,
            connection::AMQPMethod::OpenOk(_) => {
                self.opened = true;
                Seen::OpenOk
            }
            connection::AMQPMethod::Close(m) => {
                self.server_closing = true;
                self.close_reason = Some((m.reply_code, m.reply_text.as_str().to_string()));
                Seen::Close
            }
            connection::AMQPMethod::CloseOk(_) => Seen::CloseOk,
            _ => Seen::Other,
        }
    }
}

/// The user name from a `start-ok` response, never the password. PLAIN is
/// `\0user\0password`; AMQPLAIN is a field table with `LOGIN` and `PASSWORD`.
pub fn user_of(mechanism: &str, response: &[u8]) -> Option<String> {
    match mechanism {
        "PLAIN" => {
            let mut parts = response.split(|b| *b == 0);
            let _authzid = parts.next()?;
            let user = parts.next()?;
            Some(String::from_utf8_lossy(user).into_owned())
        }
        "AMQPLAIN" => amqplain_login(response),
        _ => None,
    }
}

/// Walks AMQPLAIN's length-less table looking for `LOGIN` (a long string, type `S`).
fn amqplain_login(mut data: &[u8]) -> Option<String> {
    while let Some((&name_len, rest)) = data.split_first() {
        let name = rest.get(..name_len as usize)?;
        let rest = rest.get(name_len as usize..)?;
        let (&kind, rest) = rest.split_first()?;
        if kind != b'S' {
            return None;
        }
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let value = rest.get(4..4 + len)?;
        if name == b"LOGIN" {
            return Some(String::from_utf8_lossy(value).into_owned());
        }
        data = rest.get(4 + len..)?;
    }
    None
}

pub fn string_property(table: &FieldTable, key: &str) -> Option<String> {
    match table.inner().get(key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amqp::frame::{FrameTracker, FRAME_METHOD, PROTOCOL_HEADER};
    use crate::amqp::methods;
    use amq_protocol::types::{LongString, ShortString};

    fn payload(class: &AMQPClass) -> Vec<u8> {
        methods::encode_class(class).unwrap_or_default()
    }

    #[test]
    fn start_ok_gives_the_user_but_never_the_password() {
        let mut props = FieldTable::default();
        props.insert(
            ShortString::from("connection_name"),
            AMQPValue::LongString(LongString::from("orders-consumer")),
        );
        props.insert(
            ShortString::from("product"),
            AMQPValue::LongString(LongString::from("pika")),
        );
        let class = AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
            client_properties: props,
            mechanism: "PLAIN".into(),
            response: LongString::from(&b"\0guest\0s3cret"[..]),
            locale: "en_US".into(),
        }));
        let mut h = Handshake::default();
        assert_eq!(h.client_method(&payload(&class)), Seen::StartOk);
        assert_eq!(h.user.as_deref(), Some("guest"));
        assert_eq!(h.connection_name.as_deref(), Some("orders-consumer"));
        assert_eq!(h.product.as_deref(), Some("pika"));
        assert!(!format!("{h:?}").contains("s3cret"));
    }

    #[test]
    fn amqplain_login() {
        let mut table = Vec::new();
        for (k, v) in [("LOGIN", "alice"), ("PASSWORD", "pw")] {
            table.push(k.len() as u8);
            table.extend_from_slice(k.as_bytes());
            table.push(b'S');
            table.extend_from_slice(&(v.len() as u32).to_be_bytes());
            table.extend_from_slice(v.as_bytes());
        }
        assert_eq!(user_of("AMQPLAIN", &table).as_deref(), Some("alice"));
        assert_eq!(user_of("AMQPLAIN", &table[..5]), None);
    }

    #[test]
    fn tune_ok_open_and_close_through_the_tracker() {
        let mut stream = PROTOCOL_HEADER.to_vec();
        let tune_ok = AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
            channel_max: 2047,
            frame_max: 131072,
            heartbeat: 2,
        }));
        let open = AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
            virtual_host: "/prod".into(),
        }));
        stream.extend(crate::amqp::frame::encode(
            FRAME_METHOD,
            0,
            &payload(&tune_ok),
        ));
        stream.extend(crate::amqp::frame::encode(FRAME_METHOD, 0, &payload(&open)));
        stream.extend(methods::connection_close(200, "bye"));
        let mut tracker = FrameTracker::client();
        let mut h = Handshake::default();
        let mut seen = Vec::new();
        tracker
            .feed(&stream, |f| {
                if let Some(p) = f.payload {
                    seen.push(h.client_method(p));
                }
            })
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(seen, vec![Seen::TuneOk, Seen::Open, Seen::Close]);
        assert_eq!(h.heartbeat, Some(2));
        assert_eq!(h.frame_max, Some(131072));
        assert_eq!(h.vhost.as_deref(), Some("/prod"));
        assert!(h.client_closing);
        assert_eq!(h.close_reason, Some((200, "bye".to_string())));
    }

    #[test]
    fn garbage_payload_is_malformed_not_a_panic() {
        let mut h = Handshake::default();
        assert_eq!(h.client_method(&[0, 10, 0, 11, 0xff]), Seen::Malformed);
        assert_eq!(h.server_method(&[]), Seen::Malformed);
    }
}
