//! When checks run: HAProxy's `spread-checks <percent>` (each interval moved at random by
//! up to ± that share, so checks of many servers and many load balancers do not fall into
//! step) and `max-spread-checks <time>` (first checks of a backend's servers spread over at
//! most that long instead of all starting at once).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The process-wide settings, from `global`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spread {
    /// 0..=50: how far each interval may move, in percent.
    pub percent: u32,
    /// Bound on the delay before a server's first check; `None`: first checks start at once.
    pub max_first: Option<Duration>,
}

impl Spread {
    /// `interval` moved by a random amount within ± `percent`.
    pub fn interval(&self, interval: Duration) -> Duration {
        if self.percent == 0 {
            return interval;
        }
        let span = interval.as_micros() as u64 * u64::from(self.percent.min(50)) / 100;
        if span == 0 {
            return interval;
        }
        // Uniform in [-span, +span].
        let offset = random() % (2 * span + 1);
        let micros = (interval.as_micros() as u64 + offset).saturating_sub(span);
        Duration::from_micros(micros)
    }

    /// The delay before the first check of server `index` of `count`, spread evenly over
    /// min(`inter`, `max-spread-checks`) as HAProxy does.
    pub fn first(&self, index: usize, count: usize, inter: Duration) -> Duration {
        let Some(max) = self.max_first else {
            return Duration::ZERO;
        };
        if count == 0 {
            return Duration::ZERO;
        }
        inter.min(max) * index as u32 / count as u32
    }
}

/// A random number: std's per-process random hash keys over a counter (no RNG crate for
/// something this small; the quality needed is "not in step").
fn random() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_stay_within_the_spread() {
        let s = Spread {
            percent: 20,
            max_first: None,
        };
        let inter = Duration::from_secs(2);
        let mut seen_low = false;
        let mut seen_high = false;
        for _ in 0..2000 {
            let i = s.interval(inter);
            assert!(
                i >= Duration::from_millis(1600) && i <= Duration::from_millis(2400),
                "{i:?}"
            );
            seen_low |= i < Duration::from_millis(1900);
            seen_high |= i > Duration::from_millis(2100);
        }
        assert!(seen_low && seen_high, "the intervals move both ways");
        assert_eq!(Spread::default().interval(inter), inter);
    }

    #[test]
    fn first_checks_spread_over_the_bound() {
        let s = Spread {
            percent: 0,
            max_first: Some(Duration::from_millis(500)),
        };
        let inter = Duration::from_secs(2);
        assert_eq!(s.first(0, 4, inter), Duration::ZERO);
        assert_eq!(s.first(2, 4, inter), Duration::from_millis(250));
        assert_eq!(
            s.first(3, 4, Duration::from_millis(100)),
            Duration::from_millis(75)
        );
        assert_eq!(Spread::default().first(3, 4, inter), Duration::ZERO);
    }
}
