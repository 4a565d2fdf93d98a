//! HTTP counters of a frontend, backend or server (`mode http`): requests and responses by
//! status class, HAProxy's `req_tot`, `hrsp_1xx` … `hrsp_other`, `req_rate`, `req_rate_max`.
//! Relaxed atomics, except the request rate: one short lock per request, on frontends
//! only (HAProxy reports `req_rate` for frontends only, too).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::time::Instant;

use super::rate::FreqCtr;
use super::server::lock;

/// Requests and responses seen by one proxy or server.
#[derive(Debug, Default)]
pub struct HttpCounters {
    /// Requests received (`req_tot`).
    pub requests: AtomicU64,
    /// Responses by class: 1xx, 2xx, 3xx, 4xx, 5xx, other (`hrsp_*`).
    pub responses: [AtomicU64; 6],
    /// Highest request rate seen (`req_rate_max`).
    pub rate_max: AtomicU32,
    /// Requests per second, frontends only (a `None` rate costs nothing).
    rate: Option<Mutex<FreqCtr>>,
}

impl HttpCounters {
    /// Counters that also follow the request rate (a frontend's).
    pub fn with_rate() -> HttpCounters {
        HttpCounters {
            rate: Some(Mutex::new(FreqCtr::new(Instant::now()))),
            ..HttpCounters::default()
        }
    }

    /// One request came in.
    pub fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(rate) = &self.rate {
            let now = Instant::now();
            let r = {
                let mut r = lock(rate);
                r.add(now);
                r.rate(now)
            };
            self.rate_max.fetch_max(r, Ordering::Relaxed);
        }
    }

    /// One response (from a server or warren itself) with `status` went out.
    pub fn response(&self, status: u16) {
        let class = match status {
            100..=599 => usize::from(status / 100 - 1),
            _ => 5,
        };
        self.responses[class].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests per second now (`None` for backends and servers).
    pub fn rate(&self) -> Option<u32> {
        self.rate.as_ref().map(|r| lock(r).rate(Instant::now()))
    }

    /// The `hrsp_*` values, in HAProxy's column order.
    pub fn by_class(&self) -> [u64; 6] {
        std::array::from_fn(|i| self.responses[i].load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_fall_into_their_class() {
        let c = HttpCounters::default();
        for s in [101, 200, 204, 302, 404, 408, 503, 600, 42] {
            c.response(s);
        }
        assert_eq!(c.by_class(), [1, 2, 1, 2, 1, 2]);
        assert_eq!(c.rate(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn frontends_follow_the_request_rate() {
        let c = HttpCounters::with_rate();
        for _ in 0..5 {
            c.request();
        }
        assert_eq!(c.requests.load(Ordering::Relaxed), 5);
        assert_eq!(c.rate(), Some(5));
        assert_eq!(c.rate_max.load(Ordering::Relaxed), 5);
    }
}
