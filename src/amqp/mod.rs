//! AMQP 0-9-1 knowledge, on top of the `amq-protocol` crate's types.
//!
//! In `amqp` mode bytes still pass untouched; warren follows frame boundaries in both
//! directions ([`frame`]), reads the handshake ([`handshake`]), takes liveness from the
//! negotiated heartbeat instead of a blind idle timer, and when it must end a session it
//! tells the client with `connection.close` 320 at a frame boundary ([`methods`],
//! [`session`]). Body frames are never copied to be parsed.

pub mod frame;
pub mod handshake;
pub mod methods;
pub mod session;
pub mod terminate;
