//! `balance source` with `hash-type map-based` (HAProxy's default hash type): the client's
//! hash modulo the total weight of the candidates, each server owning a run of slots as
//! wide as its weight. Cheap and even, but any change in the candidate set moves most
//! clients, which is why warren defaults to the consistent form (`source.rs`).

use std::net::IpAddr;

use super::source::hash_ip;
use super::{Balancer, Candidate};

#[derive(Debug, Default, Clone, Copy)]
pub struct SourceMap;

impl Balancer for SourceMap {
    fn pick(&mut self, candidates: &[Candidate], client: IpAddr) -> Option<usize> {
        let total: u64 = candidates.iter().map(|c| u64::from(c.weight)).sum();
        if total == 0 {
            return None;
        }
        let mut slot = hash_ip(client) % total;
        for (index, c) in candidates.iter().enumerate() {
            let w = u64::from(c.weight);
            if slot < w {
                return Some(index);
            }
            slot -= w;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use std::net::Ipv4Addr;

    fn clients(n: u32) -> impl Iterator<Item = IpAddr> {
        (0..n).map(|i| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i * 7919)))
    }

    #[test]
    fn stable_weighted_and_remapped_when_the_set_changes() {
        let cands = weighted(&[1, 3]);
        let mut counts = [0u32; 2];
        for ip in clients(4000) {
            let first = SourceMap.pick(&cands, ip).expect("pick");
            assert_eq!(SourceMap.pick(&cands, ip), Some(first));
            counts[first] += 1;
        }
        // Weight 3 gets about three times the clients of weight 1.
        assert!(
            counts[1] > 2 * counts[0] && counts[1] < 4 * counts[0],
            "{counts:?}"
        );
        assert_eq!(SourceMap.pick(&weighted(&[0, 0]), CLIENT), None);
        // Unlike the consistent hash, removing a server moves clients of the others too.
        let three = weighted(&[1, 1, 1]);
        let two: Vec<Candidate> = three.iter().copied().filter(|c| c.id != 2).collect();
        let moved = clients(3000)
            .filter(|ip| {
                let a = three[SourceMap.pick(&three, *ip).expect("pick")].id;
                let b = two[SourceMap.pick(&two, *ip).expect("pick")].id;
                a != 2 && a != b
            })
            .count();
        assert!(moved > 300, "map-based remaps survivors' clients: {moved}");
    }
}
