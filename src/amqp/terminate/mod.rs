//! Protocol knowledge for `amqp-terminate` mode, where warren plays the broker to the
//! client and a client to the node (DESIGN.md, `amqp-terminate`). No sockets here: the
//! session in `proxy::terminate` feeds these types frames and writes what they produce.
//!
//! - [`wire`]: whole frames cut from a read buffer, method ids, the few fields warren reads
//!   or rewrites in place on the hot path (delivery tags, confirms);
//! - [`tags`]: the client's one delivery-tag sequence per channel over the node epochs;
//! - [`publishes`]: publishes kept until the node confirmed them, and the client's confirms;
//! - [`topology`]: the declares and binds a session made, pruned, for replay on a new node;
//! - [`channel`]: a channel's own state (qos and consumers in order, modes, requests in
//!   flight); [`channels`]: a session's channels by number.

pub mod channel;
pub mod channels;
pub mod publishes;
pub mod relay;
pub mod tags;
pub mod topology;
pub mod wire;
