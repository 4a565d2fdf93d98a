//! How a sample is compared with an ACL's values: HAProxy's `-m` methods for TCP proxies
//! (`ip`, `int` with ranges and operators, `str`/`beg`/`end`/`sub`/`reg`, `bool`,
//! `found`), `-i` for case-insensitive strings.

use std::net::IpAddr;

use super::Sample;

/// An address with a prefix length (`10.0.0.0/8`, `::1`, `192.168.0.0/255.255.0.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    /// Parses `addr[/prefix]`; the prefix may be a dotted IPv4 mask, as in HAProxy.
    pub fn parse(text: &str) -> Result<IpNet, String> {
        let bad = || format!("'{text}' is not an address or network (such as 10.0.0.0/8)");
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match (p.parse::<u8>(), p.parse::<std::net::Ipv4Addr>()) {
                (Ok(n), _) if n <= max => n,
                (_, Ok(mask)) if addr.is_ipv4() => {
                    let bits = u32::from(mask);
                    if bits.leading_ones() + bits.trailing_zeros() != 32 {
                        return Err(bad());
                    }
                    bits.leading_ones() as u8
                }
                _ => return Err(bad()),
            },
        };
        Ok(IpNet { addr, prefix })
    }

    /// Whether `ip` is in the network. An IPv4 network matches IPv4-mapped IPv6 clients
    /// (`::ffff:10.0.0.1` on a dual-stack socket), as in HAProxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            _ => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The string methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrMatch {
    /// `-m str`: the whole string.
    Exact,
    /// `-m beg`: a prefix.
    Begin,
    /// `-m end`: a suffix.
    End,
    /// `-m sub`: anywhere.
    Sub,
}

/// A compiled regular expression; compared by its text.
#[derive(Debug, Clone)]
pub struct Regex(pub regex::Regex);

impl PartialEq for Regex {
    fn eq(&self, other: &Regex) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

/// How values are matched.
#[derive(Debug, Clone, PartialEq)]
pub enum Matcher {
    /// `-m bool`: a boolean sample, or an integer that is not 0.
    Bool,
    /// `-m found`: the sample exists.
    Found,
    Ip(Vec<IpNet>),
    /// Inclusive ranges; `gt 5` is `6..=MAX`.
    Int(Vec<(i64, i64)>),
    Str {
        how: StrMatch,
        nocase: bool,
        values: Vec<String>,
    },
    Reg(Vec<Regex>),
}

impl Matcher {
    pub fn matches(&self, sample: &Sample<'_>) -> bool {
        match (self, sample) {
            (_, Sample::Missing) => false,
            (Matcher::Found, _) => true,
            (Matcher::Bool, Sample::Bool(b)) => *b,
            (Matcher::Bool, Sample::Int(n)) => *n != 0,
            (Matcher::Ip(nets), Sample::Ip(ip)) => nets.iter().any(|n| n.contains(*ip)),
            (Matcher::Int(ranges), Sample::Int(n)) => {
                ranges.iter().any(|(lo, hi)| (lo..=hi).contains(&n))
            }
            (
                Matcher::Str {
                    how,
                    nocase,
                    values,
                },
                Sample::Str(s),
            ) => values.iter().any(|v| str_match(*how, *nocase, s, v)),
            (Matcher::Reg(list), Sample::Str(s)) => list.iter().any(|r| r.0.is_match(s)),
            _ => false,
        }
    }
}

fn str_match(how: StrMatch, nocase: bool, sample: &str, value: &str) -> bool {
    if nocase {
        // Values were lowered when compiled; samples here are host names (ASCII).
        let sample = sample.to_ascii_lowercase();
        return str_match(how, false, &sample, value);
    }
    match how {
        StrMatch::Exact => sample == value,
        StrMatch::Begin => sample.starts_with(value),
        StrMatch::End => sample.ends_with(value),
        StrMatch::Sub => sample.contains(value),
    }
}

/// An integer pattern: `n`, `lo:hi`, `:hi`, `lo:`, or an operator and a number
/// (`eq ge gt le lt`) taken from `op`.
pub fn int_range(op: Option<&str>, text: &str) -> Result<(i64, i64), String> {
    let bad = || format!("'{text}' is not an integer or a range such as 1024:65535");
    let num = |t: &str| t.parse::<i64>().map_err(|_| bad());
    if let Some(op) = op {
        let n = num(text)?;
        return Ok(match op {
            "eq" => (n, n),
            "ge" => (n, i64::MAX),
            "gt" => (n.saturating_add(1), i64::MAX),
            "le" => (i64::MIN, n),
            _ => (i64::MIN, n.saturating_sub(1)),
        });
    }
    match text.split_once(':') {
        Some((lo, hi)) => {
            let lo = if lo.is_empty() { i64::MIN } else { num(lo)? };
            let hi = if hi.is_empty() { i64::MAX } else { num(hi)? };
            if lo > hi {
                return Err(format!(
                    "the range '{text}' is empty (its start is after its end)"
                ));
            }
            Ok((lo, hi))
        }
        None => num(text).map(|n| (n, n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        let n = |t: &str| IpNet::parse(t).expect(t);
        let ip = |t: &str| t.parse::<IpAddr>().expect(t);
        assert!(n("10.0.0.0/8").contains(ip("10.1.2.3")));
        assert!(!n("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(n("192.168.0.0/255.255.0.0").contains(ip("192.168.9.9")));
        assert!(n("10.0.0.0/8").contains(ip("::ffff:10.0.0.1")));
        assert!(n("::1").contains(ip("::1")) && !n("::1").contains(ip("::2")));
        assert!(n("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(n("fd00::/8").contains(ip("fd12::1")));
        for bad in ["10.0.0.0/33", "x", "10.0.0.0/255.0.255.0", "::1/129"] {
            assert!(IpNet::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn integers_and_ranges() {
        assert_eq!(int_range(None, "80"), Ok((80, 80)));
        assert_eq!(int_range(None, "1024:"), Ok((1024, i64::MAX)));
        assert_eq!(int_range(None, ":1023"), Ok((i64::MIN, 1023)));
        assert_eq!(int_range(Some("gt"), "5"), Ok((6, i64::MAX)));
        assert_eq!(int_range(Some("lt"), "1"), Ok((i64::MIN, 0)));
        assert!(int_range(None, "9:1").is_err());
        assert!(int_range(None, "x").is_err());
    }

    #[test]
    fn strings() {
        let m = |how, nocase, v: &str| Matcher::Str {
            how,
            nocase,
            values: vec![v.into()],
        };
        let s = Sample::Str("Rabbit.Example.com");
        assert!(m(StrMatch::Exact, true, "rabbit.example.com").matches(&s));
        assert!(!m(StrMatch::Exact, false, "rabbit.example.com").matches(&s));
        assert!(m(StrMatch::Begin, false, "Rabbit.").matches(&s));
        assert!(m(StrMatch::End, true, ".com").matches(&s));
        assert!(m(StrMatch::Sub, true, "example").matches(&s));
        let r = Matcher::Reg(vec![Regex(regex::Regex::new(r"^rab.*\.com$").expect("re"))]);
        assert!(!r.matches(&s) && r.matches(&Sample::Str("rabbit.com")));
        assert!(Matcher::Found.matches(&s) && !Matcher::Found.matches(&Sample::Missing));
        assert!(Matcher::Bool.matches(&Sample::Int(2)) && !Matcher::Bool.matches(&Sample::Int(0)));
    }
}
