//! The health checker of one server, and the one place where check results (active, or
//! passive from failed session connects) change a server's operational state.
//!
//! Every flip is logged with HAProxy's wording, and acted on: `on-marked-down
//! shutdown-sessions`, `on-marked-up shutdown-backup-sessions`, waking queued sessions.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::check::{self, Probe};
use super::{CheckStatus, Transition};
use crate::config::Level;
use crate::state::{BackendState, LastCheck, ServerEvent, ServerState};

/// Runs active checks on `server` until `stop` is cancelled. `spread` moves the intervals
/// (`spread-checks`); `first` is how long to wait before the first check
/// (`max-spread-checks`).
pub async fn run(
    backend: Arc<BackendState>,
    server: Arc<ServerState>,
    stop: CancellationToken,
    spread: super::spread::Spread,
    first: Duration,
) {
    if !first.is_zero() {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(first) => {}
        }
    }
    let cfg = &server.config;
    let budget = budget(
        cfg.inter,
        backend.config.timeouts.connect,
        backend.config.timeouts.check,
    );
    // Where checks go: the server's live address (DNS may move it), at `port` if set.
    let target = || {
        let mut addr = server.addr();
        if let Some(port) = cfg.check_port {
            addr.set_port(port);
        }
        addr
    };
    // HAProxy's rule: checks speak the PROXY protocol when the traffic does and they go to
    // the same port, or when `check-send-proxy` asks for it.
    let proxy = match (cfg.send_proxy, cfg.check_send_proxy) {
        (Some(v), _) if cfg.check_port.is_none() => Some(v),
        (v, true) => Some(v.unwrap_or(crate::config::ProxyProtocol::V1)),
        _ => None,
    };
    // Read once per generation: a reload that renews the files starts a new checker.
    let connector = server.tls.load_full();
    let tls = cfg
        .tls
        .as_ref()
        .filter(|t| t.checks)
        .zip(connector)
        .map(|(t, connector)| (connector, t.name.clone()));
    if tls.is_none() && cfg.tls.as_ref().is_some_and(|t| t.checks) {
        // The runtime builds it before starting checkers; never check in plain instead.
        tracing::error!(
            "{}: no TLS configuration was built; health checks not started",
            server.full_name
        );
        return;
    }
    loop {
        if !server.in_maint() {
            let addr = target();
            let tls = tls.as_ref().map(|(connector, name)| {
                (
                    Arc::clone(connector),
                    crate::tls::server_name(name.as_deref(), addr),
                )
            });
            let probe =
                check::probe(&backend.config.check, addr, budget, proxy, tls.as_ref()).await;
            record(&backend, &server, probe, false);
        }
        let wait = spread.interval(server.health().state.next_interval(
            cfg.inter,
            cfg.fastinter,
            cfg.downinter,
        ));
        let mut next = tokio::time::Instant::now() + wait;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep_until(next) => break,
                _ = server.check_now.notified() => break,
                // Health analysis (`observe`): no sooner than `fastinter` from now, as
                // HAProxy reschedules its check task.
                _ = server.check_sooner.notified() => {
                    next = next.min(tokio::time::Instant::now() + cfg.fastinter);
                }
            }
        }
    }
}

/// How long a probe may take. HAProxy: with `timeout check` set, the connect is bounded
/// by min(`timeout connect`, `inter`) and `timeout check` bounds the answer; without it,
/// `inter` bounds both. Warren also never lets the answer take longer than `inter`, so a
/// frozen node (which accepts TCP but never answers) is DOWN within about
/// `fall × inter + timeout check` rather than `fall × (inter + timeout check)`: checks
/// keep their rhythm instead of falling behind it.
fn budget(inter: Duration, connect: Option<Duration>, check: Option<Duration>) -> check::Budget {
    match check {
        Some(check) => check::Budget {
            connect: connect.map_or(inter, |c| c.min(inter)),
            read: check.min(inter),
        },
        None => check::Budget {
            connect: inter,
            read: inter,
        },
    }
}

/// Applies one check result to `server`. `passive` marks results that come from a
/// session's failed connect rather than from the checker; a passive failure also asks the
/// checker to look again soon.
pub fn record(backend: &BackendState, server: &Arc<ServerState>, probe: Probe, passive: bool) {
    apply(backend, server, probe, passive, Effect::Record);
}

/// A session found the server unusable (AMQP: it took the connection but did not answer
/// the protocol header, as a frozen node does): DOWN at once, whatever `fall` says, as
/// HAProxy's `on-error mark-down`. Such a node may still pass a TCP check; it needs
/// `rise` passes to come back.
pub fn record_unusable(backend: &BackendState, server: &Arc<ServerState>, probe: Probe) {
    apply(backend, server, probe, true, Effect::MarkDown);
}

/// What a failed result does to the rise/fall counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Effect {
    /// One failure.
    Record,
    /// DOWN at once.
    MarkDown,
    /// One failure after leaving the server one failure away from DOWN.
    SuddenDeath,
}

pub(super) fn apply(
    backend: &BackendState,
    server: &Arc<ServerState>,
    probe: Probe,
    passive: bool,
    effect: Effect,
) {
    let passed = probe.status.passed();
    let transition = {
        let mut health = server.health();
        if !passed {
            health.failed_checks += 1;
        }
        let before = health.state.status_text();
        // HAProxy logs the first result too (the result changed from "unknown").
        let first = health.last_check.is_none();
        let transition = match effect {
            Effect::MarkDown if !passed => health.state.mark_down(),
            Effect::SuddenDeath if !passed => {
                health.state.sudden_death();
                health.state.record(false)
            }
            _ => health.state.record(passed),
        };
        let after = health.state.status_text();
        if let Some(t) = transition {
            let now = Instant::now();
            health.last_change = now;
            match t {
                Transition::Down => {
                    health.down_transitions += 1;
                    health.down_since = Some(now);
                }
                Transition::Up => {
                    if let Some(since) = health.down_since.take() {
                        health.downtime += now.saturating_duration_since(since);
                    }
                }
            }
        }
        health.last_check = Some(LastCheck {
            status: probe.status,
            info: probe.info.clone(),
            duration: probe.duration,
        });
        if transition.is_none() && (before != after || first) && backend.config.log.health_checks {
            backend.logger.event(
                Level::Info,
                &format!(
                    "Health check for server {} {}, reason: {}{}{}, status: {}.",
                    server.full_name,
                    if passed { "succeeded" } else { "failed" },
                    probe.status.description(),
                    info_part(&probe),
                    duration_part(&probe),
                    after
                ),
            );
        }
        transition
    };
    if passive && !passed {
        server.check_now.notify_one();
    }
    match transition {
        Some(Transition::Down) => marked_down(backend, server, &probe),
        Some(Transition::Up) => marked_up(backend, server, &probe),
        None => {}
    }
}

/// `, info: "..."` when the result says more than its status, as HAProxy writes it.
fn info_part(probe: &Probe) -> String {
    if probe.info.is_empty() {
        String::new()
    } else {
        format!(", info: \"{}\"", probe.info)
    }
}

/// `, check duration: Nms`; none for health analysis, which is no check (HAProxy's -1).
fn duration_part(probe: &Probe) -> String {
    if probe.status == CheckStatus::Hana {
        String::new()
    } else {
        format!(", check duration: {}ms", probe.duration.as_millis())
    }
}

fn marked_down(backend: &BackendState, server: &Arc<ServerState>, probe: &Probe) {
    server.set_up(false);
    let sessions = server.counters.current.load(Ordering::Relaxed);
    let (active, backup) = backend.usable_counts();
    backend.logger.event(
        Level::Alert,
        &format!(
            "Server {} is DOWN, reason: {}{}{}. {active} active and {backup} backup servers left. {sessions} sessions active, 0 requeued, {} remaining in queue.",
            server.full_name,
            probe.status.description(),
            info_part(probe),
            duration_part(probe),
            backend.counters.queued.load(Ordering::Relaxed),
        ),
    );
    if active + backup == 0 {
        backend.logger.event(
            Level::Emerg,
            &format!("backend {} has no server available!", backend.name()),
        );
    }
    if server.config.shutdown_on_down {
        server.shutdown_sessions(&format!(
            "node {} ({}) is DOWN: {}",
            server.full_name,
            server.addr(),
            probe.status.description()
        ));
    }
    backend.servers_changed();
    let _ = backend.events.send(ServerEvent {
        server: server.name().to_string(),
        up: false,
    });
}

fn marked_up(backend: &BackendState, server: &Arc<ServerState>, probe: &Probe) {
    server.start_ramp();
    server.set_up(true);
    let (active, backup) = backend.usable_counts();
    backend.logger.event(
        Level::Notice,
        &format!(
            "Server {} is UP, reason: {}, check duration: {}ms. {active} active and {backup} backup servers online. 0 sessions requeued, {} total in queue.",
            server.full_name,
            probe.status.description(),
            probe.duration.as_millis(),
            backend.counters.queued.load(Ordering::Relaxed),
        ),
    );
    if server.config.shutdown_backup_on_up && !server.config.backup {
        for b in backend.servers.iter().filter(|s| s.config.backup) {
            b.shutdown_sessions(&format!(
                "active server {} is UP again; backup sessions are moved back",
                server.full_name
            ));
        }
    }
    backend.servers_changed();
    let _ = backend.events.send(ServerEvent {
        server: server.name().to_string(),
        up: true,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_budget_follows_haproxy_within_inter() {
        let s = Duration::from_secs;
        let b = |i, c, t| {
            let b = budget(i, c, t);
            (b.connect, b.read)
        };
        assert_eq!(b(s(2), Some(s(10)), None), (s(2), s(2)));
        assert_eq!(b(s(2), Some(s(10)), Some(s(10))), (s(2), s(2)));
        assert_eq!(b(s(20), Some(s(10)), Some(s(1))), (s(10), s(1)));
        assert_eq!(b(s(2), None, Some(s(1))), (s(2), s(1)));
    }
}
