//! One generation of live state: what a configuration became when it was loaded (at start
//! or by a reload). A reload builds the next generation from the new configuration and the
//! previous generation, reusing every piece whose configuration did not change:
//! - a backend whose whole configuration is unchanged is the same object (balancer position,
//!   counters, queue, health, open sessions);
//! - otherwise each unchanged server line keeps its state object, and a changed one starts
//!   from what was known of the server with the same name (UP/DOWN, admin state, weight);
//! - a frontend is kept when its configuration and its backend object are unchanged.
//!
//! Sessions hold `Arc`s to the objects they started with, so they finish on the old server
//! set, as HAProxy's old process does after a reload.

use std::collections::HashMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{BackendState, FrontendState, ServerState};
use crate::config::{Backend, Config, LogTarget};
use crate::log::Logger;

/// The live state of one configuration.
pub struct Generation {
    pub config: Config,
    pub frontends: Vec<Arc<FrontendState>>,
    pub backends: Vec<Arc<BackendState>>,
    /// Cancelled when this generation is replaced or warren stops: its accept loops,
    /// health checkers and rebalancers end (sessions do not).
    pub(crate) tasks: CancellationToken,
}

impl std::fmt::Debug for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generation")
            .field("frontends", &self.frontends.len())
            .field("backends", &self.backends.len())
            .finish()
    }
}

impl Generation {
    /// Builds the state for `config`, reusing what `previous` had for unchanged parts.
    /// `tasks` is this generation's stop token.
    pub fn build(
        config: Config,
        previous: Option<&Generation>,
        tasks: CancellationToken,
    ) -> Generation {
        let mut loggers = Loggers::default();
        let backends: Vec<Arc<BackendState>> = config
            .backends
            .iter()
            .map(|b| backend(b, previous, &mut loggers))
            .collect();
        let frontends = config
            .frontends
            .iter()
            .map(|f| {
                let backend = f
                    .default_backend
                    .and_then(|i| backends.get(i))
                    .map(Arc::clone);
                let same = previous
                    .and_then(|p| p.frontends.iter().find(|old| old.config.name == f.name))
                    .filter(|old| {
                        old.config == *f
                            && match (&old.backend, &backend) {
                                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                                (None, None) => true,
                                _ => false,
                            }
                            // Rules may name any backend: all must be the same objects.
                            && (f.rules.is_empty()
                                || (old.backends.len() == backends.len()
                                    && old.backends.iter().zip(&backends).all(|(a, b)| Arc::ptr_eq(a, b))))
                    });
                match same {
                    Some(old) => Arc::clone(old),
                    None => Arc::new(
                        FrontendState::new(f.clone(), backend, loggers.get(&f.log.targets))
                            .with_backends(&backends),
                    ),
                }
            })
            .collect();
        Generation {
            config,
            frontends,
            backends,
            tasks,
        }
    }

    pub fn backend(&self, name: &str) -> Option<&Arc<BackendState>> {
        self.backends.iter().find(|b| b.name() == name)
    }

    pub fn frontend(&self, name: &str) -> Option<&Arc<FrontendState>> {
        self.frontends.iter().find(|f| f.config.name == name)
    }
}

fn backend(b: &Backend, previous: Option<&Generation>, loggers: &mut Loggers) -> Arc<BackendState> {
    let old = previous.and_then(|p| p.backend(&b.name));
    if let Some(old) = old.filter(|old| old.config == *b) {
        return Arc::clone(old);
    }
    let servers = b
        .servers
        .iter()
        .enumerate()
        .map(|(id, s)| {
            let Some(old) = old else {
                return Arc::new(ServerState::new(id, &b.name, s.clone()));
            };
            match old.servers.get(id) {
                Some(same) if same.config == *s => Arc::clone(same),
                _ => match old.server(&s.name) {
                    Some(prev) => Arc::new(ServerState::carried_over(id, &b.name, s.clone(), prev)),
                    None => Arc::new(ServerState::new(id, &b.name, s.clone())),
                },
            }
        })
        .collect();
    Arc::new(BackendState::with_servers(
        b.clone(),
        loggers.get(&b.log.targets),
        servers,
    ))
}

/// Loggers are shared between proxies with identical targets, so one UDP socket serves a
/// whole `log global`.
#[derive(Default)]
struct Loggers(HashMap<String, Arc<Logger>>);

impl Loggers {
    fn get(&mut self, targets: &[LogTarget]) -> Arc<Logger> {
        let key = format!("{targets:?}");
        Arc::clone(
            self.0
                .entry(key)
                .or_insert_with(|| Arc::new(Logger::new(targets))),
        )
    }
}
