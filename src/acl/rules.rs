//! The rules of a TCP proxy that use conditions, in the order HAProxy applies them to a
//! connection:
//!
//! ```text
//! accept ─▶ tcp-request connection ─▶ (PROXY header, TLS) ─▶ tcp-request session
//!        ─▶ tcp-request content (waits up to inspect-delay for payload fetches)
//!        ─▶ use_backend … / default_backend ─▶ backend's tcp-request content ─▶ use-server
//! ```
//!
//! Within a list the first rule whose condition holds decides; no rule means accept.

use std::time::Duration;

use super::{applies, Condition, Facts};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Accept,
    Reject,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Accept => "accept",
            Action::Reject => "reject",
        }
    }
}

/// `tcp-request <stage> accept|reject [if|unless <cond>]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub action: Action,
    pub cond: Option<Condition>,
}

/// `use_backend <name> [if|unless <cond>]`, the name resolved to an index into
/// `Config::backends`.
#[derive(Debug, Clone, PartialEq)]
pub struct UseBackend {
    pub backend: usize,
    pub cond: Option<Condition>,
}

/// `use-server <name> if|unless <cond>`, the name resolved to an index into the backend's
/// servers.
#[derive(Debug, Clone, PartialEq)]
pub struct UseServer {
    pub server: usize,
    pub cond: Condition,
}

/// Every rule of one proxy. Empty for a proxy without rules, which costs nothing per
/// connection.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rules {
    pub connection: Vec<Rule>,
    pub session: Vec<Rule>,
    /// `tcp-request inspect-delay`: how long content rules may wait for the client's first
    /// bytes when a condition reads them; `None`: they are evaluated at once.
    pub inspect_delay: Option<Duration>,
    pub content: Vec<Rule>,
    pub use_backend: Vec<UseBackend>,
    pub use_server: Vec<UseServer>,
    /// The `acl` and rule lines as written (words re-quoted), in order: what
    /// `warren convert` prints and warren's TOML reads back.
    pub lines: Vec<String>,
}

impl Rules {
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The first rule of `list` that applies decides; none: accept.
    pub fn verdict(list: &[Rule], facts: &dyn Facts) -> Action {
        list.iter()
            .find(|r| applies(r.cond.as_ref(), facts))
            .map_or(Action::Accept, |r| r.action)
    }

    /// The backend of the first `use_backend` rule that applies.
    pub fn backend(&self, facts: &dyn Facts) -> Option<usize> {
        self.use_backend
            .iter()
            .find(|r| applies(r.cond.as_ref(), facts))
            .map(|r| r.backend)
    }

    /// The server of the first `use-server` rule that applies.
    pub fn server(&self, facts: &dyn Facts) -> Option<usize> {
        self.use_server
            .iter()
            .find(|r| r.cond.holds(facts))
            .map(|r| r.server)
    }

    /// Whether content rules or backend switching read the client's first bytes, so the
    /// session must wait for them (up to `inspect_delay`) before deciding.
    pub fn reads_payload(&self) -> bool {
        let content = self.content.iter().filter_map(|r| r.cond.as_ref());
        let switching = self.use_backend.iter().filter_map(|r| r.cond.as_ref());
        content
            .chain(switching)
            .flat_map(Condition::fetches)
            .any(super::Fetch::reads_payload)
    }
}
