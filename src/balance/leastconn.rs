//! `balance leastconn`: the server with the fewest connections for its weight.
//!
//! Mirrors HAProxy's `lb_fwlc.c`, where a server's place in the tree is
//! `inflight ? (inflight + 1) * SRV_EWGHT_MAX / eweight : 0`: an idle server always comes
//! first whatever its weight, and a busy one is ranked by the load it *would* have with one
//! more connection, which is what makes weights count (with 1 connection on a weight-1
//! server and 3 on a weight-3 one, the next goes to the weight-3 server). Here the ratio is
//! compared exactly by cross-multiplication instead of HAProxy's integer division.
//!
//! Servers with equal keys take turns: HAProxy re-inserts a server behind its equals each
//! time it is used; here the tie goes to the first tied server after the last one picked,
//! in id order, which gives the same rotation. That matters for AMQP, where connections are
//! long-lived and a burst of reconnects after a node failure arrives with every server idle.

use std::cmp::Ordering;
use std::net::IpAddr;

use super::{Balancer, Candidate};

/// `balance leastconn`: lowest `(active + 1) / weight` (idle servers first), ties in turn.
#[derive(Debug, Default, Clone)]
pub struct LeastConn {
    /// Id of the server picked last, where the next tie-break starts after.
    last: Option<usize>,
}

impl LeastConn {
    /// No server picked yet: the first tie goes to the lowest id.
    pub fn new() -> LeastConn {
        LeastConn::default()
    }
}

/// Compares HAProxy's leastconn keys of two candidates; a zero weight ranks last.
fn cmp_key(a: &Candidate, b: &Candidate) -> Ordering {
    let key = |c: &Candidate| -> (u64, u64) {
        match (c.active, c.weight) {
            (_, 0) => (1, 0),
            (0, _) => (0, 1),
            (active, weight) => (u64::from(active) + 1, u64::from(weight)),
        }
    };
    let ((an, ad), (bn, bd)) = (key(a), key(b));
    match (ad, bd) {
        (0, 0) => Ordering::Equal,
        (0, _) => Ordering::Greater,
        (_, 0) => Ordering::Less,
        _ => (an * bd).cmp(&(bn * ad)),
    }
}

impl Balancer for LeastConn {
    fn pick(&mut self, candidates: &[Candidate], _client: IpAddr) -> Option<usize> {
        let best = candidates.iter().min_by(|a, b| cmp_key(a, b))?;
        // Among the tied, the smallest id after the last pick, else the smallest id.
        let tied = || {
            candidates
                .iter()
                .enumerate()
                .filter(|(_, c)| cmp_key(c, best) == Ordering::Equal)
        };
        let after_last = self.last.and_then(|last| {
            tied()
                .filter(|(_, c)| c.id > last)
                .min_by_key(|(_, c)| c.id)
        });
        let (index, chosen) = after_last.or_else(|| tied().min_by_key(|(_, c)| c.id))?;
        self.last = Some(chosen.id);
        Some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    fn cand(id: usize, weight: u32, active: u32) -> Candidate {
        Candidate { id, weight, active }
    }

    #[test]
    fn picks_the_least_loaded() {
        let cands = [cand(0, 1, 5), cand(1, 1, 2), cand(2, 1, 9)];
        assert_eq!(LeastConn::new().pick(&cands, CLIENT), Some(1));
    }

    #[test]
    fn load_is_relative_to_weight() {
        // (5+1)/1 = 6 against (9+1)/2 = 5.
        let cands = [cand(0, 1, 5), cand(1, 2, 9)];
        assert_eq!(LeastConn::new().pick(&cands, CLIENT), Some(1));
        // HAProxy's +1: 1 on weight 1 and 3 on weight 3 are not a tie, the heavier one wins.
        let cands = [cand(0, 1, 1), cand(1, 3, 3)];
        assert_eq!(LeastConn::new().pick(&cands, CLIENT), Some(1));
    }

    #[test]
    fn idle_servers_come_first_whatever_their_weight() {
        let cands = [cand(0, 256, 1), cand(1, 1, 0)];
        assert_eq!(LeastConn::new().pick(&cands, CLIENT), Some(1));
    }

    #[test]
    fn ties_alternate() {
        let cands = weighted(&[1, 1, 1]);
        let got = picks(&mut LeastConn::new(), &cands, 7);
        assert_eq!(got, [0, 1, 2, 0, 1, 2, 0]);
        let cands = [cand(0, 1, 3), cand(1, 1, 4), cand(2, 1, 3)];
        assert_eq!(picks(&mut LeastConn::new(), &cands, 4), [0, 2, 0, 2]);
    }

    #[test]
    fn tie_rotation_survives_a_missing_server() {
        let all = weighted(&[1, 1, 1]);
        let mut lc = LeastConn::new();
        assert_eq!(picks(&mut lc, &all, 2), [0, 1]);
        // Server 2 is full: the turn wraps to 0, then continues with 1.
        let without_2 = [all[0], all[1]];
        assert_eq!(picks(&mut lc, &without_2, 2), [0, 1]);
        assert_eq!(picks(&mut lc, &all, 1), [2]);
    }

    #[test]
    fn connections_spread_to_equal_load_as_they_open() {
        // Simulate the proxy: each pick opens a connection on the chosen server.
        let mut cands = weighted(&[1, 2, 3]);
        let mut lc = LeastConn::new();
        for _ in 0..600 {
            let i = lc.pick(&cands, CLIENT).expect("a pick");
            cands[i].active += 1;
        }
        let active: Vec<u32> = cands.iter().map(|c| c.active).collect();
        assert_eq!(active, [100, 200, 300]);
    }

    #[test]
    fn zero_weight_ranks_last() {
        let cands = [cand(0, 0, 0), cand(1, 1, 100)];
        assert_eq!(LeastConn::new().pick(&cands, CLIENT), Some(1));
    }
}
