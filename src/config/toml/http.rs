//! The `http` table of a TOML frontend, backend or `[defaults]`:
//!
//! ```toml
//! http = { connection = "server-close", forwardfor = { header = "X-Forwarded-For", except = "127.0.0.0/8" } }
//! ```
//! `connection` is `"keep-alive"` (the default), `"server-close"` or `"close"` (HAProxy's
//! `option http-keep-alive`, `http-server-close`, `httpclose`); `forwardfor = true` is
//! HAProxy's `option forwardfor` with no arguments.

use serde::Deserialize;
use toml::Spanned;

use crate::config::model::{ConnMode, CookieMode, CookiePersist, ForwardFor, HttpProxy};
use crate::config::rules::{HttpRules, Password, SecretEq, User, Userlist};
use crate::config::suggest;

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct HttpT {
    connection: Option<Spanned<String>>,
    forwardfor: Option<Spanned<ForwardForT>>,
    cookie: Option<Spanned<CookieT>>,
    /// `acl` lines in HAProxy's syntax, without the keyword: `["is_api path_beg /api"]`.
    acl: Option<Spanned<Vec<String>>>,
    /// `http-request` lines without the keyword: `["deny if !is_api"]`.
    request: Option<Spanned<Vec<String>>>,
    /// `http-response` lines without the keyword.
    response: Option<Spanned<Vec<String>>>,
    monitor_uri: Option<Spanned<String>>,
    errorfiles: Option<Spanned<Vec<ErrorfileT>>>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct ErrorfileT {
    status: u16,
    file: String,
}

/// `[[userlist]]`: `name`, `users = [{ name, password | insecure_password, groups }]`.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct UserlistT {
    name: String,
    #[serde(default)]
    users: Vec<UserT>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct UserT {
    name: String,
    password: Option<String>,
    insecure_password: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
}

/// The `[[userlist]]` tables; errors with the offset of the table.
pub(super) fn userlists(list: &[Spanned<UserlistT>]) -> (Vec<Userlist>, Vec<(usize, String)>) {
    let mut out: Vec<Userlist> = Vec::new();
    let mut errors = Vec::new();
    for t in list {
        let at = t.span().start;
        let u = t.get_ref();
        if out.iter().any(|l| l.name == u.name) {
            errors.push((at, format!("a userlist named '{}' already exists", u.name)));
            continue;
        }
        let mut users = Vec::new();
        for user in &u.users {
            let password = match (&user.password, &user.insecure_password) {
                (Some(h), None) => Password::Crypt(h.clone()),
                (None, Some(p)) => Password::Plain(SecretEq(p.clone())),
                _ => {
                    errors.push((at, format!("user '{}' needs exactly one of 'password' (a crypt hash) and 'insecure_password'", user.name)));
                    continue;
                }
            };
            users.push(User {
                name: user.name.clone(),
                password,
                groups: user.groups.clone(),
            });
        }
        out.push(Userlist {
            name: u.name.clone(),
            users,
        });
    }
    (out, errors)
}

/// The `acl`, `request` and `response` lines of a proxy's `http` table (else
/// `[defaults]`'s), as HAProxy lines: the `acl` ones first, then the `http-request` and
/// `http-response` ones, with the offset of the first list. They are compiled with the
/// proxy's `rules` (see `toml_rules`), in one ACL namespace.
pub(in crate::config) fn rule_lines(
    own: Option<&HttpT>,
    defaults: Option<&HttpT>,
) -> (Vec<String>, Vec<String>, Option<usize>) {
    let pick =
        |f: fn(&HttpT) -> Option<&Spanned<Vec<String>>>| own.and_then(f).or(defaults.and_then(f));
    let (mut acls, mut rules, mut at) = (Vec::new(), Vec::new(), None);
    for (key, list) in [
        ("acl", pick(|t| t.acl.as_ref())),
        ("http-request", pick(|t| t.request.as_ref())),
        ("http-response", pick(|t| t.response.as_ref())),
    ] {
        let Some(list) = list else { continue };
        at.get_or_insert(list.span().start);
        let out = if key == "acl" { &mut acls } else { &mut rules };
        out.extend(list.get_ref().iter().map(|l| format!("{key} {l}")));
    }
    (acls, rules, at)
}

/// `monitor_uri` and `errorfiles` of one proxy.
fn rules(
    own: Option<&HttpT>,
    defaults: Option<&HttpT>,
    errors: &mut Vec<(usize, String)>,
) -> HttpRules {
    let mut out = HttpRules::default();
    let pick = |f: fn(&HttpT) -> bool| own.filter(|t| f(t)).or(defaults.filter(|t| f(t)));
    if let Some(m) = pick(|t| t.monitor_uri.is_some()).and_then(|t| t.monitor_uri.as_ref()) {
        if m.get_ref().starts_with('/') {
            out.monitor_uri = Some(m.get_ref().clone());
        } else {
            errors.push((m.span().start, "'monitor_uri' must start with '/'".into()));
        }
    }
    if let Some(list) = pick(|t| t.errorfiles.is_some()).and_then(|t| t.errorfiles.as_ref()) {
        for e in list.get_ref() {
            if !super::super::haproxy::http_rules::ERRORFILE_CODES.contains(&e.status) {
                errors.push((
                    list.span().start,
                    format!("errorfile status {} cannot be replaced", e.status),
                ));
                continue;
            }
            match super::super::haproxy::http_rules::errorfile(&e.file) {
                Ok(bytes) => out.errorfiles.push((e.status, bytes, e.file.clone())),
                Err(m) => errors.push((list.span().start, m)),
            }
        }
    }
    out
}

/// `cookie = { name = "SERVERID", mode = "insert", indirect = true, nocache = true, ... }`.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct CookieT {
    name: String,
    mode: Option<String>,
    indirect: Option<bool>,
    nocache: Option<bool>,
    postonly: Option<bool>,
    preserve: Option<bool>,
    httponly: Option<bool>,
    secure: Option<bool>,
    domains: Option<Vec<String>>,
    maxidle: Option<String>,
    maxlife: Option<String>,
    attrs: Option<Vec<String>>,
}

#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum ForwardForT {
    On(bool),
    Table(ForwardForTable),
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct ForwardForTable {
    header: Option<String>,
    except: Option<String>,
}

/// The HTTP settings of a proxy: its own table's values, else `[defaults]`'s. Errors come
/// back with the byte offset of the value they are about.
pub(super) fn http(
    own: Option<&HttpT>,
    defaults: Option<&HttpT>,
) -> (HttpProxy, Vec<(usize, String)>) {
    let mut errors = Vec::new();
    let mut out = HttpProxy {
        rules: HttpRules::default(),
        ..HttpProxy::default()
    };
    out.rules = rules(own, defaults, &mut errors);
    let pick = |f: fn(&HttpT) -> bool| own.filter(|t| f(t)).or(defaults.filter(|t| f(t)));
    if let Some(c) = pick(|t| t.connection.is_some()).and_then(|t| t.connection.as_ref()) {
        match ConnMode::from_name(c.get_ref()) {
            Some(m) => out.connection = m,
            None => errors.push((
                c.span().start,
                format!(
                    "unknown http connection mode '{}'; use \"keep-alive\", \"server-close\" or \"close\"{}",
                    c.get_ref(),
                    suggest::hint(c.get_ref(), ConnMode::ALL.iter().map(|(n, _)| *n))
                ),
            )),
        }
    }
    if let Some(f) = pick(|t| t.forwardfor.is_some()).and_then(|t| t.forwardfor.as_ref()) {
        match f.get_ref() {
            ForwardForT::On(false) => {}
            ForwardForT::On(true) => {
                out.forwardfor = Some(ForwardFor {
                    header: ForwardFor::DEFAULT_HEADER.into(),
                    except: None,
                })
            }
            ForwardForT::Table(t) => {
                let header = t
                    .header
                    .clone()
                    .unwrap_or_else(|| ForwardFor::DEFAULT_HEADER.into());
                if header.is_empty() || !header.bytes().all(crate::config::http::is_token_byte) {
                    errors.push((
                        f.span().start,
                        format!("'{header}' is not a valid header name"),
                    ));
                }
                let except = match t.except.as_deref().map(ForwardFor::parse_network) {
                    None => None,
                    Some(Ok(n)) => Some(n),
                    Some(Err(e)) => {
                        errors.push((f.span().start, e));
                        None
                    }
                };
                out.forwardfor = Some(ForwardFor { header, except });
            }
        }
    }
    if let Some(c) = pick(|t| t.cookie.is_some()).and_then(|t| t.cookie.as_ref()) {
        let at = c.span().start;
        match cookie(c.get_ref()) {
            Ok(p) => out.cookie = Some(p),
            Err(e) => errors.push((at, e)),
        }
    }
    (out, errors)
}

fn cookie(t: &CookieT) -> Result<CookiePersist, String> {
    if t.name.is_empty() || !t.name.bytes().all(crate::config::http::is_token_byte) {
        return Err(format!("'{}' is not a valid cookie name", t.name));
    }
    let mode = match t.mode.as_deref() {
        None => CookieMode::Rewrite,
        Some(m) => CookieMode::from_name(m).ok_or_else(|| {
            format!(
                "unknown cookie mode '{m}'; use \"insert\", \"rewrite\" or \"prefix\"{}",
                suggest::hint(m, ["insert", "rewrite", "prefix"])
            )
        })?,
    };
    let duration = |v: &Option<String>| -> Result<Option<std::time::Duration>, String> {
        match v {
            None => Ok(None),
            Some(v) => crate::config::duration::parse(v).map(|d| (!d.is_zero()).then_some(d)),
        }
    };
    let c = CookiePersist {
        name: t.name.clone(),
        mode,
        indirect: t.indirect.unwrap_or(false),
        nocache: t.nocache.unwrap_or(false),
        postonly: t.postonly.unwrap_or(false),
        preserve: t.preserve.unwrap_or(false),
        httponly: t.httponly.unwrap_or(false),
        secure: t.secure.unwrap_or(false),
        domains: t.domains.clone().unwrap_or_default(),
        maxidle: duration(&t.maxidle)?,
        maxlife: duration(&t.maxlife)?,
        attrs: t.attrs.clone().unwrap_or_default(),
    };
    if c.preserve && !(c.mode == CookieMode::Insert || c.indirect) {
        return Err("cookie 'preserve' needs mode \"insert\" or 'indirect', as in HAProxy".into());
    }
    if (c.maxidle.is_some() || c.maxlife.is_some()) && c.mode != CookieMode::Insert {
        return Err("cookie 'maxidle' and 'maxlife' need mode \"insert\", as in HAProxy".into());
    }
    Ok(c)
}
