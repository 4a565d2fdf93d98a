//! Session rates over a sliding second, as HAProxy measures them (`freq_ctr`): the count of
//! the current second plus the previous second's count weighted by the part of it still
//! inside the window. [`FreqCtr`] is a frontend's rate (`rate-limit sessions`, the stats'
//! `rate`); [`SourceRates`] is the same per client address, in a table bounded in size
//! (`rate-limit sessions-per-source`).
//!
//! Pure arithmetic on instants the caller passes (tokio's, so a paused test clock drives
//! it); no I/O, no timers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

/// The window of every rate here.
const PERIOD_MS: u64 = 1000;

/// The most addresses [`SourceRates`] tracks per second. Past it, new addresses go
/// unlimited until the next second: memory stays bounded under a flood from many
/// addresses (a few MB at most), at the price of letting some through.
pub const MAX_TRACKED_SOURCES: usize = 16_384;

/// Where a second-long period stands: how far into it `now` is, after rotating.
#[derive(Debug, Clone, Copy)]
struct Period {
    start: Instant,
}

impl Period {
    /// Moves the period forward to contain `now`; returns how many periods passed (0, 1,
    /// or 2 meaning "2 or more": everything counted before is out of the window).
    fn rotate(&mut self, now: Instant) -> u8 {
        let elapsed = now.saturating_duration_since(self.start);
        if elapsed >= Duration::from_millis(2 * PERIOD_MS) {
            self.start = now;
            2
        } else if elapsed >= Duration::from_millis(PERIOD_MS) {
            self.start += Duration::from_millis(PERIOD_MS);
            1
        } else {
            0
        }
    }

    /// Milliseconds into the current period (0..1000), after [`Self::rotate`].
    fn elapsed_ms(&self, now: Instant) -> u64 {
        (now.saturating_duration_since(self.start).as_millis() as u64).min(PERIOD_MS - 1)
    }
}

/// Events in the sliding window, in event-milliseconds: `curr` over a whole period plus
/// `prev` over the part of the previous period still inside the window.
fn weighted(curr: u32, prev: u32, elapsed_ms: u64) -> u64 {
    u64::from(curr) * PERIOD_MS + u64::from(prev) * (PERIOD_MS - elapsed_ms)
}

/// A rate of events per second over a sliding second.
#[derive(Debug, Clone)]
pub struct FreqCtr {
    period: Period,
    curr: u32,
    prev: u32,
}

impl FreqCtr {
    pub fn new(now: Instant) -> FreqCtr {
        FreqCtr {
            period: Period { start: now },
            curr: 0,
            prev: 0,
        }
    }

    fn rotate(&mut self, now: Instant) {
        match self.period.rotate(now) {
            0 => {}
            1 => self.prev = std::mem::take(&mut self.curr),
            _ => (self.prev, self.curr) = (0, 0),
        }
    }

    /// Counts one event at `now`.
    pub fn add(&mut self, now: Instant) {
        self.rotate(now);
        self.curr = self.curr.saturating_add(1);
    }

    /// Events per second now (rounded down).
    pub fn rate(&mut self, now: Instant) -> u32 {
        self.rotate(now);
        let e = self.period.elapsed_ms(now);
        (weighted(self.curr, self.prev, e) / PERIOD_MS).min(u64::from(u32::MAX)) as u32
    }

    /// How long to wait before one more event keeps the rate within `limit` per second:
    /// zero when it already would. HAProxy's `next_event_delay`, solved exactly, so a
    /// paused listener wakes once, when the window has room again.
    pub fn wait(&mut self, now: Instant, limit: u32) -> Duration {
        self.rotate(now);
        let e = self.period.elapsed_ms(now);
        let limit_total = u64::from(limit) * PERIOD_MS;
        let total = weighted(self.curr, self.prev, e);
        if total < limit_total {
            return Duration::ZERO;
        }
        // Within this period the window sheds `prev` event-ms per ms.
        if self.prev > 0 {
            let d = (total - limit_total) / u64::from(self.prev) + 1;
            if d < PERIOD_MS - e {
                return Duration::from_millis(d);
            }
        }
        // Otherwise in the next period, where this period's count becomes `prev`:
        // curr × (1000 - e') < limit × 1000.
        let rest = PERIOD_MS - e;
        let extra = if self.curr < limit {
            0
        } else {
            PERIOD_MS - limit_total / u64::from(self.curr.max(1)) + 1
        };
        Duration::from_millis(rest + extra)
    }
}

/// One address in the current period.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    /// Sessions allowed this period.
    count: u32,
    /// A refusal was already logged this period.
    logged: bool,
}

/// What [`SourceRates::check`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Over the limit; `first` is true for the address's first refusal this second (the
    /// one to log).
    Refused {
        first: bool,
    },
}

/// New sessions per second of each client address, for `rate-limit sessions-per-source`.
#[derive(Debug)]
pub struct SourceRates {
    period: Period,
    curr: HashMap<IpAddr, Entry>,
    prev: HashMap<IpAddr, u32>,
    capacity: usize,
}

impl SourceRates {
    pub fn new(now: Instant) -> SourceRates {
        SourceRates::with_capacity(now, MAX_TRACKED_SOURCES)
    }

    pub fn with_capacity(now: Instant, capacity: usize) -> SourceRates {
        SourceRates {
            period: Period { start: now },
            curr: HashMap::new(),
            prev: HashMap::new(),
            capacity,
        }
    }

    fn rotate(&mut self, now: Instant) {
        match self.period.rotate(now) {
            0 => {}
            // The maps are replaced, not cleared: a flood's memory goes back after a second.
            1 => {
                let curr = std::mem::take(&mut self.curr);
                self.prev = curr
                    .into_iter()
                    .filter(|(_, e)| e.count > 0)
                    .map(|(ip, e)| (ip, e.count))
                    .collect();
            }
            _ => (self.curr, self.prev) = (HashMap::new(), HashMap::new()),
        }
    }

    /// Decides on one new session from `ip` at `now`, and counts it if allowed: at most
    /// `limit` per sliding second.
    pub fn check(&mut self, ip: IpAddr, now: Instant, limit: u32) -> Verdict {
        self.rotate(now);
        let ip = ip.to_canonical();
        let e = self.period.elapsed_ms(now);
        let prev = self.prev.get(&ip).copied().unwrap_or(0);
        let room = self.curr.len() < self.capacity;
        let entry = self.curr.get_mut(&ip);
        let curr = entry.as_ref().map_or(0, |e| e.count);
        let allowed = weighted(curr.saturating_add(1), prev, e) <= u64::from(limit) * PERIOD_MS;
        match (allowed, entry) {
            (true, Some(entry)) => {
                entry.count += 1;
                Verdict::Allowed
            }
            (true, None) => {
                if room {
                    self.curr.insert(
                        ip,
                        Entry {
                            count: 1,
                            logged: false,
                        },
                    );
                }
                Verdict::Allowed
            }
            (false, Some(entry)) => Verdict::Refused {
                first: !std::mem::replace(&mut entry.logged, true),
            },
            (false, None) => {
                // Over the limit on last second's count alone; remember the log line was
                // written, if there is room to.
                if room {
                    self.curr.insert(
                        ip,
                        Entry {
                            count: 0,
                            logged: true,
                        },
                    );
                }
                Verdict::Refused { first: room }
            }
        }
    }

    /// Addresses tracked now (both periods), for tests of the memory bound.
    pub fn tracked(&self) -> usize {
        self.curr.len() + self.prev.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_rate_slides_over_the_previous_second() {
        let t0 = Instant::now();
        let mut f = FreqCtr::new(t0);
        for _ in 0..10 {
            f.add(t0);
        }
        assert_eq!(f.rate(t0), 10);
        assert_eq!(
            f.rate(t0 + ms(1000)),
            10,
            "a second later all ten are still in the window"
        );
        assert_eq!(
            f.rate(t0 + ms(1500)),
            5,
            "half of the previous second remains"
        );
        assert_eq!(f.rate(t0 + ms(2000)), 0);
        assert_eq!(f.rate(t0 + ms(10_000)), 0);
    }

    /// Takes events as fast as `wait` allows, from `start` for `span`: returns their times.
    fn drive(limit: u32, start: Instant, span: Duration) -> Vec<Instant> {
        let mut f = FreqCtr::new(start);
        let mut now = start;
        let mut taken = Vec::new();
        while now < start + span {
            let w = f.wait(now, limit);
            if w.is_zero() {
                f.add(now);
                taken.push(now);
            } else {
                now += w;
            }
        }
        taken
    }

    #[test]
    fn wait_keeps_every_sliding_second_within_the_limit_and_wastes_no_room() {
        let t0 = Instant::now();
        for limit in [1, 5, 7, 100] {
            let taken = drive(limit, t0, ms(10_000));
            for (i, t) in taken.iter().enumerate() {
                let in_window = taken[..=i]
                    .iter()
                    .filter(|u| t.saturating_duration_since(**u) < ms(1000))
                    .count();
                assert!(
                    in_window as u32 <= limit,
                    "limit {limit}: {in_window} events in the second before {:?}",
                    *t - t0
                );
            }
            // About limit per second over ten seconds: the limiter does not starve either.
            let n = taken.len() as u32;
            assert!(
                n >= 9 * limit && n <= 11 * limit,
                "limit {limit}: {n} events in 10 s"
            );
        }
    }

    #[test]
    fn a_burst_waits_for_the_window_rather_than_spinning() {
        let t0 = Instant::now();
        let mut f = FreqCtr::new(t0);
        for _ in 0..5 {
            f.add(t0);
        }
        // Full: the next one may come once the burst has slid far enough out.
        let w = f.wait(t0, 5);
        assert!(w > ms(900) && w <= ms(1001), "{w:?}");
        assert!(f.wait(t0 + w, 5).is_zero());
    }

    #[test]
    fn sources_are_limited_one_by_one() {
        let t0 = Instant::now();
        let mut s = SourceRates::new(t0);
        let a: IpAddr = "192.0.2.1".parse().unwrap_or_else(|e| panic!("{e}"));
        let b: IpAddr = "192.0.2.2".parse().unwrap_or_else(|e| panic!("{e}"));
        for _ in 0..3 {
            assert_eq!(s.check(a, t0, 3), Verdict::Allowed);
        }
        assert_eq!(s.check(a, t0, 3), Verdict::Refused { first: true });
        assert_eq!(
            s.check(a, t0 + ms(10), 3),
            Verdict::Refused { first: false },
            "logged once a second"
        );
        assert_eq!(
            s.check(b, t0 + ms(10), 3),
            Verdict::Allowed,
            "another address is not affected"
        );
        // The same address as IPv4-mapped IPv6 is the same client.
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            s.check(mapped, t0 + ms(20), 3),
            Verdict::Refused { .. }
        ));
        // Over the sliding second: at t0 + 1.5 s, half of the 3 still count.
        assert_eq!(s.check(a, t0 + ms(1500), 3), Verdict::Allowed);
        assert_eq!(
            s.check(a, t0 + ms(1500), 3),
            Verdict::Refused { first: true }
        );
        assert_eq!(s.check(a, t0 + ms(3000), 3), Verdict::Allowed);
    }

    #[test]
    fn the_table_stays_bounded_under_a_flood_of_addresses() {
        let t0 = Instant::now();
        let mut s = SourceRates::with_capacity(t0, 100);
        for i in 0..10_000u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            assert_eq!(s.check(ip, t0, 1), Verdict::Allowed);
        }
        assert!(s.tracked() <= 100, "{}", s.tracked());
        // Tracked addresses are still limited.
        assert!(matches!(
            s.check(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000)), t0, 1),
            Verdict::Refused { .. }
        ));
        // Two periods later everything is forgotten.
        s.check(IpAddr::from([127, 0, 0, 1]), t0 + ms(2500), 1);
        assert_eq!(s.tracked(), 1);
    }
}
