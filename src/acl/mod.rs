//! ACLs and the conditions built from them (`acl`, `if`/`unless`), compiled once when the
//! configuration is loaded and evaluated once per connection, never per packet.
//!
//! ```text
//! acl lines ──config::haproxy::acl──▶ Acl { fetch, matcher } ──▶ Condition (OR of ANDs)
//! connection ──runtime's Facts──▶ Sample per fetch ──Matcher──▶ true/false
//! ```
//!
//! Pure code at the bottom of the layers: no sockets, no state. The proxy supplies the
//! facts of a connection (addresses, TLS, SNI) and of the live state (servers up,
//! connection counts) through [`Facts`]. HAProxy's rule for a sample that cannot be had
//! (no SNI, no TLS): the ACL does not match, and `!acl` does.

mod pattern;
pub mod rules;
pub mod sni;

pub use pattern::{int_range, IpNet, Matcher, Regex, StrMatch};
pub use rules::{Action, Rule, Rules, UseBackend, UseServer};

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

/// What an ACL looks at: HAProxy's sample fetches for TCP proxies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetch {
    /// The client's address (after `accept-proxy`, the one the PROXY header gave).
    Src,
    /// The address the client connected to.
    Dst,
    SrcPort,
    DstPort,
    /// The client's connection is TLS, terminated by warren (`bind ... ssl`).
    SslFc,
    /// The SNI of a TLS connection terminated by warren.
    SslFcSni,
    /// The SNI in a TLS ClientHello read from the buffered request without terminating it
    /// (`req.ssl_sni`, `req_ssl_sni`); needs `tcp-request inspect-delay`.
    ReqSslSni,
    /// Usable servers of a backend (`nbsrv(name)`; without a name, the current backend).
    Nbsrv(Option<usize>),
    /// Current connections of a backend (`be_conn([name])`).
    BeConn(Option<usize>),
    /// Current connections of a frontend (`fe_conn([name])`).
    FeConn(Option<usize>),
    AlwaysTrue,
    AlwaysFalse,
}

/// What kind of value a fetch yields; decides the default matcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ip,
    Int,
    Str,
    Bool,
}

impl Fetch {
    pub fn kind(&self) -> Kind {
        match self {
            Fetch::Src | Fetch::Dst => Kind::Ip,
            Fetch::SrcPort
            | Fetch::DstPort
            | Fetch::Nbsrv(_)
            | Fetch::BeConn(_)
            | Fetch::FeConn(_) => Kind::Int,
            Fetch::SslFcSni | Fetch::ReqSslSni => Kind::Str,
            Fetch::SslFc | Fetch::AlwaysTrue | Fetch::AlwaysFalse => Kind::Bool,
        }
    }

    /// Whether the fetch reads the client's first bytes (so content rules wait for them).
    pub fn reads_payload(&self) -> bool {
        matches!(self, Fetch::ReqSslSni)
    }
}

/// One fetched value.
#[derive(Debug, Clone, PartialEq)]
pub enum Sample<'a> {
    Ip(IpAddr),
    Int(i64),
    Str(&'a str),
    Bool(bool),
    /// The fetch has no value for this connection (no SNI, not TLS, ...).
    Missing,
}

/// Where a condition gets its samples from; implemented by the proxy for one connection.
pub trait Facts {
    fn sample(&self, fetch: &Fetch) -> Sample<'_>;
}

/// One `acl` line (or one anonymous `{ ... }` block): a fetch and how to match it.
#[derive(Debug, Clone, PartialEq)]
pub struct Acl {
    pub fetch: Fetch,
    pub matcher: Matcher,
}

impl Acl {
    pub fn matches(&self, facts: &dyn Facts) -> bool {
        match self.fetch {
            Fetch::AlwaysTrue => return true,
            Fetch::AlwaysFalse => return false,
            _ => {}
        }
        self.matcher.matches(&facts.sample(&self.fetch))
    }
}

/// A named ACL: every `acl <name> ...` line with that name; it matches when any does.
#[derive(Debug, Clone, PartialEq)]
pub struct Named {
    /// The name, or the text of an anonymous ACL, for messages.
    pub name: String,
    pub lines: Vec<Acl>,
}

impl Named {
    fn matches(&self, facts: &dyn Facts) -> bool {
        self.lines.iter().any(|acl| acl.matches(facts))
    }
}

/// One ACL in a condition, maybe negated (`!name`).
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    pub negate: bool,
    pub acl: Arc<Named>,
}

/// `if <cond>` / `unless <cond>`: terms joined by implicit AND, groups by `||` / `or`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// `unless`: the whole condition is negated.
    pub unless: bool,
    pub any_of: Vec<Vec<Term>>,
    /// As written after `if`/`unless`, for `warren convert` and messages.
    pub text: String,
}

impl Condition {
    pub fn holds(&self, facts: &dyn Facts) -> bool {
        let value = self
            .any_of
            .iter()
            .any(|all| all.iter().all(|t| t.acl.matches(facts) != t.negate));
        value != self.unless
    }

    /// Every fetch the condition uses.
    pub fn fetches(&self) -> impl Iterator<Item = &Fetch> {
        self.any_of
            .iter()
            .flatten()
            .flat_map(|t| t.acl.lines.iter().map(|a| &a.fetch))
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = if self.unless { "unless" } else { "if" };
        write!(f, "{word} {}", self.text)
    }
}

/// `true` when `cond` is absent (a rule without `if`/`unless` always applies).
pub fn applies(cond: Option<&Condition>, facts: &dyn Facts) -> bool {
    cond.is_none_or(|c| c.holds(facts))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct At(IpAddr, u16);

    impl Facts for At {
        fn sample(&self, fetch: &Fetch) -> Sample<'_> {
            match fetch {
                Fetch::Src => Sample::Ip(self.0),
                Fetch::SrcPort => Sample::Int(i64::from(self.1)),
                Fetch::SslFc => Sample::Bool(false),
                _ => Sample::Missing,
            }
        }
    }

    fn named(name: &str, fetch: Fetch, matcher: Matcher) -> Arc<Named> {
        Arc::new(Named {
            name: name.into(),
            lines: vec![Acl { fetch, matcher }],
        })
    }

    #[test]
    fn or_of_ands_with_negation_and_unless() {
        let local = named(
            "local",
            Fetch::Src,
            Matcher::Ip(vec![IpNet::parse("127.0.0.0/8").expect("net")]),
        );
        let high = named("high", Fetch::SrcPort, Matcher::Int(vec![(1024, i64::MAX)]));
        let tls = named("tls", Fetch::SslFc, Matcher::Bool);
        let sni = named(
            "sni",
            Fetch::SslFcSni,
            Matcher::Str {
                how: StrMatch::Exact,
                nocase: false,
                values: vec!["x".into()],
            },
        );
        let t = |acl: &Arc<Named>, negate| Term {
            negate,
            acl: Arc::clone(acl),
        };
        let cond = |unless, any_of| Condition {
            unless,
            any_of,
            text: String::new(),
        };
        let here = At("127.0.0.1".parse().expect("ip"), 5000);
        let away = At("10.0.0.1".parse().expect("ip"), 80);
        let c = cond(false, vec![vec![t(&local, false), t(&high, false)]]);
        assert!(c.holds(&here) && !c.holds(&away));
        let c = cond(false, vec![vec![t(&tls, false)], vec![t(&local, true)]]);
        assert!(!c.holds(&here) && c.holds(&away));
        let c = cond(true, vec![vec![t(&local, false)]]);
        assert!(!c.holds(&here) && c.holds(&away));
        // A missing sample never matches; its negation does.
        assert!(!cond(false, vec![vec![t(&sni, false)]]).holds(&here));
        assert!(cond(false, vec![vec![t(&sni, true)]]).holds(&here));
        assert!(applies(None, &here));
    }
}
