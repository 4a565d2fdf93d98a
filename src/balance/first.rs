//! `balance first`: fill servers in config order.
//!
//! HAProxy: "The first server with available connection slots receives the connection."
//! The proxy already left out servers at their `maxconn`, so the lowest id wins; with
//! `maxconn` set this packs clients onto as few RabbitMQ nodes as possible.

use std::net::IpAddr;

use super::{Balancer, Candidate};

/// `balance first`: the candidate with the lowest id.
#[derive(Debug, Default, Clone, Copy)]
pub struct First;

impl Balancer for First {
    fn pick(&mut self, candidates: &[Candidate], _client: IpAddr) -> Option<usize> {
        candidates
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| c.id)
            .map(|(index, _)| index)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    #[test]
    fn lowest_id_wins_whatever_the_order_or_load() {
        let cands = [
            Candidate {
                id: 4,
                weight: 100,
                active: 0,
            },
            Candidate {
                id: 2,
                weight: 1,
                active: 50,
            },
            Candidate {
                id: 7,
                weight: 1,
                active: 0,
            },
        ];
        assert_eq!(picks(&mut First, &cands, 3), [2, 2, 2]);
    }

    #[test]
    fn the_next_server_takes_over_when_the_first_is_full() {
        let all = weighted(&[1, 1, 1]);
        assert_eq!(First.pick(&all, CLIENT), Some(0));
        assert_eq!(First.pick(&all[1..], CLIENT), Some(0));
        assert_eq!(all[1..][0].id, 1);
    }
}
