//! Server selection: which server of a backend takes the next connection.
//!
//! ```text
//! proxy ──candidates (usable, weight > 0, below maxconn) + client IP──▶ Balancer::pick ──▶ index
//! ```
//!
//! The proxy filters the backend's servers down to the ones that may take a connection right
//! now and hands them over as [`Candidate`]s, in config order. A [`Balancer`] only chooses:
//! it opens no socket, reads no clock and takes no lock, so every algorithm is tested here
//! exhaustively. Balancers that need memory between picks (round robin positions, the
//! leastconn tie-breaker, the random generator) key it on [`Candidate::id`], which is stable
//! for the life of the backend, so a server that leaves the candidate list (DOWN, full,
//! drained) and comes back picks up where it was.
//!
//! The algorithms mirror HAProxy's `balance` keyword (`doc/configuration.txt`):
//! [`RoundRobin`], [`StaticRr`], [`LeastConn`], [`First`], [`Source`] (with
//! `hash-type consistent` semantics) and [`Random`] (`random(2)`, power of two choices).

mod first;
mod leastconn;
mod mix;
mod random;
mod roundrobin;
mod source;
mod source_map;
mod static_rr;

pub use first::First;
pub use leastconn::LeastConn;
pub use random::Random;
pub use roundrobin::RoundRobin;
pub use source::Source;
pub use static_rr::StaticRr;

use std::net::IpAddr;

use crate::config::Algorithm;

/// One server that may take the next connection (already filtered: usable, weight > 0, below its maxconn).
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    /// Stable index of the server in its backend (0-based, config order); balancers key their state on it.
    pub id: usize,
    /// Effective weight now (1..=256 normally; may change between calls for dynamic algorithms).
    pub weight: u32,
    /// Connections currently open to this server.
    pub active: u32,
}

/// A load-balancing algorithm with whatever memory it needs between picks.
pub trait Balancer: Send {
    /// Index into `candidates` of the chosen server, or None when `candidates` is empty.
    fn pick(&mut self, candidates: &[Candidate], client: IpAddr) -> Option<usize>;
}

/// The balancer for `algorithm`.
///
/// `initial_weights[id]` are the configured weights of the backend's servers, in config order
/// (its length is the number of servers); only `static-rr` reads them, since it must ignore
/// weight changes made at run time. `random` is seeded from the process's random state.
pub fn new(
    algorithm: Algorithm,
    initial_weights: &[u32],
    hash_type: crate::config::HashType,
) -> Box<dyn Balancer> {
    match algorithm {
        Algorithm::Source if hash_type == crate::config::HashType::MapBased => {
            Box::new(source_map::SourceMap)
        }
        Algorithm::RoundRobin => Box::new(RoundRobin::new()),
        Algorithm::StaticRr => Box::new(StaticRr::new(initial_weights)),
        Algorithm::LeastConn => Box::new(LeastConn::new()),
        Algorithm::First => Box::new(First),
        Algorithm::Source => Box::new(Source),
        Algorithm::Random => Box::new(Random::new()),
    }
}

#[cfg(test)]
pub(crate) mod testkit {
    //! Helpers shared by the algorithm tests.
    use super::{Balancer, Candidate};
    use std::net::{IpAddr, Ipv4Addr};

    pub const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

    /// Idle candidates with ids 0.. and the given weights.
    pub fn weighted(weights: &[u32]) -> Vec<Candidate> {
        weights
            .iter()
            .enumerate()
            .map(|(id, &weight)| Candidate {
                id,
                weight,
                active: 0,
            })
            .collect()
    }

    /// The ids chosen by `n` picks over an unchanging candidate list.
    pub fn picks(b: &mut dyn Balancer, candidates: &[Candidate], n: usize) -> Vec<usize> {
        (0..n)
            .map(|_| candidates[b.pick(candidates, CLIENT).expect("a pick")].id)
            .collect()
    }

    /// How many times each id in `0..servers` occurs in `ids`.
    pub fn histogram(ids: &[usize], servers: usize) -> Vec<usize> {
        let mut h = vec![0; servers];
        for &id in ids {
            h[id] += 1;
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::testkit::*;
    use super::*;

    #[test]
    fn every_algorithm_returns_none_for_no_candidates() {
        for (name, algorithm) in Algorithm::ALL {
            let mut b = new(algorithm, &[1, 1], Default::default());
            assert_eq!(b.pick(&[], CLIENT), None, "{name}");
        }
    }

    #[test]
    fn every_algorithm_picks_the_only_candidate() {
        let only = [Candidate {
            id: 3,
            weight: 7,
            active: 12,
        }];
        for (name, algorithm) in Algorithm::ALL {
            let mut b = new(algorithm, &[1, 1, 1, 1], Default::default());
            for _ in 0..5 {
                assert_eq!(b.pick(&only, CLIENT), Some(0), "{name}");
            }
        }
    }
}
