//! A test's timeline: named events as offsets from the moment a failure was injected.

use std::sync::{Arc, Mutex};
use tokio::time::Instant;

/// Events recorded from any task; printed sorted, in ms relative to the zero point.
#[derive(Clone)]
pub struct Timeline {
    zero: Arc<Mutex<Option<Instant>>>,
    events: Arc<Mutex<Vec<(Instant, String)>>>,
    start: Instant,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            zero: Arc::default(),
            events: Arc::default(),
            start: Instant::now(),
        }
    }
}

impl Timeline {
    pub fn new() -> Timeline {
        Timeline::default()
    }

    /// Records `what` at `at`.
    pub fn at(&self, at: Instant, what: impl Into<String>) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((at, what.into()));
    }

    pub fn now(&self, what: impl Into<String>) {
        self.at(Instant::now(), what);
    }

    /// Makes `at` the zero of the printed offsets (the failure injection).
    pub fn set_zero(&self, at: Instant) {
        *self.zero.lock().unwrap_or_else(|e| e.into_inner()) = Some(at);
    }

    /// Offset of `at` from zero in ms (negative before it).
    pub fn offset_ms(&self, at: Instant) -> i64 {
        let zero = self
            .zero
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or(self.start);
        if at >= zero {
            (at - zero).as_millis() as i64
        } else {
            -((zero - at).as_millis() as i64)
        }
    }

    pub fn render(&self, title: &str) -> String {
        let mut ev = self
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        ev.sort_by_key(|(t, _)| *t);
        let mut s = format!("timeline {title} (ms from failure injection):\n");
        for (t, what) in ev {
            s.push_str(&format!("  {:>+8} ms  {what}\n", self.offset_ms(t)));
        }
        s
    }
}
