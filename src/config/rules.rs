//! HTTP rules of a proxy, as parsed: ACLs (the HTTP fetches `path`, `path_beg`, `hdr()`,
//! `method`, `http_auth()`, plus `src` and `ssl_fc`), conditions (`if`/`unless`),
//! `http-request`/`http-response` actions, `userlist`s, `monitor-uri` and `errorfile`.
//!
//! Kept apart from the TCP side's ACLs (another module builds `tcp-request` ACLs): the
//! [`Fetch`] enum is the seam. Merging means one `Fetch` enum holding both sides'
//! fetches, one [`Matcher`] and [`Condition`], and each side's evaluator answering for
//! the fetches it has data for (see `crate::http::acl`).

use std::net::IpAddr;

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

/// What a matcher looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetch {
    /// The request's path (without the query string).
    Path,
    /// The request's method.
    Method,
    /// Every value of a request header (response header in `http-response` rules);
    /// comma-separated values count separately, as in HAProxy.
    Hdr(String),
    /// The request carries credentials valid in this userlist (basic auth).
    HttpAuth(Userlist),
    /// The client's address.
    Src,
    /// The client came over TLS.
    SslFc,
    /// `TRUE` / `FALSE`.
    Const(bool),
}

/// How a fetched value is compared with the patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    Str,
    Beg,
    End,
    Sub,
    /// The fetch found something at all.
    Found,
    Reg,
    /// Addresses and networks (`src`).
    Ip,
    /// A boolean fetch is true (`ssl_fc`, `http_auth`, `TRUE`).
    Bool,
}

/// One ACL line: a fetch, how to match, patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    pub fetch: Fetch,
    pub kind: MatchKind,
    /// `-i`.
    pub ignore_case: bool,
    pub patterns: Vec<String>,
    /// `-m reg` patterns, compiled.
    pub regexes: Vec<Pattern>,
    /// `src` networks.
    pub networks: Vec<(IpAddr, u8)>,
}

/// A named ACL: its lines, any of which matching makes it true (HAProxy's rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    pub name: String,
    pub matchers: Vec<Matcher>,
}

/// One term of a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub negate: bool,
    /// A named ACL's matchers (copied when the rule is read), or an anonymous one's.
    pub matchers: Vec<Matcher>,
}

/// `if`/`unless` followed by terms: ANDed, with `or`/`||` between groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub unless: bool,
    pub any_of: Vec<Vec<Term>>,
}

/// A value built per request: literal text and `%[fetch]` parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    Fetch(Fetch),
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub action: Action,
    pub condition: Option<Condition>,
    /// The line as written, for `warren convert`.
    pub text: String,
}

/// A password in a userlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password {
    /// `insecure-password`.
    Plain(SecretEq),
    /// `password`: a crypt(3) hash, checked with the system's crypt as HAProxy does.
    Crypt(String),
}

/// A secret that compares by value (for configuration equality) but never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretEq(pub String);

impl std::fmt::Debug for SecretEq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MASKED")
    }
}

impl From<&SecretEq> for Secret {
    fn from(s: &SecretEq) -> Secret {
        Secret(s.0.clone())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub password: Password,
    pub groups: Vec<String>,
}

/// A `userlist` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Userlist {
    pub name: String,
    pub users: Vec<User>,
}

/// The HTTP rules of one proxy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
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

/// Whether `client` is in a network (address, prefix length): the `src` fetch.
pub fn in_network(net: (IpAddr, u8), client: IpAddr) -> bool {
    super::http::ForwardFor {
        header: String::new(),
        except: Some(net),
    }
    .excepted(client)
}

impl HttpRules {
    pub fn is_empty(&self) -> bool {
        *self == HttpRules::default()
    }
}
