//! Applies a proxy's compiled rules to one connection: once at accept (`tcp-request
//! connection`), once when the session starts (`tcp-request session`, `tcp-request
//! content`, `use_backend`, the backend's content rules, `use-server`). Never per packet;
//! a proxy without rules skips all of it.
//!
//! Content rules that read the client's first bytes (`req.ssl_sni`) read them for up to
//! `tcp-request inspect-delay` (at most one TLS record); those bytes are handed back so
//! the session sends them to the server before forwarding the rest.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::acl::sni::{self, Hello};
use crate::acl::{Action, Facts, Fetch, Rules, Sample};
use crate::net::Stream;
use crate::state::{BackendState, FrontendState};

/// What one connection looks like to a condition (the HTTP proxy wraps it with the
/// request's facts).
pub struct Conn<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// `Some` when warren terminated TLS: the SNI, if the client sent one.
    pub tls: Option<Option<&'a str>>,
    /// The SNI read from a ClientHello passing through (`req.ssl_sni`).
    pub payload_sni: Option<&'a str>,
    pub frontend: &'a FrontendState,
    /// The backend chosen so far (the default one until `use_backend` decides).
    pub backend: Option<&'a BackendState>,
}

impl Facts for Conn<'_> {
    fn sample(&self, fetch: &Fetch) -> Sample<'_> {
        let backend = |index: &Option<usize>| match index {
            Some(i) => self.frontend.backends.get(*i).map(|b| &**b),
            None => self.backend,
        };
        match fetch {
            Fetch::Src => Sample::Ip(self.src.ip()),
            Fetch::Dst => Sample::Ip(self.dst.ip()),
            Fetch::SrcPort => Sample::Int(i64::from(self.src.port())),
            Fetch::DstPort => Sample::Int(i64::from(self.dst.port())),
            Fetch::SslFc => Sample::Bool(self.tls.is_some()),
            Fetch::SslFcSni => self.tls.flatten().map_or(Sample::Missing, Sample::Str),
            Fetch::ReqSslSni => self.payload_sni.map_or(Sample::Missing, Sample::Str),
            Fetch::Nbsrv(i) => backend(i).map_or(Sample::Missing, |b| {
                // HAProxy: the active servers, or the backup ones when none is active.
                let (active, backup) = b.usable_counts();
                Sample::Int(if active > 0 { active } else { backup } as i64)
            }),
            Fetch::BeConn(i) => backend(i).map_or(Sample::Missing, |b| {
                let current: u64 = b
                    .servers
                    .iter()
                    .map(|s| u64::from(s.counters.current.load(Ordering::Relaxed)))
                    .sum();
                let queued = u64::from(b.counters.queued.load(Ordering::Relaxed));
                Sample::Int((current + queued) as i64)
            }),
            Fetch::FeConn(_) => Sample::Int(i64::from(
                self.frontend.counters.current.load(Ordering::Relaxed),
            )),
            Fetch::AlwaysTrue => Sample::Bool(true),
            Fetch::AlwaysFalse => Sample::Bool(false),
            // The message's fetches: answered by `http::acl` around these facts.
            Fetch::Path
            | Fetch::Method
            | Fetch::ReqHdr(_)
            | Fetch::ResHdr(_)
            | Fetch::HttpAuth(_) => Sample::Missing,
        }
    }
}

/// `tcp-request connection` rules, right after accept: `false` refuses the connection
/// (counted in `dcon`, not logged, as in HAProxy).
pub fn admit_connection(frontend: &FrontendState, client: &TcpStream, peer: SocketAddr) -> bool {
    let rules = &frontend.config.rules.connection;
    if rules.is_empty() {
        return true;
    }
    let conn = Conn {
        src: peer,
        dst: client.local_addr().unwrap_or(peer),
        tls: None,
        payload_sni: None,
        frontend,
        backend: frontend.backend.as_deref(),
    };
    if Rules::verdict(rules, &conn) == Action::Reject {
        frontend.counters.denied.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    true
}

/// Where a session goes.
#[derive(Debug)]
pub struct Route {
    pub backend: Option<Arc<BackendState>>,
    /// `use-server`: the server to try first.
    pub server: Option<usize>,
    /// Client bytes read while inspecting, to send to the server first.
    pub prefix: Vec<u8>,
    /// How many of them reached the server (for the log line).
    pub prefix_len: usize,
}

impl Route {
    /// Straight to `backend`, no rule involved.
    pub fn to(backend: Option<Arc<BackendState>>) -> Route {
        Route {
            backend,
            server: None,
            prefix: Vec::new(),
            prefix_len: 0,
        }
    }
}

/// Whether a session of `frontend` has session-time rules to apply (its own, or its
/// default backend's).
pub fn apply(frontend: &FrontendState) -> bool {
    !frontend.config.rules.is_empty()
        || frontend
            .backend
            .as_ref()
            .is_some_and(|b| !b.config.rules.is_empty())
}

/// Why a session was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// `tcp-request session reject`: counted in `dses`, not logged.
    Session,
    /// `tcp-request content reject`: counted in `dreq`, logged (`PR`).
    Content,
}

/// The frontend's `tcp-request session` then `tcp-request content` rules, counted in
/// `dses` / `dreq` when they reject (also run by the HTTP proxy, once per connection
/// before its first request).
pub fn admit_session(frontend: &FrontendState, conn: &Conn<'_>) -> Result<(), Denied> {
    let rules = &frontend.config.rules;
    if Rules::verdict(&rules.session, conn) == Action::Reject {
        frontend
            .counters
            .denied_sessions
            .fetch_add(1, Ordering::Relaxed);
        return Err(Denied::Session);
    }
    if Rules::verdict(&rules.content, conn) == Action::Reject {
        frontend
            .counters
            .denied_requests
            .fetch_add(1, Ordering::Relaxed);
        return Err(Denied::Content);
    }
    Ok(())
}

/// Applies the session-time rules of the frontend and of the backend they lead to.
pub async fn route(
    frontend: &FrontendState,
    client: &mut Stream,
    src: SocketAddr,
    dst: SocketAddr,
) -> Result<Route, Denied> {
    let rules = &frontend.config.rules;
    let default = frontend.backend.clone();
    let mut prefix = Vec::new();
    let mut payload_sni = None;
    if rules.reads_payload() {
        if let (Some(delay), Stream::Plain(tcp)) = (rules.inspect_delay, &mut *client) {
            (prefix, payload_sni) = read_hello(tcp, Instant::now() + delay).await;
        }
    }
    let mut conn = Conn {
        src,
        dst,
        tls: match client {
            Stream::Plain(_) => None,
            Stream::Tls(_) => Some(client.server_name()),
        },
        payload_sni: payload_sni.as_deref(),
        frontend,
        backend: default.as_deref(),
    };
    admit_session(frontend, &conn)?;
    let backend = match rules.backend(&conn) {
        Some(i) => frontend.backends.get(i).cloned(),
        None => default.clone(),
    };
    let mut server = None;
    if let Some(b) = &backend {
        conn.backend = Some(b);
        // A backend's own content rules apply once it is chosen (not again for a listen
        // section, whose rules are its frontend's).
        if Rules::verdict(&b.config.rules.content, &conn) == Action::Reject {
            frontend
                .counters
                .denied_requests
                .fetch_add(1, Ordering::Relaxed);
            return Err(Denied::Content);
        }
        server = b.config.rules.server(&conn);
    }
    Ok(Route {
        backend,
        server,
        prefix,
        prefix_len: 0,
    })
}

/// Reads the client's first TLS record until its SNI is known, the client stops, or the
/// deadline passes. Returns the bytes read and the name, if any.
async fn read_hello(tcp: &mut TcpStream, deadline: Instant) -> (Vec<u8>, Option<String>) {
    let mut buf = Vec::with_capacity(1024);
    loop {
        match sni::server_name(&buf) {
            Hello::Name(name) => return (buf, Some(name)),
            Hello::NoName => return (buf, None),
            Hello::Partial if buf.len() >= sni::MAX_HELLO => return (buf, None),
            Hello::Partial => {}
        }
        let mut chunk = [0u8; 2048];
        let room = (sni::MAX_HELLO - buf.len()).min(chunk.len());
        match tokio::time::timeout_at(deadline, tcp.read(&mut chunk[..room])).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            // EOF, an error or the inspect delay: decide with what there is.
            _ => return (buf, None),
        }
    }
}
