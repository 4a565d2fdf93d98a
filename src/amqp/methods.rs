//! The frames warren writes itself, encoded with `amq-protocol`'s generators: the
//! `connection.close` that tells a client why its session ends, and the client side of a
//! handshake for the AMQP login health check.

use amq_protocol::protocol::{connection, gen_class, AMQPClass};
use amq_protocol::types::{FieldTable, LongString};

use super::frame::{encode, FRAME_METHOD};

/// AMQP reply code CONNECTION_FORCED: "an operator intervened to close the connection".
pub const CONNECTION_FORCED: u16 = 320;
/// AMQP reply code for a normal close.
pub const REPLY_SUCCESS: u16 = 200;
/// AMQP reply code FRAME_ERROR: "the sender sent a malformed frame that the recipient could
/// not decode"; RabbitMQ closes with it for oversized frames and a bad frame-end.
pub const FRAME_ERROR: u16 = 501;

/// Encodes a method's payload (class id, method id, arguments).
pub fn encode_class(class: &AMQPClass) -> Option<Vec<u8>> {
    cookie_factory::gen_simple(gen_class(class), Vec::new()).ok()
}

fn method_frame(class: AMQPClass) -> Vec<u8> {
    // Encoding a well-formed method into a Vec cannot fail; an empty frame would be
    // rejected by the peer rather than crash warren if it ever did.
    encode(FRAME_METHOD, 0, &encode_class(&class).unwrap_or_default())
}

/// `connection.close` on channel 0. The text is cut to 255 bytes (a short string), on a
/// character boundary.
pub fn connection_close(code: u16, text: &str) -> Vec<u8> {
    let mut end = text.len().min(255);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    method_frame(AMQPClass::Connection(connection::AMQPMethod::Close(
        connection::Close {
            reply_code: code,
            reply_text: text[..end].into(),
            class_id: 0,
            method_id: 0,
        },
    )))
}

pub fn connection_close_ok() -> Vec<u8> {
    method_frame(AMQPClass::Connection(connection::AMQPMethod::CloseOk(
        connection::CloseOk {},
    )))
}

/// `start-ok` with PLAIN credentials, as the login check sends it.
pub fn start_ok_plain(user: &str, password: &str) -> Vec<u8> {
    let mut props = FieldTable::default();
    props.insert(
        "product".into(),
        amq_protocol::types::AMQPValue::LongString("warren health check".into()),
    );
    props.insert(
        "connection_name".into(),
        amq_protocol::types::AMQPValue::LongString("warren health check".into()),
    );
    let response = format!("\0{user}\0{password}");
    method_frame(AMQPClass::Connection(connection::AMQPMethod::StartOk(
        connection::StartOk {
            client_properties: props,
            mechanism: "PLAIN".into(),
            response: LongString::from(response.as_bytes()),
            locale: "en_US".into(),
        },
    )))
}

/// `tune-ok` accepting the server's limits with heartbeats off (a check lives for
/// milliseconds).
pub fn tune_ok(channel_max: u16, frame_max: u32) -> Vec<u8> {
    method_frame(AMQPClass::Connection(connection::AMQPMethod::TuneOk(
        connection::TuneOk {
            channel_max,
            frame_max,
            heartbeat: 0,
        },
    )))
}

pub fn open(vhost: &str) -> Vec<u8> {
    method_frame(AMQPClass::Connection(connection::AMQPMethod::Open(
        connection::Open {
            virtual_host: vhost.into(),
        },
    )))
}
