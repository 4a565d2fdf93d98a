//! Health analysis of live traffic (HAProxy's `observe`, `error-limit`, `on-error`): the
//! sessions' own connects (and, in `mode http`, responses) judge a server between checks.
//! A success clears the run of errors; `error-limit` errors in a row apply `on-error` once
//! and start a new run, as `__health_adjust` in HAProxy's `src/check.c` does.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::checker::{apply, Effect};
use super::{CheckStatus, Probe};
use crate::config::{ObserveLayer, OnError};
use crate::state::{BackendState, ServerState};

/// A connect that worked: under `observe layer4` the run of errors ends; under `layer7` it
/// says nothing (the response will).
pub fn connected(server: &ServerState) {
    if layer(server) == Some(ObserveLayer::Layer4) {
        clear(server);
    }
}

/// `observe layer7`: the server's HTTP answer, good or not (`what` went wrong). A failed
/// connect counts in both layers, through [`failure`].
pub fn answered(backend: &BackendState, server: &Arc<ServerState>, verdict: Result<(), &str>) {
    if layer(server) != Some(ObserveLayer::Layer7) {
        return;
    }
    match verdict {
        Ok(()) => clear(server),
        Err(what) => failure(backend, server, what),
    }
}

/// HAProxy's verdict on a response status: 5xx is the server's fault, but for 501 and 505,
/// which are about the request.
pub fn status_verdict(status: u16) -> Result<(), &'static str> {
    if status < 500 || status == 501 || status == 505 {
        Ok(())
    } else {
        Err("Wrong http response")
    }
}

fn layer(server: &ServerState) -> Option<ObserveLayer> {
    server.config.observe.map(|o| o.layer)
}

/// The run of errors starts again. Read before written, so the common case (no errors)
/// writes nothing to the shared counter.
fn clear(server: &ServerState) {
    let errors = &server.counters.consecutive_errors;
    if errors.load(Ordering::Relaxed) != 0 {
        errors.store(0, Ordering::Relaxed);
    }
}

/// A failed outcome, described by `what` (for the log line and the stats page).
pub fn failure(backend: &BackendState, server: &Arc<ServerState>, what: &str) {
    let Some(observe) = server.config.observe else {
        return;
    };
    // HAProxy: observing needs health checks, which it adjusts.
    if !server.config.check {
        return;
    }
    let errors = server
        .counters
        .consecutive_errors
        .fetch_add(1, Ordering::Relaxed)
        + 1;
    if errors < observe.error_limit {
        return;
    }
    server
        .counters
        .consecutive_errors
        .store(0, Ordering::Relaxed);
    server.counters.failed_hana.fetch_add(1, Ordering::Relaxed);
    let probe = Probe {
        status: CheckStatus::Hana,
        info: format!("Detected {errors} consecutive errors, last one was: {what}"),
        duration: Duration::ZERO,
    };
    // Applied as a check's own result (`passive` false: no immediate check), then the next
    // check comes at `fastinter` at the latest, whatever the action.
    match observe.on_error {
        OnError::FastInter => {}
        OnError::FailCheck => apply(backend, server, probe, false, Effect::Record),
        OnError::SuddenDeath => apply(backend, server, probe, false, Effect::SuddenDeath),
        OnError::MarkDown => apply(backend, server, probe, false, Effect::MarkDown),
    }
    server.check_sooner.notify_one();
}
