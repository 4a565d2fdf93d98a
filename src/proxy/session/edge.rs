//! The first phase of a session: the client's side of the connection-level handshakes,
//! before any server is bothered. The PROXY header (who the client really is, when warren
//! sits behind another balancer), TLS (AMQPS), and in `amqp` mode the protocol header.

use std::net::SocketAddr;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::super::amqp::{self, HeaderError};
use super::super::listener::Accept;
use crate::log::tcplog::{Cause, Phase};
use crate::net::{Stream, Tls};
use crate::proxy_protocol;
use crate::state::FrontendState;

/// A client past the connection-level handshakes.
pub(super) struct Edge {
    pub client: Stream,
    /// The client, as the PROXY header says when there is one.
    pub peer: SocketAddr,
    /// The address the client connected to (passed on in warren's own PROXY header).
    pub destination: SocketAddr,
}

/// Why the session ended at its edge.
pub(super) enum Stop {
    /// Refused once the PROXY header named the client (rate limit per source): no line.
    Refused(TcpStream),
    /// Logged with this termination state.
    Failed(Failure),
}

/// What the log line says about a session that ended before reaching a server.
pub(super) struct Failure {
    pub peer: SocketAddr,
    pub cause: Cause,
    pub phase: Phase,
    pub extra: Option<String>,
    /// What the client sent (a wrong or slow AMQP header is logged even with
    /// `option dontlognull`).
    pub bytes_to_server: u64,
}

impl Failure {
    fn new(peer: SocketAddr, cause: Cause, extra: Option<String>) -> Failure {
        Failure {
            peer,
            cause,
            phase: Phase::Connect,
            extra,
            bytes_to_server: 0,
        }
    }
}

/// The PROXY header (when the bind has `accept-proxy`), then TLS (when it has `ssl`),
/// both within `deadline` (`timeout client-hs`, else `timeout handshake`).
pub(super) async fn handshakes(
    frontend: &FrontendState,
    mut tcp: TcpStream,
    mut peer: SocketAddr,
    accept: &Accept,
    deadline: Instant,
) -> Result<Edge, Stop> {
    // Warren behind another balancer: the header says who the client really is, and
    // that address is the one balanced on, logged, and passed on.
    let mut destination = tcp.local_addr().unwrap_or(peer);
    if accept.proxy_header {
        match proxy_protocol::read(&mut tcp, deadline).await {
            Ok(proxy_protocol::Header::Proxied {
                source,
                destination: d,
            }) => (peer, destination) = (source, d),
            Ok(proxy_protocol::Header::Local) => {}
            Err(e) => {
                let extra = Some(format!("{{{e}}}"));
                return Err(Stop::Failed(Failure::new(peer, Cause::ClientAbort, extra)));
            }
        }
        // Only now is the client known: the accept loop saw the balancer in front.
        if !frontend.admit_source(peer.ip()) {
            return Err(Stop::Refused(tcp));
        }
    }
    let client = match &accept.tls {
        None => Stream::Plain(tcp),
        // Boxed: only TLS sessions should pay for the handshake's state.
        Some(config) => {
            match tokio::time::timeout_at(deadline, Box::pin(Tls::accept(tcp, config))).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    let extra = Some(format!("{{TLS handshake failed: {e}}}"));
                    return Err(Stop::Failed(Failure::new(peer, Cause::ClientAbort, extra)));
                }
                Err(_) => {
                    let extra = Some(
                        "{no TLS handshake in time (timeout client-hs, else timeout handshake)}"
                            .into(),
                    );
                    return Err(Stop::Failed(Failure::new(
                        peer,
                        Cause::ClientTimeout,
                        extra,
                    )));
                }
            }
        }
    };
    Ok(Edge {
        client,
        peer,
        destination,
    })
}

/// AMQP mode: refuses what is not AMQP 0-9-1 before bothering a node with it.
pub(super) async fn amqp_header(edge: &mut Edge, deadline: Instant) -> Result<(), Failure> {
    let (header, got) = amqp::read_protocol_header(&mut edge.client, deadline).await;
    let Err(e) = header else {
        return Ok(());
    };
    let (cause, extra) = match e {
        HeaderError::NotAmqp => (
            Cause::ClientAbort,
            Some("{not an AMQP 0-9-1 client}".into()),
        ),
        HeaderError::Timeout => (
            Cause::ClientTimeout,
            Some("{no AMQP header within timeout handshake}".into()),
        ),
        HeaderError::Closed => (Cause::ClientAbort, None),
    };
    let mut failure = Failure::new(edge.peer, cause, extra);
    failure.bytes_to_server = got as u64;
    Err(failure)
}
