//! DNS at run time: servers with `resolvers <id>` follow their name while warren runs.
//!
//! One task per name per backend (the servers of a `server-template` share it) asks the
//! section's nameservers every `timeout resolve` ([`query`]) and applies the answer to the
//! servers' live state ([`follow`]): a moved address takes effect at the next connection,
//! a name gone for longer than its `hold` period puts its servers in maintenance
//! ("resolution"), an answer brings them back. Like the health checkers, these tasks belong
//! to one generation and end with it; they change state, never sessions.

mod follow;
pub mod query;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{Family, Resolvers};
use crate::state::{BackendState, Generation};

pub use follow::Group;
pub use query::{Asker, Entry, Outcome};

/// Starts the resolution tasks of `generation` (none when no server names a resolvers
/// section); they stop with `generation.tasks`.
pub fn start(generation: &Generation) {
    let system = if generation
        .config
        .resolvers
        .iter()
        .any(|r| r.parse_resolv_conf)
    {
        resolv_conf()
    } else {
        Vec::new()
    };
    for backend in &generation.backends {
        // HAProxy says at start-up which names did not resolve ("disabling server").
        for s in backend.servers.iter().filter(|s| s.address.in_maint()) {
            backend.logger.event(
                crate::config::Level::Notice,
                &format!(
                    "Server {} is in maintenance (resolution): {}.",
                    s.full_name,
                    s.address.maint_reason().unwrap_or_default()
                ),
            );
        }
        for (key, servers) in groups(backend) {
            let Some(resolvers) = generation
                .config
                .resolvers
                .iter()
                .find(|r| r.name == key.resolvers)
            else {
                continue; // validation refused this already
            };
            let mut nameservers: Vec<SocketAddr> =
                resolvers.nameservers.iter().map(|n| n.addr).collect();
            let mut names: Vec<String> = resolvers
                .nameservers
                .iter()
                .map(|n| format!("{}/{}", resolvers.name, n.name))
                .collect();
            if resolvers.parse_resolv_conf {
                nameservers.extend(system.iter().copied());
                // HAProxy's names for them.
                names.extend(
                    (1..=system.len()).map(|i| format!("{}/resolvconf{i}", resolvers.name)),
                );
            }
            if nameservers.is_empty() {
                tracing::warn!(
                    "resolvers '{}' has no nameserver: '{}' is not followed",
                    resolvers.name,
                    key.fqdn
                );
                continue;
            }
            let asker = Asker {
                nameservers,
                names,
                answered_by: Default::default(),
                retries: resolvers.resolve_retries,
                retry: resolvers.timeout_retry,
                payload: resolvers.accepted_payload_size,
            };
            let group = Group::new(Arc::clone(backend), servers, Instant::now());
            tokio::spawn(run(
                group,
                asker,
                key,
                resolvers.clone(),
                generation.tasks.clone(),
            ));
        }
    }
}

/// What a group of servers shares.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    resolvers: String,
    fqdn: String,
    prefer: Family,
}

/// The servers of `backend` that follow a name, grouped by (section, name, family).
fn groups(backend: &BackendState) -> Vec<(Key, Vec<Arc<crate::state::ServerState>>)> {
    let mut out: Vec<(Key, Vec<_>)> = Vec::new();
    for s in &backend.servers {
        let Some(dns) = &s.config.dns else { continue };
        let Some(resolvers) = &dns.resolvers else {
            continue;
        };
        let key = Key {
            resolvers: resolvers.clone(),
            fqdn: dns.fqdn.clone(),
            prefer: dns.prefer,
        };
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push(Arc::clone(s)),
            None => out.push((key, vec![Arc::clone(s)])),
        }
    }
    out
}

async fn run(
    mut group: Group,
    asker: Asker,
    key: Key,
    resolvers: Resolvers,
    stop: CancellationToken,
) {
    loop {
        let outcome = tokio::select! {
            _ = stop.cancelled() => return,
            o = asker.resolve(&key.fqdn, key.prefer) => o,
        };
        group.apply(
            outcome,
            &resolvers,
            asker.last_answer_from(),
            Instant::now(),
        );
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(resolvers.timeout_resolve) => {}
        }
    }
}

/// The `nameserver` lines of `/etc/resolv.conf` (`parse-resolv-conf`), port 53.
fn resolv_conf() -> Vec<SocketAddr> {
    let text = match std::fs::read_to_string("/etc/resolv.conf") {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!("parse-resolv-conf: cannot read /etc/resolv.conf: {e}");
            return Vec::new();
        }
    };
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next())
                .flatten()
                .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
                .map(|ip| SocketAddr::new(ip, 53))
        })
        .collect()
}
