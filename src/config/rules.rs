//! HTTP rules of a proxy, as parsed: `http-request`/`http-response` actions with their
//! conditions (`crate::acl`'s, the one ACL engine TCP rules use too), `userlist`s,
//! `monitor-uri` and `errorfile`.

use super::model::Secret;

/// A regular expression, compared by its text (so configurations compare equal).
#[derive(Debug, Clone)]
pub struct Pattern(pub regex::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Eq for Pattern {}

/// A value built per request: literal text and `%[fetch]` parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    Fetch(crate::acl::Fetch),
}

/// A format string (HAProxy's log-format, the parts warren has).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format(pub Vec<Part>);

/// What `redirect` rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectKind {
    Location,
    Prefix,
    Scheme,
}

/// What `deny` and `return` answer with (HAProxy's "http reply").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `default-errorfiles` (and a bare `deny`): the proxy's errorfile for the status,
    /// else HAProxy's built-in page.
    Default,
    /// `errorfile <file>`, or the file an `errorfiles <name>` section has for the status:
    /// a whole response, sent as written. The path is kept for `warren convert`.
    Errorfile(std::sync::Arc<Vec<u8>>, String),
    /// `[content-type <type>] [string <text>]`: a response warren builds (no body when
    /// neither is given).
    Text {
        content_type: Option<String>,
        body: String,
    },
}

/// An `http-errors <name>` section: `errorfile <code> <file>` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpErrors {
    pub name: String,
    /// Status, the file's response, the file's path.
    pub files: Vec<(u16, Vec<u8>, String)>,
}

/// An `http-request` or `http-response` action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    SetHeader(String, Format),
    AddHeader(String, Format),
    DelHeader(String),
    /// `replace-header <name> <regex> <replacement>`: each value matching is rewritten.
    ReplaceHeader(String, Pattern, String),
    /// Requests only.
    SetPath(Format),
    /// `deny [{status|deny_status} <code>] [<reply>]`: refused, counted and logged as
    /// such (`P`); the answer is the proxy's errorfile for the status unless the line
    /// names another.
    Deny(u16, Reply),
    /// `return [status <code>] [<reply>]` (requests only): answered in warren's name.
    Return(u16, Reply),
    /// `redirect location|prefix|scheme <value> [code <code>]` (requests only).
    Redirect {
        kind: RedirectKind,
        value: Format,
        code: u16,
    },
    /// `auth [realm <realm>]`: 401 asking for credentials (requests only).
    Auth {
        realm: String,
    },
}

/// A rule: an action and the condition under which it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub action: Action,
    pub condition: Option<crate::acl::Condition>,
    /// The line as written, for `warren convert`.
    pub text: String,
}

pub use crate::acl::userlist::{Password, SecretEq, User, Userlist};

impl From<&SecretEq> for Secret {
    fn from(s: &SecretEq) -> Secret {
        Secret(s.0.clone())
    }
}

/// The HTTP rules of one proxy.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpRules {
    /// `acl` lines as written (for `warren convert`; rules hold their own copies).
    pub acls: Vec<String>,
    pub request: Vec<Rule>,
    pub response: Vec<Rule>,
    /// `monitor-uri`: requests for this path get 200 from warren itself.
    pub monitor_uri: Option<String>,
    /// `errorfile <code> <file>`: the file's bytes replace warren's answer with that code.
    pub errorfiles: Vec<(u16, Vec<u8>, String)>,
}

impl HttpRules {
    pub fn is_empty(&self) -> bool {
        *self == HttpRules::default()
    }
}
