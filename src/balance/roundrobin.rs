//! `balance roundrobin`: smooth weighted round robin, weights may change at run time.
//!
//! HAProxy's `roundrobin` is "dynamic": a weight changed on the fly (admin `set weight`,
//! slow start) takes effect at once. The schedule here is nginx's smooth weighted round
//! robin, which is also the interleaving HAProxy uses to build its static-rr map
//! (`lb_map.c`, `recalc_server_map`): every pick adds each candidate's weight to its
//! `current` score, the highest score wins (first in config order on a tie) and pays the sum
//! of the weights. Over any `sum(weights)` consecutive picks each server is chosen exactly
//! `weight` times, spread out rather than in runs (1/2/3 gives `C B A C B C`, not `A B B C C C`).

use std::net::IpAddr;

use super::{Balancer, Candidate};

/// Smooth weighted round robin state, keyed by candidate id; shared with [`super::StaticRr`].
///
/// Scores of servers that are not candidates right now are left as they are, as nginx does
/// for peers that are down. The sum of all scores stays 0 (each pick hands out exactly what
/// the winner pays), so a server coming back resumes with the credit it had: one that left
/// right after being picked waits its turn, one that left just before its turn gets it, and
/// none comes back with enough credit to take a burst of connections or starve the others.
#[derive(Debug, Default, Clone)]
pub(super) struct Smooth {
    /// `current[id]`, grown on demand as ids appear.
    current: Vec<i64>,
}

impl Smooth {
    /// Picks among `candidates`, each weighted by `weight_of(candidate)`.
    ///
    /// Candidates whose weight is 0 are never picked unless all are 0, in which case the
    /// first one is: the proxy promised a usable server, so some server it is.
    pub(super) fn pick(
        &mut self,
        candidates: &[Candidate],
        weight_of: impl Fn(&Candidate) -> u32,
    ) -> Option<usize> {
        if candidates.is_empty() {
            return None;
        }
        if let Some(max_id) = candidates.iter().map(|c| c.id).max() {
            if max_id >= self.current.len() {
                self.current.resize(max_id + 1, 0);
            }
        }
        let mut total: i64 = 0;
        let mut best: Option<(usize, i64)> = None;
        for (index, c) in candidates.iter().enumerate() {
            let weight = i64::from(weight_of(c));
            if weight == 0 {
                continue;
            }
            total += weight;
            let score = &mut self.current[c.id];
            *score += weight;
            if best.is_none_or(|(_, s)| *score > s) {
                best = Some((index, *score));
            }
        }
        match best {
            Some((index, _)) => {
                self.current[candidates[index].id] -= total;
                Some(index)
            }
            None => Some(0),
        }
    }

    #[cfg(test)]
    pub(super) fn scores(&self) -> &[i64] {
        &self.current
    }
}

/// `balance roundrobin`: smooth weighted round robin over the candidates' current weights.
#[derive(Debug, Default, Clone)]
pub struct RoundRobin {
    smooth: Smooth,
}

impl RoundRobin {
    /// A fresh schedule: every server starts with no credit.
    pub fn new() -> RoundRobin {
        RoundRobin::default()
    }
}

impl Balancer for RoundRobin {
    fn pick(&mut self, candidates: &[Candidate], _client: IpAddr) -> Option<usize> {
        self.smooth.pick(candidates, |c| c.weight)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    #[test]
    fn equal_weights_alternate() {
        let cands = weighted(&[30, 30]);
        let got = picks(&mut RoundRobin::new(), &cands, 6);
        assert_eq!(got, [0, 1, 0, 1, 0, 1]);
    }

    #[test]
    fn weights_1_2_3_give_exactly_1_2_3_in_every_cycle_of_6() {
        let cands = weighted(&[1, 2, 3]);
        let mut rr = RoundRobin::new();
        for _ in 0..50 {
            let cycle = picks(&mut rr, &cands, 6);
            assert_eq!(histogram(&cycle, 3), [1, 2, 3], "{cycle:?}");
        }
    }

    #[test]
    fn the_schedule_is_smooth() {
        let cands = weighted(&[1, 2, 3]);
        assert_eq!(picks(&mut RoundRobin::new(), &cands, 6), [2, 1, 0, 2, 1, 2]);
        let cands = weighted(&[5, 1, 1]);
        assert_eq!(
            picks(&mut RoundRobin::new(), &cands, 7),
            [0, 0, 1, 0, 2, 0, 0]
        );
    }

    #[test]
    fn equal_weights_never_repeat_a_server() {
        let cands = weighted(&[1, 1, 1]);
        let got = picks(&mut RoundRobin::new(), &cands, 300);
        assert!(got.windows(2).all(|w| w[0] != w[1]), "{got:?}");
        assert_eq!(histogram(&got, 3), [100, 100, 100]);
    }

    #[test]
    fn exact_over_many_cycles_with_uneven_weights() {
        let weights = [7, 3, 256, 1, 13];
        let total: u32 = weights.iter().sum();
        let cands = weighted(&weights);
        let got = picks(&mut RoundRobin::new(), &cands, total as usize * 4);
        let expected: Vec<usize> = weights.iter().map(|w| *w as usize * 4).collect();
        assert_eq!(histogram(&got, 5), expected);
    }

    #[test]
    fn a_weight_change_takes_effect_at_run_time() {
        let mut cands = weighted(&[1, 1]);
        let mut rr = RoundRobin::new();
        assert_eq!(histogram(&picks(&mut rr, &cands, 10), 2), [5, 5]);
        cands[1].weight = 4;
        assert_eq!(histogram(&picks(&mut rr, &cands, 50), 2), [10, 40]);
    }

    #[test]
    fn ids_not_indexes_carry_the_state() {
        // Server 0 is out; the others keep their places and share equally.
        let all = weighted(&[1, 1, 1]);
        let mut rr = RoundRobin::new();
        let got = picks(&mut rr, &all[1..], 4);
        assert_eq!(got, [1, 2, 1, 2]);
    }

    #[test]
    fn a_server_coming_back_neither_bursts_nor_starves_the_others() {
        let all = weighted(&[1, 1, 1]);
        let mut rr = RoundRobin::new();
        // A full cycle, then server 2 leaves right before its turn.
        assert_eq!(picks(&mut rr, &all, 5), [0, 1, 2, 0, 1]);
        let without_2 = [all[0], all[1]];
        assert_eq!(picks(&mut rr, &without_2, 6), [0, 1, 0, 1, 0, 1]);
        // Back: it gets the turn it was owed, once, then the cycle goes on.
        let got = picks(&mut rr, &all, 9);
        assert_eq!(got, [2, 0, 1, 2, 0, 1, 2, 0, 1]);
    }

    #[test]
    fn a_server_that_flaps_keeps_its_share_and_scores_stay_bounded() {
        // Server 1 comes and goes at random (as a server at its maxconn does); whenever it
        // is present it must get about its fair third, and the others must share the rest.
        let all = weighted(&[2, 2, 2]);
        let mut rr = RoundRobin::new();
        let mut counts = [0usize; 3];
        let mut present = 0usize;
        let mut lcg: u32 = 12345;
        for _ in 0..30_000 {
            lcg = lcg.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let cands: Vec<Candidate> = if (lcg >> 16).is_multiple_of(3) {
                vec![all[0], all[2]]
            } else {
                present += 1;
                all.clone()
            };
            let i = rr.pick(&cands, CLIENT).expect("a pick");
            counts[cands[i].id] += 1;
            assert!(
                rr.smooth.scores().iter().all(|s| s.abs() <= 12),
                "{:?}",
                rr.smooth.scores()
            );
            assert_eq!(rr.smooth.scores().iter().sum::<i64>(), 0);
        }
        assert!(
            counts[1].abs_diff(present / 3) < present / 50,
            "{counts:?} present {present}"
        );
        assert!(counts[0].abs_diff(counts[2]) < 30_000 / 50, "{counts:?}");
    }

    #[test]
    fn zero_weights_are_skipped_unless_all_are_zero() {
        let cands = weighted(&[0, 1]);
        assert_eq!(picks(&mut RoundRobin::new(), &cands, 3), [1, 1, 1]);
        let cands = weighted(&[0, 0]);
        assert_eq!(picks(&mut RoundRobin::new(), &cands, 2), [0, 0]);
    }
}
