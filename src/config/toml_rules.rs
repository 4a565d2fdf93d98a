//! warren's TOML `rules = [...]` of a frontend or backend, with the `acl`, `request` and
//! `response` lists of its `http` table: the same lines as in `haproxy.cfg` (`acl`,
//! `tcp-request`, `use_backend`, `use-server`, `http-request`, `http-response`), compiled
//! by the same code in one ACL namespace, so both syntaxes mean exactly the same thing and
//! `warren convert` can print any rule back.
//!
//! ```toml
//! [[frontend]]
//! rules = ["acl internal src 10.0.0.0/8", "tcp-request connection reject unless internal",
//!          "use_backend fallback if { nbsrv(main) eq 0 }"]
//! ```

use std::collections::HashMap;

use super::haproxy::{compile_lines, Side};
use super::model::Config;
use super::report::Report;

/// Rule lines and the line of their `rules` key, per frontend and per backend (index for
/// index with the config's lists).
pub(crate) type Lines = Option<(Vec<String>, usize)>;

pub(crate) fn apply(
    config: &mut Config,
    frontends: &[Lines],
    backends: &[Lines],
    userlists: &[super::rules::Userlist],
    report: &mut Report,
) {
    let index = |names: Vec<&str>| -> HashMap<String, usize> {
        let mut map = HashMap::new();
        for (i, n) in names.into_iter().enumerate() {
            map.entry(n.to_string()).or_insert(i);
        }
        map
    };
    let backend_names = index(config.backends.iter().map(|b| b.name.as_str()).collect());
    let frontend_names = index(config.frontends.iter().map(|f| f.name.as_str()).collect());
    for (b, lines) in config.backends.iter_mut().zip(backends) {
        let Some((lines, line)) = lines else { continue };
        let servers: Vec<&str> = b.servers.iter().map(|s| s.name.as_str()).collect();
        let compiled = compile_lines(
            Side::Backend,
            &b.name,
            b.mode,
            lines,
            *line,
            (&backend_names, &frontend_names),
            &servers,
            userlists,
            report,
        );
        b.rules = compiled.rules;
        b.http.rules.request = compiled.http_request;
        b.http.rules.response = compiled.http_response;
        b.http.rules.acls = compiled.http_acls;
    }
    for (f, lines) in config.frontends.iter_mut().zip(frontends) {
        let Some((lines, line)) = lines else { continue };
        let compiled = compile_lines(
            Side::Frontend,
            &f.name,
            f.mode,
            lines,
            *line,
            (&backend_names, &frontend_names),
            &[],
            userlists,
            report,
        );
        f.rules = compiled.rules;
        f.http.rules.request = compiled.http_request;
        f.http.rules.response = compiled.http_response;
        f.http.rules.acls = compiled.http_acls;
    }
}
