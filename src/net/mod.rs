//! Sockets as the tasks above see them: a TCP stream, plain or carrying TLS, and the wait
//! after a failed accept.
//!
//! A leaf: it knows rustls and tokio, nothing of warren's own, so the tasks doing I/O
//! (`health`, `proxy`, `stats`) all share it without depending on one another.

mod backoff;
mod stream;

pub use backoff::AcceptBackoff;
pub use stream::{Stream, Tls};
