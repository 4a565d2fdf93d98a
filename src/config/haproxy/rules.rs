//! `acl`, `tcp-request`, `use_backend` and `use-server` lines. They are kept as written
//! while the file is read ([`keyword`]) and compiled once every section is known
//! ([`compile`]), since a rule may name a backend defined further down.

use std::collections::HashMap;

use super::acl::{check_place, quote, Place, Scope, Table};
use super::draft::{Draft, Kind};
use super::duration;
use crate::acl::{Action, Rule, Rules, UseBackend, UseServer};
use crate::config::report::Report;
use crate::config::suggest;

/// The stages of `tcp-request` warren applies.
const STAGES: [&str; 4] = ["connection", "session", "content", "inspect-delay"];

/// Records a rule line of `draft` (checked for its place here, compiled later).
pub fn keyword(draft: &mut Draft, words: &[String], line: usize, report: &mut Report) {
    let key = words[0].as_str();
    if draft.kind == Kind::Defaults {
        report.error(line, format!("'{key}' is not allowed in a defaults section in warren: write it in the frontend, listen or backend it applies to"));
        return;
    }
    match key {
        "use_backend" if !draft.kind.has_frontend() => {
            report.error(line, format!("'use_backend' is not allowed in {}: it chooses a backend for a frontend's clients; write it in a frontend or listen section", draft.describe()));
            return;
        }
        "use-server" if !draft.kind.has_backend() => {
            report.error(line, format!("'use-server' is not allowed in {}: it belongs to the backend or listen section that has the servers", draft.describe()));
            return;
        }
        "tcp-request" => {
            let stage = words.get(1).map(String::as_str).unwrap_or("");
            if !STAGES.contains(&stage) {
                report.error(
                    line,
                    format!(
                        "'tcp-request' needs connection, session, content or inspect-delay, not '{stage}'{}",
                        suggest::hint(stage, STAGES)
                    ),
                );
                return;
            }
            if matches!(stage, "connection" | "session") && !draft.kind.has_frontend() {
                report.error(line, format!("'tcp-request {stage}' is not allowed in {}: it applies where clients connect; write it in the frontend or listen section", draft.describe()));
                return;
            }
            if stage == "inspect-delay" {
                if words.len() > 3 {
                    report.error(
                        line,
                        format!(
                            "too many arguments to 'tcp-request inspect-delay': remove '{}'",
                            words[3]
                        ),
                    );
                } else if let Some(d) =
                    report.check(line, duration("tcp-request inspect-delay", words.get(2)))
                {
                    draft.inspect_delay = (!d.is_zero()).then_some(d);
                }
                return;
            }
        }
        _ => {}
    }
    draft.rule_lines.push((words.to_vec(), line));
}

/// The rules of one proxy, split into its client side (connection, session and content
/// rules, `use_backend`) and its server side (`use-server`, and the content rules of a
/// plain backend, which apply once the backend is chosen), and its HTTP rules.
pub struct Compiled {
    pub frontend: Rules,
    pub backend: Rules,
    /// `http-request` and `http-response` rules (mode http only).
    pub http_request: Vec<crate::config::rules::Rule>,
    pub http_response: Vec<crate::config::rules::Rule>,
    /// Every `acl` line, as written (for `warren convert`).
    pub acl_lines: Vec<String>,
}

/// Compiles `draft`'s rule lines. `servers` are the names of its servers, in order.
pub fn compile(
    draft: &Draft,
    scope: &Scope<'_>,
    servers: &[&str],
    report: &mut Report,
) -> Compiled {
    let http = draft.mode() == crate::config::model::Mode::Http;
    let scope = &Scope {
        http,
        userlists: &draft.userlists,
        ..*scope
    };
    let mut out = Compiled {
        frontend: Rules {
            inspect_delay: draft.inspect_delay,
            ..Rules::default()
        },
        backend: Rules::default(),
        http_request: Vec::new(),
        http_response: Vec::new(),
        acl_lines: Vec::new(),
    };
    if draft.kind == Kind::Backend {
        out.backend.inspect_delay = draft.inspect_delay;
    }
    let mut table = Table::default();
    let mut acl_lines: Vec<String> = Vec::new();
    for (words, line) in &draft.rule_lines {
        let line = *line;
        let text = words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ");
        match words[0].as_str() {
            "acl" => match table.declare(&words[1..], scope) {
                Ok(warning) => {
                    if let Some(w) = warning {
                        report.warn(line, w);
                    }
                    acl_lines.push(text);
                }
                Err(e) => report.error(line, e),
            },
            "use_backend" => {
                let Some(name) = words.get(1) else {
                    report.error(line, "'use_backend' needs a backend name");
                    continue;
                };
                let Some(backend) = scope.backends.get(name).copied() else {
                    report.error(
                        line,
                        format!(
                            "'use_backend {name}': no backend named '{name}'{}",
                            suggest::hint(name, scope.backends.keys().map(String::as_str))
                        ),
                    );
                    continue;
                };
                let Some(cond) =
                    optional_condition(&table, &words[2..], scope, Place::Switching, line, report)
                else {
                    continue;
                };
                out.frontend.use_backend.push(UseBackend { backend, cond });
                out.frontend.lines.push(text);
            }
            "use-server" => {
                let Some(name) = words.get(1) else {
                    report.error(line, "'use-server' needs a server name and a condition");
                    continue;
                };
                let Some(server) = servers.iter().position(|s| s == name) else {
                    report.error(
                        line,
                        format!(
                            "'use-server {name}': {} has no server named '{name}'{}",
                            draft.describe(),
                            suggest::hint(name, servers.iter().copied())
                        ),
                    );
                    continue;
                };
                if words.len() < 3 {
                    report.error(
                        line,
                        format!(
                            "'use-server {name}' needs 'if <condition>' or 'unless <condition>'"
                        ),
                    );
                    continue;
                }
                let cond = table
                    .condition(&words[2..], scope)
                    .and_then(|c| check_place(&c, Place::Switching, http).map(|()| c));
                match cond {
                    Ok(cond) => {
                        out.backend.use_server.push(UseServer { server, cond });
                        out.backend.lines.push(text);
                    }
                    Err(e) => report.error(line, e),
                }
            }
            "http-request" | "http-response" => {
                if !http {
                    // Warned about as HTTP-only by `finish`.
                    continue;
                }
                let response = words[0] == "http-response";
                let rules_scope = crate::config::rules_parse::Scope {
                    table: &table,
                    names: scope,
                    http_errors: &draft.http_errors,
                    response,
                };
                match crate::config::rules_actions::rule(&words[1..], &rules_scope) {
                    Ok(rule) if response => out.http_response.push(rule),
                    Ok(rule) => out.http_request.push(rule),
                    Err(e) => report.error(line, format!("{}: {e}", words[0])),
                }
            }
            _ => {
                // tcp-request connection|session|content accept|reject [if|unless ...]
                let stage = words[1].as_str();
                let action = match words.get(2).map(String::as_str) {
                    Some("accept") => Action::Accept,
                    Some("reject") => Action::Reject,
                    Some(other) => {
                        report.error(line, format!("'tcp-request {stage} {other}' is not supported: warren applies 'accept' and 'reject'{}", suggest::hint(other, ["accept", "reject"])));
                        continue;
                    }
                    None => {
                        report.error(
                            line,
                            format!("'tcp-request {stage}' needs an action: accept or reject"),
                        );
                        continue;
                    }
                };
                let place = match stage {
                    "connection" => Place::TcpConnection,
                    "session" => Place::TcpSession,
                    _ => Place::TcpContent,
                };
                let Some(cond) =
                    optional_condition(&table, &words[3..], scope, place, line, report)
                else {
                    continue;
                };
                let rule = Rule { action, cond };
                let side = if draft.kind == Kind::Backend {
                    &mut out.backend
                } else {
                    &mut out.frontend
                };
                match stage {
                    "connection" => side.connection.push(rule),
                    "session" => side.session.push(rule),
                    _ => side.content.push(rule),
                }
                side.lines.push(text);
            }
        }
    }
    if out.frontend.reads_payload() && draft.mode() == crate::config::model::Mode::Amqp {
        report.error(draft.line, format!("{} reads req.ssl_sni, a TLS ClientHello passing through, but AMQP mode expects AMQP bytes: use it in mode tcp (without 'option amqp')", draft.describe()));
    }
    if out.frontend.reads_payload() && out.frontend.inspect_delay.is_none() {
        report.warn(draft.line, format!("{} reads req.ssl_sni without 'tcp-request inspect-delay': rules are evaluated on the first bytes only, as in HAProxy; add 'tcp-request inspect-delay 5s'", draft.describe()));
    }
    out.acl_lines = acl_lines.clone();
    // Each side carries the ACLs it needs to be read back (warren convert, TOML).
    for side in [&mut out.frontend, &mut out.backend] {
        if !side.lines.is_empty() {
            let mut lines = acl_lines.clone();
            if let Some(d) = side.inspect_delay {
                lines.push(format!("tcp-request inspect-delay {}ms", d.as_millis()));
            }
            lines.append(&mut side.lines);
            side.lines = lines;
        } else if let Some(d) = side.inspect_delay {
            side.lines
                .push(format!("tcp-request inspect-delay {}ms", d.as_millis()));
        }
    }
    out
}

/// The condition after a rule's arguments, if any; `None` (outer) after an error.
#[allow(clippy::option_option)] // outer: an error was reported; inner: no condition
fn optional_condition(
    table: &Table,
    words: &[String],
    scope: &Scope<'_>,
    place: Place,
    line: usize,
    report: &mut Report,
) -> Option<Option<crate::acl::Condition>> {
    if words.is_empty() {
        return Some(None);
    }
    let cond = table
        .condition(words, scope)
        .and_then(|c| check_place(&c, place, scope.http).map(|()| c));
    match cond {
        Ok(c) => Some(Some(c)),
        Err(e) => {
            report.error(line, e);
            None
        }
    }
}

/// Name → index maps of the backends and frontends `finish` will build, in its order.
pub fn indices(drafts: &[Draft]) -> (HashMap<String, usize>, HashMap<String, usize>) {
    let (mut backends, mut frontends) = (HashMap::new(), HashMap::new());
    let (mut b, mut f) = (0, 0);
    // `finish` makes a stats page of a `mode http` section with `stats enable`, and a
    // proxy of every other one.
    for d in drafts
        .iter()
        .filter(|d| !(d.mode() == crate::config::model::Mode::Http && d.stats.enabled))
    {
        if d.kind.has_backend() {
            backends.entry(d.name.clone()).or_insert(b);
            b += 1;
        }
        if d.kind.has_frontend() {
            frontends.entry(d.name.clone()).or_insert(f);
            f += 1;
        }
    }
    (backends, frontends)
}

/// Which side of a proxy a list of rule lines belongs to (warren's TOML keeps them apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Frontend,
    Backend,
}

/// What [`compile_lines`] gives one side of a proxy.
pub(crate) struct SideRules {
    pub rules: Rules,
    pub http_request: Vec<crate::config::rules::Rule>,
    pub http_response: Vec<crate::config::rules::Rule>,
    /// The `acl` lines (without the keyword) when there are HTTP rules, for `warren convert`.
    pub http_acls: Vec<String>,
}

/// The `acl` lines an HTTP proxy's rules carry for `warren convert`: all of them (without
/// the keyword) when it has HTTP rules, none otherwise.
pub(crate) fn http_acls(c: &Compiled) -> Vec<String> {
    if c.http_request.is_empty() && c.http_response.is_empty() {
        return Vec::new();
    }
    c.acl_lines
        .iter()
        .map(|l| l.strip_prefix("acl ").unwrap_or(l).to_string())
        .collect()
}

/// Compiles rule lines written in HAProxy syntax outside a `haproxy.cfg` (warren's TOML
/// `rules = [...]` and `http` lists): the same words, checks and messages, all at `line`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn compile_lines(
    side: Side,
    name: &str,
    mode: crate::config::model::Mode,
    lines: &[String],
    line: usize,
    names: (&HashMap<String, usize>, &HashMap<String, usize>),
    servers: &[&str],
    userlists: &[crate::config::rules::Userlist],
    report: &mut Report,
) -> SideRules {
    let kind = match side {
        Side::Frontend => Kind::Frontend,
        Side::Backend => Kind::Backend,
    };
    let mut draft = Draft::new(kind, name, line);
    draft.mode = Some(match mode {
        crate::config::model::Mode::Amqp => crate::config::model::Mode::Tcp,
        other => other,
    });
    draft.amqp = Some((mode == crate::config::model::Mode::Amqp, line));
    draft.userlists = std::sync::Arc::new(userlists.to_vec());
    let none = |_: &str| None;
    for text in lines {
        match super::tokenize::words(text, &none) {
            Ok(words) if words.is_empty() => {}
            Ok(words) => {
                const KEYS: [&str; 4] = ["acl", "tcp-request", "use_backend", "use-server"];
                if KEYS.contains(&words[0].as_str()) {
                    keyword(&mut draft, &words, line, report);
                } else if words[0] == "http-request" || words[0] == "http-response" {
                    // From the `http` table's `request`/`response` lists.
                    draft.rule_lines.push((words, line));
                } else {
                    report.error(line, format!("'{}' in 'rules': a rule starts with acl, tcp-request, use_backend or use-server{}", words[0], suggest::hint(&words[0], KEYS)));
                }
            }
            Err(e) => report.error(line, format!("in 'rules': {e}")),
        }
    }
    let scope = Scope {
        backends: names.0,
        frontends: names.1,
        userlists: &[],
        http: false,
    };
    let compiled = compile(&draft, &scope, servers, report);
    let http_acls = http_acls(&compiled);
    SideRules {
        rules: match side {
            Side::Frontend => compiled.frontend,
            Side::Backend => compiled.backend,
        },
        http_request: compiled.http_request,
        http_response: compiled.http_response,
        http_acls,
    }
}
