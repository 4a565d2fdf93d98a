//! Sockets as the tasks above see them: a TCP stream, plain or carrying TLS.
//!
//! A leaf: it knows rustls and tokio, nothing of warren's own, so the tasks doing I/O
//! (`health`, `proxy`, `stats`) all share it without depending on one another.

mod stream;

pub use stream::{Stream, Tls};
