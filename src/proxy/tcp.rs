//! Plain TCP, HAProxy's `mode tcp`: the [`Protocol`] the forwarding loop follows when
//! bytes are just bytes. A side's inactivity timer is refreshed by reading from it and by
//! writing to it; `timeout tunnel` replaces both once connected; `timeout
//! client-fin`/`server-fin` apply to a side that has half-closed; a FIN is passed on.

use std::time::Duration;

use tokio::time::Instant;

use super::forward::{Activity, OnEof, Protocol, Side, Violation};

/// The inactivity timers of one session, resolved from its frontend and backend.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timers {
    pub client: Option<Duration>,
    pub server: Option<Duration>,
    pub tunnel: Option<Duration>,
    pub client_fin: Option<Duration>,
    pub server_fin: Option<Duration>,
}

/// Plain TCP: HAProxy's `mode tcp`. `splice` allows zero-copy forwarding of bulk data.
/// The timeouts are borrowed from the configuration and resolved when a deadline is
/// needed (rarely), so an idle session does not carry a copy of them.
pub struct Tcp<'a> {
    /// The frontend's timeouts (`client`, `client-fin`).
    pub frontend: &'a crate::config::Timeouts,
    /// The backend's timeouts (`server`, `tunnel`, `server-fin`).
    pub backend: &'a crate::config::Timeouts,
    pub splice: bool,
}

impl Tcp<'_> {
    fn timers(&self) -> Timers {
        Timers {
            client: self.frontend.client,
            server: self.backend.server,
            tunnel: self.backend.tunnel,
            client_fin: self.frontend.client_fin,
            server_fin: self.backend.server_fin,
        }
    }
}

impl Protocol for Tcp<'_> {
    fn splice(&self) -> bool {
        self.splice
    }

    #[inline]
    fn observe(&mut self, _: Side, _: &[u8]) -> Result<(), Violation> {
        Ok(())
    }

    fn deadline(&self, side: Side, half_closed: bool, activity: &Activity) -> Option<Instant> {
        self.timers()
            .limit(side, half_closed)
            .map(|t| activity.any(side) + t)
    }

    fn on_eof(&mut self, _: Side) -> OnEof {
        OnEof::PassOn
    }
}

impl Timers {
    /// The inactivity limit of one side, given whether it has half-closed.
    pub(crate) fn limit(&self, side: Side, half_closed: bool) -> Option<Duration> {
        let (normal, fin) = match side {
            Side::Client => (self.client, self.client_fin),
            Side::Server => (self.server, self.server_fin),
        };
        let normal = self.tunnel.or(normal);
        if half_closed {
            fin.or(normal)
        } else {
            normal
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunnel_replaces_client_and_server_but_not_fin() {
        let t = Timers {
            client: Some(Duration::from_secs(1)),
            server: Some(Duration::from_secs(2)),
            tunnel: Some(Duration::from_secs(60)),
            client_fin: Some(Duration::from_secs(3)),
            server_fin: None,
        };
        assert_eq!(t.limit(Side::Client, false), Some(Duration::from_secs(60)));
        assert_eq!(t.limit(Side::Server, false), Some(Duration::from_secs(60)));
        assert_eq!(t.limit(Side::Client, true), Some(Duration::from_secs(3)));
        assert_eq!(t.limit(Side::Server, true), Some(Duration::from_secs(60)));
    }
}
