//! The DNS parts of `warren convert`: `[[resolvers]]` tables, and the name, `init_addr`,
//! `resolvers`, `resolve_prefer` and `template` keys of a server. A `server-template` is
//! printed once (its first slot), as it was written, not as the servers it made.

use std::fmt::Write;

use super::duration;
use super::model::*;

fn q(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

fn d(value: std::time::Duration) -> String {
    q(&duration::format(value))
}

pub fn resolvers(out: &mut String, config: &Config) {
    for r in &config.resolvers {
        out.push_str("\n[[resolvers]]\n");
        let _ = writeln!(out, "name = {}", q(&r.name));
        let list: Vec<String> = r
            .nameservers
            .iter()
            .map(|n| {
                format!(
                    "{{ name = {}, address = {} }}",
                    q(&n.name),
                    q(&n.addr.to_string())
                )
            })
            .collect();
        let _ = writeln!(out, "nameservers = [{}]", list.join(", "));
        let _ = writeln!(out, "parse_resolv_conf = {}", r.parse_resolv_conf);
        let _ = writeln!(out, "resolve_retries = {}", r.resolve_retries);
        let _ = writeln!(out, "timeout_resolve = {}", d(r.timeout_resolve));
        let _ = writeln!(out, "timeout_retry = {}", d(r.timeout_retry));
        let holds: Vec<String> = HOLD_KEYS
            .iter()
            .filter_map(|k| r.hold.get(k).map(|v| format!("{k} = {}", d(v))))
            .collect();
        let _ = writeln!(out, "hold = {{ {} }}", holds.join(", "));
        let _ = writeln!(out, "accepted_payload_size = {}", r.accepted_payload_size);
    }
}

/// A template's servers after the first are not printed: the first stands for the line.
pub fn skip(s: &Server) -> bool {
    s.dns
        .as_ref()
        .and_then(|d| d.template.as_ref())
        .is_some_and(|t| s.name != format!("{}{}", t.prefix, t.first))
}

/// The server's name as written: a template's prefix.
pub fn name(s: &Server) -> &str {
    match s.dns.as_ref().and_then(|d| d.template.as_ref()) {
        Some(t) => &t.prefix,
        None => &s.name,
    }
}

/// The address as written: the name for a server that has one.
pub fn address(s: &Server) -> String {
    match &s.dns {
        Some(dns) if s.addr.port() == 0 => dns.fqdn.clone(),
        Some(dns) => format!("{}:{}", dns.fqdn, s.addr.port()),
        None => s.addr.to_string(),
    }
}

pub fn server(out: &mut String, s: &Server) {
    let Some(dns) = &s.dns else { return };
    if !dns.init_addr.is_empty() {
        let _ = writeln!(
            out,
            "init_addr = {}",
            q(&InitAddr::list_text(&dns.init_addr))
        );
    }
    if let Some(r) = &dns.resolvers {
        let _ = writeln!(out, "resolvers = {}", q(r));
    }
    let _ = writeln!(out, "resolve_prefer = {}", q(dns.prefer.name()));
    if let Some(t) = &dns.template {
        if t.first == 1 {
            let _ = writeln!(out, "template = {}", t.last);
        } else {
            let _ = writeln!(out, "template = {}", q(&t.range_text()));
        }
    }
}
