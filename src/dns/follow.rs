//! What an answer does to the servers that follow one name in one backend: who keeps
//! their address, who gets a new one, who goes to maintenance and who comes back, with
//! HAProxy's log lines (`snr_resolution_cb`, `snr_set_srv_down`, `srv_update_addr`).
//!
//! The servers of a `server-template` (and plain servers with the same name) share the
//! answer, one record each, never two on the same address (HAProxy's default
//! `prevent-dup-ip`). A server whose address is still in the answer keeps it, so its
//! sessions and its place in the balancer are untouched while others come and go.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::time::Instant;

use super::query::{Entry, Outcome};
use crate::config::{Level, Resolvers};
use crate::state::{BackendState, ServerEvent, ServerState};

/// The servers of one backend that follow one name through one resolvers section.
pub struct Group {
    pub backend: Arc<BackendState>,
    pub servers: Vec<Arc<ServerState>>,
    /// When an answer last was valid: the hold periods count from it. Starts at the
    /// group's creation, as HAProxy's `last_valid` does.
    last_valid: Instant,
    /// Per server: when its address was last in an answer (`hold obsolete`).
    last_seen: Vec<Option<Instant>>,
}

impl Group {
    pub fn new(backend: Arc<BackendState>, servers: Vec<Arc<ServerState>>, now: Instant) -> Group {
        let last_seen = servers
            .iter()
            .map(|s| (!s.address.in_maint()).then_some(now))
            .collect();
        Group {
            backend,
            servers,
            last_valid: now,
            last_seen,
        }
    }

    /// Applies one resolution's outcome at `now`; `by` names the nameserver that answered
    /// (`dns/ns1`).
    pub fn apply(&mut self, outcome: Outcome, resolvers: &Resolvers, by: &str, now: Instant) {
        let (hold, reason) = match outcome {
            Outcome::Valid(entries) => {
                self.last_valid = now;
                return self.valid(&entries, resolvers, by, now);
            }
            Outcome::Nx => (resolvers.hold.nx, "DNS NX status"),
            Outcome::Timeout => (resolvers.hold.timeout, "DNS timeout status"),
            Outcome::Refused => (resolvers.hold.refused, "DNS refused status"),
            Outcome::Other => (resolvers.hold.other, "unspecified DNS error"),
        };
        // A bad answer counts only once no valid one came for the hold period.
        if now.saturating_duration_since(self.last_valid) < hold {
            return;
        }
        for i in 0..self.servers.len() {
            self.down(i, reason);
        }
    }

    fn valid(&mut self, entries: &[Entry], resolvers: &Resolvers, by: &str, now: Instant) {
        let target = |s: &ServerState, e: &Entry| {
            SocketAddr::new(e.ip, e.port.unwrap_or(s.config.addr.port()))
        };
        let mut taken = vec![false; entries.len()];
        let mut given: Vec<Option<usize>> = vec![None; self.servers.len()];
        // Servers whose address is still answered keep it (or get it back: one that DNS
        // put in maintenance keeps its last address, and maybe sessions on it).
        for (i, s) in self.servers.iter().enumerate() {
            let current = s.addr();
            if let Some(j) =
                (0..entries.len()).find(|j| !taken[*j] && target(s, &entries[*j]) == current)
            {
                taken[j] = true;
                given[i] = Some(j);
            }
        }
        // Servers whose record went away keep it for `hold obsolete`.
        let kept: Vec<bool> = (0..self.servers.len())
            .map(|i| {
                given[i].is_none()
                    && !self.servers[i].address.in_maint()
                    && self.last_seen[i].is_some_and(|seen| {
                        now.saturating_duration_since(seen) < resolvers.hold.obsolete
                    })
            })
            .collect();
        // The others take the records nobody has, in answer order.
        let mut free = (0..entries.len()).filter(|j| !taken[*j]);
        for i in 0..self.servers.len() {
            if given[i].is_none() && !kept[i] {
                given[i] = free.next();
            }
        }
        for i in 0..self.servers.len() {
            match given[i] {
                Some(j) => {
                    self.last_seen[i] = Some(now);
                    let addr = target(&self.servers[i], &entries[j]);
                    self.up(i, addr, &entries[j], by);
                }
                None if kept[i] => {}
                None => {
                    let srv = self.servers[i]
                        .config
                        .dns
                        .as_ref()
                        .is_some_and(|d| d.is_srv());
                    self.down(
                        i,
                        if srv {
                            "entry removed from SRV record"
                        } else {
                            "No IP for server"
                        },
                    );
                }
            }
        }
    }

    /// Server `i` is at `addr` (with the SRV weight, if any).
    fn up(&self, i: usize, addr: SocketAddr, entry: &Entry, by: &str) {
        let weight = entry.weight;
        let s = &self.servers[i];
        let name = &s.full_name;
        let mut changed = false;
        let before = s.addr();
        if before != addr {
            s.address.set(addr);
            let what = if before.ip() == addr.ip() {
                format!("port from {} to {}", before.port(), addr.port())
            } else if before.ip().is_unspecified() {
                format!("IP from (none) to {}", addr.ip())
            } else {
                format!("IP from {} to {}", before.ip(), addr.ip())
            };
            self.log(Level::Notice, format!("{name} changed its {what} by {by}."));
            changed = true;
        }
        if let Some(w) = weight.filter(|w| *w != s.weight()) {
            let from = s.weight();
            s.set_weight(w.min(crate::config::server_defaults::MAX_WEIGHT));
            self.log(
                Level::Notice,
                format!("{name} weight changed from {from} to {w} by DNS SRV record."),
            );
            changed = true;
        }
        if s.address.set_maint(None) {
            let fqdn = s.config.dns.as_ref().map_or("", |d| d.fqdn.as_str());
            let host = entry.target.as_deref().unwrap_or(fqdn);
            self.log(
                Level::Notice,
                format!("Server {name} ('{host}') is UP/READY (resolves again)."),
            );
            // HAProxy says this of servers with a name of their own, not of SRV slots.
            if entry.target.is_none() {
                self.log(
                    Level::Notice,
                    format!("Server {name} administratively READY thanks to valid DNS answer."),
                );
            }
            changed = true;
        }
        if changed {
            self.changed(s);
        }
    }

    /// Server `i` goes to resolution maintenance (once).
    fn down(&self, i: usize, reason: &str) {
        let s = &self.servers[i];
        if !s.address.set_maint(Some(reason)) {
            return;
        }
        let open = s
            .counters
            .current
            .load(std::sync::atomic::Ordering::Relaxed);
        // As HAProxy: open sessions stay, unless `on-marked-down shutdown-sessions`.
        let killed = if s.config.shutdown_on_down {
            s.shutdown_sessions(&format!("node {} is gone from DNS ({reason})", s.full_name))
        } else {
            0
        };
        let (active, backup) = self.backend.usable_counts();
        self.log(
            Level::Alert,
            format!(
                "Server {} is going DOWN for maintenance ({reason}). {active} active and {backup} backup servers left. {} sessions active, 0 requeued, {} remaining in queue.{}",
                s.full_name,
                open,
                self.backend.counters.queued.load(std::sync::atomic::Ordering::Relaxed),
                if killed > 0 { format!(" {killed} sessions shut down.") } else { String::new() }
            ),
        );
        self.changed(s);
    }

    fn log(&self, level: Level, message: String) {
        self.backend.logger.event(level, &message);
    }

    fn changed(&self, s: &ServerState) {
        self.backend.servers_changed();
        let _ = self.backend.events.send(ServerEvent {
            server: s.name().to_string(),
            up: s.usable(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A backend of two template slots following `rabbit.test`, and its resolvers section.
    fn group(holds: &str) -> (Group, Resolvers, Instant) {
        let text = format!(
            "resolvers dns\n nameserver a 127.0.0.1:53\n{holds}\nbackend be\n server-template r 2 rabbit.test:5672 resolvers dns init-addr none\n"
        );
        let loaded =
            crate::config::load_str(&text, "t.cfg", crate::config::Syntax::Haproxy).expect("valid");
        let backend = Arc::new(BackendState::new(
            loaded.config.backends[0].clone(),
            Arc::new(crate::log::Logger::new(&[])),
        ));
        let now = Instant::now();
        let servers = backend.servers.clone();
        (
            Group::new(backend, servers, now),
            loaded.config.resolvers[0].clone(),
            now,
        )
    }

    fn answer(ips: &[&str]) -> Outcome {
        Outcome::Valid(
            ips.iter()
                .map(|ip| Entry {
                    ip: ip.parse().unwrap(),
                    port: None,
                    weight: None,
                    target: None,
                })
                .collect(),
        )
    }

    fn usable(g: &Group) -> Vec<bool> {
        g.servers.iter().map(|s| s.usable()).collect()
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_bad_answer_counts_only_after_its_hold_period() {
        let (mut g, r, t0) = group(" hold nx 30s\n hold timeout 5s");
        assert_eq!(usable(&g), [false, false], "init-addr none: no address yet");
        g.apply(answer(&["10.0.0.1", "10.0.0.2"]), &r, "t/ns", t0);
        assert_eq!(usable(&g), [true, true]);
        g.apply(Outcome::Nx, &r, "t/ns", t0 + 10 * S);
        assert_eq!(usable(&g), [true, true], "within hold nx");
        g.apply(Outcome::Timeout, &r, "t/ns", t0 + 4 * S);
        assert_eq!(usable(&g), [true, true], "within hold timeout");
        g.apply(Outcome::Nx, &r, "t/ns", t0 + 30 * S);
        assert_eq!(usable(&g), [false, false]);
        assert_eq!(
            g.servers[0].address.maint_reason().as_deref(),
            Some("DNS NX status")
        );
        // Back with the next valid answer, on the same addresses.
        g.apply(answer(&["10.0.0.2", "10.0.0.1"]), &r, "t/ns", t0 + 31 * S);
        assert_eq!(usable(&g), [true, true]);
        let addrs: Vec<String> = g.servers.iter().map(|s| s.addr().to_string()).collect();
        assert_eq!(
            addrs,
            ["10.0.0.1:5672", "10.0.0.2:5672"],
            "each gets its own address back"
        );
        // The hold counts from the last valid answer.
        g.apply(Outcome::Refused, &r, "t/ns", t0 + 60 * S);
        assert_eq!(
            usable(&g),
            [true, true],
            "hold refused: 30 s after t0 + 31 s"
        );
        g.apply(Outcome::Refused, &r, "t/ns", t0 + 61 * S);
        assert_eq!(
            g.servers[1].address.maint_reason().as_deref(),
            Some("DNS refused status")
        );
    }

    #[test]
    fn a_record_gone_keeps_its_server_for_hold_obsolete() {
        let (mut g, r, t0) = group(" hold obsolete 10s");
        g.apply(answer(&["10.0.0.1", "10.0.0.2"]), &r, "t/ns", t0);
        g.apply(answer(&["10.0.0.1"]), &r, "t/ns", t0 + 5 * S);
        assert_eq!(usable(&g), [true, true], "10.0.0.2 is obsolete for 10 s");
        g.apply(answer(&["10.0.0.1"]), &r, "t/ns", t0 + 10 * S);
        assert_eq!(usable(&g), [true, false]);
        assert_eq!(
            g.servers[1].address.maint_reason().as_deref(),
            Some("No IP for server")
        );
    }

    #[test]
    fn an_srv_answer_sets_port_and_weight() {
        let (mut g, r, t0) = group("");
        let srv = Outcome::Valid(vec![Entry {
            ip: "10.0.0.9".parse().unwrap(),
            port: Some(5673),
            weight: Some(3),
            target: Some("n1.test".into()),
        }]);
        g.apply(srv, &r, "t/ns", t0);
        assert_eq!(g.servers[0].addr().to_string(), "10.0.0.9:5673");
        assert_eq!(g.servers[0].weight(), 3);
        assert_eq!(usable(&g), [true, false]);
    }
}
