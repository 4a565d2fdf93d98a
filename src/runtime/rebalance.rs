//! Rebalancing (warren extension, AMQP mode): after a node comes back, sessions stay piled
//! on the nodes that survived ("all the clients end up on the first node up"). This task
//! sheds the excess from over-loaded servers, `batch` sessions per step, spread over the
//! configured window; each shed client gets `connection.close` 320 and reconnects through
//! warren, where new sessions prefer servers below their share.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::{Level, Rebalance};
use crate::state::BackendState;

/// Shortest pause between two shedding steps.
const MIN_STEP: Duration = Duration::from_millis(50);

/// Sessions above their weighted share, per server (by index), among usable active servers.
pub fn excess(backend: &BackendState) -> Vec<(usize, u32)> {
    let usable: Vec<_> = backend
        .servers
        .iter()
        .filter(|s| s.usable() && !s.config.backup)
        .collect();
    let weights: u64 = usable.iter().map(|s| u64::from(s.effective_weight())).sum();
    if weights == 0 {
        return Vec::new();
    }
    let total: u64 = usable.iter().map(|s| u64::from(s.settled_sessions())).sum();
    usable
        .iter()
        .filter_map(|s| {
            let current = u64::from(s.settled_sessions());
            // Round the share up: a remainder never counts as excess.
            let share = (total * u64::from(s.effective_weight())).div_ceil(weights);
            (current > share).then(|| (s.id, (current - share) as u32))
        })
        .collect()
}

/// Runs until `stop`; wakes when a server of `backend` comes UP, and once per window.
pub async fn run(backend: Arc<BackendState>, policy: Rebalance, stop: CancellationToken) {
    let mut events = backend.events.subscribe();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = events.recv() => {}
            _ = tokio::time::sleep(policy.window) => {}
        }
        let total: u32 = excess(&backend).iter().map(|(_, n)| n).sum();
        if total == 0 {
            continue;
        }
        let steps = total.div_ceil(policy.batch.max(1));
        let pause = (policy.window / steps).max(MIN_STEP);
        backend.logger.event(
            Level::Notice,
            &format!(
                "backend {}: rebalancing {total} sessions over {:?}",
                backend.name(),
                policy.window
            ),
        );
        // Recomputed each step: clients come and go while we shed.
        while let Some(&(id, n)) = excess(&backend).iter().max_by_key(|(_, n)| *n) {
            backend.servers[id].shed_sessions(n.min(policy.batch.max(1)));
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}
