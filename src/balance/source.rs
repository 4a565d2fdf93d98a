//! `balance source`: the same client address goes to the same server.
//!
//! HAProxy hashes the source address; with `hash-type consistent`, removing a server only
//! moves the clients that were on it. Warren always behaves that way, using weighted
//! rendezvous hashing (Schindelhauer and Schomaker's "logarithmic method"): every candidate
//! draws a pseudo-random `u` in (0, 1) from a stable hash of (client address, server id),
//! and the lowest `-ln(u) / weight` wins. A client's scores never depend on the other
//! candidates, so a server leaving only re-homes its own clients, and one coming back takes
//! exactly those back; each server gets a share of clients proportional to its weight.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`, what a dual-stack listener reports for
//! IPv4 clients) hash as the IPv4 address, so a client lands on the same server whichever
//! listener it came through.

use std::net::IpAddr;

use super::mix::{mix64, GAMMA};
use super::{Balancer, Candidate};

/// `balance source`: consistent, weighted hash of the client address. Stateless.
#[derive(Debug, Default, Clone, Copy)]
pub struct Source;

/// A stable 64-bit hash of a client address.
pub(super) fn hash_ip(ip: IpAddr) -> u64 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => mix64(u64::from(u32::from(v4)) ^ 0x0004_0000_0000_0000),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let (hi, lo) = ((bits >> 64) as u64, bits as u64);
            mix64(mix64(hi ^ 0x0006_0000_0000_0000).wrapping_add(lo))
        }
    }
}

/// The rendezvous score of server `id` for a client hashing to `ip_hash`: lower wins.
fn score(ip_hash: u64, id: usize, weight: u32) -> f64 {
    if weight == 0 {
        return f64::INFINITY;
    }
    let h = mix64(ip_hash ^ (id as u64).wrapping_add(1).wrapping_mul(GAMMA));
    // 53 random bits, offset by half a step so that u is never 0 nor 1.
    let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    -u.ln() / f64::from(weight)
}

impl Balancer for Source {
    fn pick(&mut self, candidates: &[Candidate], client: IpAddr) -> Option<usize> {
        let ip_hash = hash_ip(client);
        candidates
            .iter()
            .enumerate()
            .map(|(index, c)| (index, c.id, score(ip_hash, c.id, c.weight)))
            .min_by(|a, b| a.2.total_cmp(&b.2).then(a.1.cmp(&b.1)))
            .map(|(index, _, _)| index)
    }
}

/// Which id of `candidates` `client` goes to (test helper kept beside the hash).
#[cfg(test)]
fn home(candidates: &[Candidate], client: IpAddr) -> usize {
    candidates[Source.pick(candidates, client).expect("a pick")].id
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn clients(n: u32) -> impl Iterator<Item = IpAddr> {
        (0..n).map(|i| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i * 7919)))
    }

    #[test]
    fn the_same_client_always_gets_the_same_server() {
        let cands = weighted(&[1, 1, 1, 1]);
        for ip in clients(200) {
            let first = home(&cands, ip);
            assert!((0..5).all(|_| home(&cands, ip) == first));
        }
    }

    #[test]
    fn the_mapping_is_stable_across_releases() {
        // Pinned: a change here re-homes every client of every user on upgrade.
        let cands = weighted(&[1, 1, 1, 1]);
        let got: Vec<usize> = clients(12).map(|ip| home(&cands, ip)).collect();
        assert_eq!(got, PINNED);
    }
    const PINNED: [usize; 12] = [1, 2, 1, 3, 2, 3, 3, 0, 1, 2, 1, 2];

    #[test]
    fn removing_a_server_only_moves_its_own_clients() {
        let all = weighted(&[1, 2, 1, 3, 1]);
        let without_3: Vec<Candidate> = all.iter().copied().filter(|c| c.id != 3).collect();
        let mut moved = 0;
        for ip in clients(5000) {
            let before = home(&all, ip);
            let after = home(&without_3, ip);
            if before == 3 {
                moved += 1;
                assert_ne!(after, 3);
            } else {
                assert_eq!(after, before, "{ip} moved off a server that stayed");
            }
        }
        // Server 3 has 3/8 of the weight.
        assert!((1700..2050).contains(&moved), "{moved}");
    }

    #[test]
    fn a_server_coming_back_takes_back_exactly_its_clients() {
        let all = weighted(&[1, 1, 1]);
        let without_0 = [all[1], all[2]];
        let before: Vec<usize> = clients(1000).map(|ip| home(&all, ip)).collect();
        let during: Vec<usize> = clients(1000).map(|ip| home(&without_0, ip)).collect();
        assert!(during.iter().all(|&id| id != 0));
        let after: Vec<usize> = clients(1000).map(|ip| home(&all, ip)).collect();
        assert_eq!(before, after);
    }

    #[test]
    fn shares_follow_the_weights() {
        let cands = weighted(&[1, 2, 3, 4]);
        let ids: Vec<usize> = clients(20_000).map(|ip| home(&cands, ip)).collect();
        let h = histogram(&ids, 4);
        for (id, expected) in [2000, 4000, 6000, 8000].into_iter().enumerate() {
            assert!(h[id].abs_diff(expected) < 300, "{h:?}");
        }
    }

    #[test]
    fn ipv4_mapped_ipv6_hashes_as_ipv4() {
        let v4 = Ipv4Addr::new(198, 51, 100, 23);
        assert_eq!(
            hash_ip(IpAddr::V4(v4)),
            hash_ip(IpAddr::V6(v4.to_ipv6_mapped()))
        );
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        assert_ne!(hash_ip(v6), hash_ip(IpAddr::V4(v4)));
    }

    #[test]
    fn ipv6_clients_spread_too() {
        let cands = weighted(&[1, 1]);
        let ids: Vec<usize> = (0..2000u128)
            .map(|i| {
                home(
                    &cands,
                    IpAddr::V6(Ipv6Addr::from((0x2001_0db8u128 << 96) + (i << 64))),
                )
            })
            .collect();
        let h = histogram(&ids, 2);
        assert!(h[0].abs_diff(1000) < 150, "{h:?}");
    }
}
