//! AMQP 0-9-1 knowledge, on top of the `amq-protocol` crate's types.
//!
//! In `amqp` mode bytes still pass untouched; warren follows frame boundaries in both
//! directions ([`frame`]), reads the handshake ([`handshake`]), takes liveness from the
//! negotiated heartbeat instead of a blind idle timer, and when it must end a session it
//! tells the client with `connection.close` 320 at a frame boundary ([`methods`]). Body
//! frames are never copied to be parsed.
//!
//! Pure protocol: no sockets. The session that reads and writes these frames on sockets is
//! `crate::proxy::amqp`.

pub mod frame;
pub mod handshake;
pub mod methods;
pub mod terminate;
