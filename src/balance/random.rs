//! `balance random`: power of two random choices.
//!
//! HAProxy's `random(<draws>)` (default 2) draws servers at random, weighted, and sends the
//! connection to the least loaded of the draws. Two draws keep the load far more even than
//! one ("the power of two choices", Mitzenmacher) while needing no shared ordering, which is
//! why it suits several warren instances behind one VIP: they do not herd onto the same
//! "least loaded" node the way independent leastconn balancers can.

use std::cmp::Ordering;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;

use super::mix::{mix64, GAMMA};
use super::{Balancer, Candidate};

/// `balance random`: two weighted draws, the lower `active / weight` wins (the first on a tie).
#[derive(Debug, Clone)]
pub struct Random {
    /// SplitMix64 state: small, fast, and deterministic given the seed.
    state: u64,
}

impl Random {
    /// Seeded from the process's random state, so two warren instances draw differently.
    pub fn new() -> Random {
        Random::with_seed(RandomState::new().hash_one(0x5741_5252_454e_u64))
    }

    /// A generator that replays the same draws for the same seed (tests, reproductions).
    pub fn with_seed(seed: u64) -> Random {
        Random { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        mix64(self.state)
    }

    /// A uniform integer in `0..bound` (`bound > 0`), by multiply-high: no modulo bias
    /// worth measuring at these sizes, and no division.
    fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// Index of one candidate drawn with probability proportional to its weight (uniformly
    /// when every weight is 0). `candidates` must not be empty.
    fn draw(&mut self, candidates: &[Candidate]) -> usize {
        let total: u64 = candidates.iter().map(|c| u64::from(c.weight)).sum();
        if total == 0 {
            return self.below(candidates.len() as u64) as usize;
        }
        let mut ticket = self.below(total);
        for (index, c) in candidates.iter().enumerate() {
            let w = u64::from(c.weight);
            if ticket < w {
                return index;
            }
            ticket -= w;
        }
        candidates.len() - 1
    }
}

/// Compares the load `active / weight` of two candidates without division or floats, as
/// HAProxy's `random` does (`served * other_eweight` against `other_served * eweight`).
///
/// A zero weight (which the proxy filters out, but a balancer must not divide by) counts as
/// infinitely loaded. Products are taken in `u64`, so no input can overflow.
fn cmp_load(a: &Candidate, b: &Candidate) -> Ordering {
    match (a.weight, b.weight) {
        (0, 0) => a.active.cmp(&b.active),
        (0, _) => Ordering::Greater,
        (_, 0) => Ordering::Less,
        (wa, wb) => {
            (u64::from(a.active) * u64::from(wb)).cmp(&(u64::from(b.active) * u64::from(wa)))
        }
    }
}

impl Default for Random {
    fn default() -> Random {
        Random::new()
    }
}

impl Balancer for Random {
    fn pick(&mut self, candidates: &[Candidate], _client: IpAddr) -> Option<usize> {
        if candidates.is_empty() {
            return None;
        }
        let a = self.draw(candidates);
        let b = self.draw(candidates);
        if cmp_load(&candidates[b], &candidates[a]).is_lt() {
            Some(b)
        } else {
            Some(a)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    #[test]
    fn load_comparison_is_cross_multiplied() {
        let c = |weight, active| Candidate {
            id: 0,
            weight,
            active,
        };
        assert_eq!(cmp_load(&c(1, 1), &c(2, 2)), Ordering::Equal);
        assert_eq!(cmp_load(&c(3, 1), &c(1, 1)), Ordering::Less);
        assert_eq!(cmp_load(&c(1, 0), &c(256, 1)), Ordering::Less);
        assert_eq!(cmp_load(&c(0, 0), &c(1, 1000)), Ordering::Greater);
        assert_eq!(cmp_load(&c(256, u32::MAX), &c(1, u32::MAX)), Ordering::Less);
    }

    #[test]
    fn the_same_seed_replays_the_same_picks() {
        let cands = weighted(&[1, 1, 1, 1]);
        let a = picks(&mut Random::with_seed(42), &cands, 100);
        let b = picks(&mut Random::with_seed(42), &cands, 100);
        let c = picks(&mut Random::with_seed(43), &cands, 100);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn draws_follow_the_weights() {
        let cands = weighted(&[1, 3, 6]);
        let mut r = Random::with_seed(7);
        let mut h = [0usize; 3];
        for _ in 0..30_000 {
            h[r.draw(&cands)] += 1;
        }
        for (id, expected) in [3000usize, 9000, 18_000].into_iter().enumerate() {
            assert!(h[id].abs_diff(expected) < 400, "{h:?}");
        }
    }

    #[test]
    fn idle_picks_respect_the_weights() {
        // All idle: every draw ties on load, so the first draw wins and weights rule.
        let cands = weighted(&[1, 4]);
        let got = picks(&mut Random::with_seed(1), &cands, 10_000);
        let h = histogram(&got, 2);
        assert!(h[1].abs_diff(8000) < 250, "{h:?}");
    }

    #[test]
    fn prefers_the_less_loaded() {
        let cands = [
            Candidate {
                id: 0,
                weight: 1,
                active: 10,
            },
            Candidate {
                id: 1,
                weight: 1,
                active: 0,
            },
        ];
        let got = picks(&mut Random::with_seed(9), &cands, 10_000);
        // Server 0 wins only when both draws land on it: about a quarter of the time.
        let h = histogram(&got, 2);
        assert!(h[0].abs_diff(2500) < 250, "{h:?}");
    }

    #[test]
    fn keeps_load_even_as_connections_open() {
        let mut cands = weighted(&[1, 1, 1, 1, 1]);
        let mut r = Random::with_seed(2024);
        for _ in 0..1000 {
            let i = r.pick(&cands, CLIENT).expect("a pick");
            cands[i].active += 1;
        }
        let (min, max) = cands.iter().fold((u32::MAX, 0), |(lo, hi), c| {
            (lo.min(c.active), hi.max(c.active))
        });
        assert!(max - min <= 3, "{cands:?}");
    }

    #[test]
    fn all_zero_weights_still_pick() {
        let cands = weighted(&[0, 0, 0]);
        let got = picks(&mut Random::with_seed(5), &cands, 3000);
        assert!(histogram(&got, 3).iter().all(|&n| n > 800));
    }

    #[test]
    fn unseeded_generators_differ() {
        assert_ne!(Random::new().next_u64(), Random::new().next_u64());
    }
}
