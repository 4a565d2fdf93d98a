//! ACLs and the conditions built from them (`acl`, `if`/`unless`), compiled once when the
//! configuration is loaded and evaluated once per connection (TCP rules) or per request
//! (HTTP rules), never per packet. One engine for both: an `acl` line of a proxy is one
//! name that its `tcp-request`, `use_backend`, `use-server`, `http-request` and
//! `http-response` rules all see, as in HAProxy.
//!
//! ```text
//! acl lines ──config::haproxy::acl──▶ Acl { fetch, matcher } ──▶ Condition (OR of ANDs)
//! connection (+ request) ──Facts──▶ Sample(s) per fetch ──Matcher──▶ true/false
//! ```
//!
//! Pure code at the bottom of the layers: no sockets, no state. The proxy supplies the
//! facts of a connection (addresses, TLS, SNI), of the live state (servers up,
//! connection counts) and, in HTTP mode, of the request or response through [`Facts`].
//! HAProxy's rule for a sample that cannot be had (no SNI, not TLS, no such header): the
//! ACL does not match, and `!acl` does.

mod pattern;
pub mod rules;
pub mod sni;
pub mod userlist;

pub use pattern::{int_range, IpNet, Matcher, Regex, StrMatch};
pub use rules::{Action, Rule, Rules, UseBackend, UseServer};

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

/// What an ACL looks at: HAProxy's sample fetches for the connection, and in HTTP mode for
/// the request and the response.
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
    /// The request's path (no query string, no scheme and authority).
    Path,
    /// The request's method.
    Method,
    /// Every value of a request header (`hdr()`, `req.hdr()`); comma-separated values
    /// count separately, as in HAProxy.
    ReqHdr(String),
    /// Every value of a response header (`res.hdr()`, in `http-response` rules).
    ResHdr(String),
    /// The request carries basic-auth credentials valid in this userlist.
    HttpAuth(userlist::Userlist),
}

/// What must exist for a fetch to have a value: the rules that may read it follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Needs {
    /// The connection (any rule).
    Connection,
    /// The client's first bytes (`tcp-request content` with `inspect-delay`).
    Payload,
    /// An HTTP request (`http-request` rules, `use_backend` in HTTP mode).
    Request,
    /// An HTTP response (`http-response` rules).
    Response,
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
            Fetch::SslFcSni
            | Fetch::ReqSslSni
            | Fetch::Path
            | Fetch::Method
            | Fetch::ReqHdr(_)
            | Fetch::ResHdr(_) => Kind::Str,
            Fetch::SslFc | Fetch::AlwaysTrue | Fetch::AlwaysFalse | Fetch::HttpAuth(_) => {
                Kind::Bool
            }
        }
    }

    /// What the fetch reads, so a rule that runs before it exists can be refused.
    pub fn needs(&self) -> Needs {
        match self {
            Fetch::ReqSslSni => Needs::Payload,
            Fetch::Path | Fetch::Method | Fetch::ReqHdr(_) | Fetch::HttpAuth(_) => Needs::Request,
            Fetch::ResHdr(_) => Needs::Response,
            _ => Needs::Connection,
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

/// Where a condition gets its samples from; implemented by the proxy for one connection
/// (and by the HTTP proxy for one request, which adds the message's facts).
pub trait Facts {
    fn sample(&self, fetch: &Fetch) -> Sample<'_>;

    /// Calls `f` on each value of `fetch` until it returns true; returns whether it did.
    /// One value for most fetches; every value of a header for `hdr()`.
    fn any(&self, fetch: &Fetch, f: &mut dyn FnMut(&Sample<'_>) -> bool) -> bool {
        f(&self.sample(fetch))
    }
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
        facts.any(&self.fetch, &mut |s| self.matcher.matches(s))
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

    /// What the condition reads at the latest (see [`Fetch::needs`]).
    pub fn needs(&self) -> Needs {
        self.fetches()
            .map(Fetch::needs)
            .max()
            .unwrap_or(Needs::Connection)
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
