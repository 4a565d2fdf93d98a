//! `balance static-rr`: weighted round robin on the weights the configuration gave.
//!
//! HAProxy documents static-rr as round robin where "changing a server's weight on the fly
//! will have no effect"; it precomputes a map from the configured weights with the same
//! smooth interleaving as [`super::RoundRobin`] (`lb_map.c`). Here the schedule is computed
//! pick by pick over the candidates present, so a server that is DOWN or full is skipped
//! exactly as HAProxy skips it in the map, while the weights stay the configured ones.

use std::net::IpAddr;

use super::roundrobin::Smooth;
use super::{Balancer, Candidate};

/// `balance static-rr`: smooth weighted round robin over the configured weights.
#[derive(Debug, Clone)]
pub struct StaticRr {
    /// Configured weight of each server, by id; run-time weights are ignored.
    weights: Vec<u32>,
    smooth: Smooth,
}

impl StaticRr {
    /// `initial_weights[id]` are the configured weights, in config order.
    pub fn new(initial_weights: &[u32]) -> StaticRr {
        StaticRr {
            weights: initial_weights.to_vec(),
            smooth: Smooth::default(),
        }
    }
}

/// The configured weight of `c`. A server the configuration did not list (the proxy and
/// the config disagree, which should not happen) falls back to its current weight rather
/// than becoming unpickable.
fn configured_weight(weights: &[u32], c: &Candidate) -> u32 {
    weights.get(c.id).copied().unwrap_or(c.weight)
}

impl Balancer for StaticRr {
    fn pick(&mut self, candidates: &[Candidate], _client: IpAddr) -> Option<usize> {
        let weights = &self.weights;
        self.smooth
            .pick(candidates, |c| configured_weight(weights, c))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    #[test]
    fn weights_1_2_3_give_exactly_1_2_3_in_every_cycle_of_6() {
        let cands = weighted(&[1, 2, 3]);
        let mut rr = StaticRr::new(&[1, 2, 3]);
        assert_eq!(picks(&mut rr, &cands, 6), [2, 1, 0, 2, 1, 2]);
        for _ in 0..50 {
            assert_eq!(histogram(&picks(&mut rr, &cands, 6), 3), [1, 2, 3]);
        }
    }

    #[test]
    fn equal_weights_alternate() {
        let cands = weighted(&[30, 30]);
        assert_eq!(
            picks(&mut StaticRr::new(&[30, 30]), &cands, 4),
            [0, 1, 0, 1]
        );
    }

    #[test]
    fn a_weight_change_at_run_time_has_no_effect() {
        let mut cands = weighted(&[1, 1]);
        let mut rr = StaticRr::new(&[1, 1]);
        assert_eq!(histogram(&picks(&mut rr, &cands, 10), 2), [5, 5]);
        cands[1].weight = 4;
        assert_eq!(histogram(&picks(&mut rr, &cands, 50), 2), [25, 25]);
    }

    #[test]
    fn absent_servers_are_skipped() {
        let all = weighted(&[1, 1, 2]);
        let mut rr = StaticRr::new(&[1, 1, 2]);
        let got = picks(&mut rr, &[all[0], all[2]], 30);
        assert_eq!(histogram(&got, 3), [10, 0, 20]);
    }

    #[test]
    fn unknown_ids_use_their_current_weight() {
        let cands = weighted(&[1, 3]);
        let mut rr = StaticRr::new(&[1]);
        assert_eq!(configured_weight(&rr.weights, &cands[1]), 3);
        assert_eq!(histogram(&picks(&mut rr, &cands, 8), 2), [2, 6]);
    }
}
