//! Listening sockets and the accept loop of a frontend.
//!
//! `maxconn` is enforced before `accept()`: while the global or the frontend limit is
//! reached, warren simply stops accepting and new clients wait in the kernel's backlog,
//! which is what HAProxy does and what clients' connect timeouts expect. `rate-limit
//! sessions` works the same way: above the rate the loop pauses for as long as the sliding
//! second needs. `rate-limit sessions-per-source` refuses a connection right after
//! `accept()` (or, behind `accept-proxy`, once the PROXY header named the client): it is
//! reset, with no task spawned and no server contacted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::session;
use crate::net::AcceptBackoff;
use crate::state::{FrontendState, Process};

/// Backlog of listening sockets: the kernel caps it at `net.core.somaxconn` anyway.
const BACKLOG: i32 = 1024;

/// Binds a listening socket (`SO_REUSEADDR`, `IPV6_V6ONLY` for IPv6 as HAProxy does by
/// default, non-blocking).
pub fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    bind_v6only(addr, true)
}

/// As [`bind`]; `v6only: false` (a bind's `v4v6`) lets an IPv6 wildcard take IPv4 clients.
pub fn bind_v6only(addr: SocketAddr, v6only: bool) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(v6only)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// How a listener's clients start their connection.
#[derive(Debug, Clone, Default)]
pub struct Accept {
    /// A PROXY protocol header comes first (`accept-proxy`).
    pub proxy_header: bool,
    /// Then a TLS handshake (`ssl crt <pem>`).
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Closes a refused connection at once with a reset, so no TIME_WAIT is left on warren's
/// side (HAProxy does the same for rejected connections).
pub fn refuse(client: tokio::net::TcpStream) {
    let _ = socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO));
    drop(client);
}

/// Accepts clients until `stop` (the generation's token: a reload or the process
/// stopping), spawning one session each into `tasks`.
pub async fn accept_loop(
    listener: Arc<TcpListener>,
    accept: Accept,
    frontend: Arc<FrontendState>,
    process: Arc<Process>,
    tasks: TaskTracker,
    stop: CancellationToken,
) {
    serve_with(
        listener,
        accept,
        frontend,
        process,
        tasks,
        stop,
        session::run,
    )
    .await
}

/// The accept loop with the session each client gets as a parameter: the TCP/AMQP
/// session above, or another mode's (the HTTP proxy passes its own).
pub async fn serve_with<F, Fut>(
    listener: Arc<TcpListener>,
    accept: Accept,
    frontend: Arc<FrontendState>,
    process: Arc<Process>,
    tasks: TaskTracker,
    stop: CancellationToken,
    session: F,
) where
    F: Fn(Arc<Process>, Arc<FrontendState>, tokio::net::TcpStream, SocketAddr, Accept) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut backoff = AcceptBackoff::default();
    loop {
        // `biased`: once a reload retired this loop, it must never take one more client,
        // even when a connection and the stop are ready at the same time.
        let permits = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            p = async {
                let global = Arc::clone(&process.slots).acquire_owned().await;
                let local = Arc::clone(&frontend.slots).acquire_owned().await;
                (global, local)
            } => p,
        };
        let (Ok(global), Ok(local)) = permits else {
            return;
        };
        loop {
            let wait = frontend.session_wait();
            if wait.is_zero() {
                break;
            }
            tokio::select! {
                biased;
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        let accepted = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((client, peer)) => {
                backoff.succeeded();
                if !accept.proxy_header && !frontend.admit_source(peer.ip()) {
                    refuse(client);
                    continue;
                }
                if !super::rules::admit_connection(&frontend, &client, peer) {
                    refuse(client);
                    continue;
                }
                frontend.count_session();
                // One span per session: whatever it traces carries these fields; the session
                // records the server once connected (and the client a PROXY header names).
                let span = tracing::info_span!(
                    "session",
                    frontend = %frontend.config.name,
                    backend = frontend.backend.as_ref().map_or("-", |b| b.name()),
                    server = tracing::field::Empty,
                    client = %peer,
                );
                let (process, frontend, accept) =
                    (Arc::clone(&process), Arc::clone(&frontend), accept.clone());
                let run = session(process, frontend, client, peer, accept);
                tasks.spawn(
                    async move {
                        run.await;
                        drop((global, local));
                    }
                    .instrument(span),
                );
            }
            Err(e) => {
                // Out of file descriptors or memory: back off instead of spinning, and
                // keep the listener.
                let wait = backoff.failed();
                tracing::error!(frontend = %frontend.config.name, "accept failed: {e}; retrying in {wait:?}");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}
