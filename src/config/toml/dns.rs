//! `[[resolvers]]` tables and the DNS keys of a server (`init_addr`, `resolvers`,
//! `resolve_prefer`, `template`), into the model:
//!
//! ```toml
//! [[resolvers]]
//! name = "k8s"
//! nameservers = ["10.96.0.10:53"]   # or [{ name = "dns1", address = "10.96.0.10:53" }]
//! hold = { nx = "30s", obsolete = "10s" }
//!
//! [[backend.server]]
//! name = "rabbit"                # with template: rabbit1 .. rabbit3
//! address = "rabbitmq.default.svc.cluster.local:5672"
//! template = 3                   # or "1-3"
//! resolvers = "k8s"
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::Deserialize;
use toml::Spanned;

use super::raw::ServerT;
use super::Builder;
use crate::config::addr;
use crate::config::model::*;
use crate::config::suggest;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ResolversT {
    pub(super) name: String,
    /// `"10.96.0.10:53"` or `{ name = "dns1", address = "10.96.0.10:53" }`.
    #[serde(default)]
    pub(super) nameservers: Vec<Spanned<NameserverT>>,
    pub(super) parse_resolv_conf: Option<bool>,
    pub(super) resolve_retries: Option<Spanned<u32>>,
    pub(super) timeout_resolve: Option<Spanned<String>>,
    pub(super) timeout_retry: Option<Spanned<String>>,
    /// `{ valid = "10s", nx = "30s", timeout, refused, other, obsolete }`.
    pub(super) hold: Option<Spanned<BTreeMap<String, String>>>,
    pub(super) accepted_payload_size: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum NameserverT {
    Address(String),
    Named { name: String, address: String },
}

/// `template = 3` or `template = "5-7"`.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum SlotsT {
    Count(u32),
    Range(String),
}

impl Builder<'_, '_> {
    pub(super) fn resolvers(&mut self, list: &[Spanned<ResolversT>]) -> Vec<Resolvers> {
        let mut all: Vec<Resolvers> = Vec::new();
        for spanned in list {
            let line = self.lines.span(spanned);
            let t = spanned.get_ref();
            if all.iter().any(|r| r.name == t.name) {
                self.report.error(
                    line,
                    format!("a resolvers table named '{}' already exists", t.name),
                );
                continue;
            }
            let mut r = Resolvers::new(&t.name);
            for (i, ns) in t.nameservers.iter().enumerate() {
                let (name, address) = match ns.get_ref() {
                    NameserverT::Address(a) => (format!("ns{}", i + 1), a),
                    NameserverT::Named { name, address } => (name.clone(), address),
                };
                match address.parse::<SocketAddr>() {
                    Ok(addr) => r.nameservers.push(Nameserver { name, addr }),
                    Err(_) => self.report.error(
                        self.lines.span(ns),
                        format!(
                            "nameservers: '{address}' is not an IP address and port like \"10.96.0.10:53\""
                        ),
                    ),
                }
            }
            r.parse_resolv_conf = t.parse_resolv_conf.unwrap_or(false);
            if let Some(n) = &t.resolve_retries {
                if *n.get_ref() == 0 {
                    let line = self.lines.span(n);
                    self.report
                        .error(line, "resolve_retries must be at least 1");
                }
                r.resolve_retries = *n.get_ref();
            }
            for (value, slot) in [
                (&t.timeout_resolve, &mut r.timeout_resolve),
                (&t.timeout_retry, &mut r.timeout_retry),
            ] {
                if let Some(v) = value {
                    match self.duration(v) {
                        Some(d) if !d.is_zero() => *slot = d,
                        Some(_) => {
                            let line = self.lines.span(v);
                            self.report
                                .error(line, "a resolvers timeout must be above 0");
                        }
                        None => {}
                    }
                }
            }
            if let Some(hold) = &t.hold {
                let hline = self.lines.span(hold);
                for (key, value) in hold.get_ref() {
                    let Some(d) = self
                        .report
                        .check(hline, crate::config::duration::parse(value))
                    else {
                        continue;
                    };
                    if !r.hold.set(key, d) {
                        self.report.error(
                            hline,
                            format!(
                                "hold.{key} is not a hold period{}",
                                suggest::hint(key, HOLD_KEYS)
                            ),
                        );
                    }
                }
            }
            if let Some(n) = &t.accepted_payload_size {
                match u16::try_from(*n.get_ref()).ok().filter(|n| *n >= 512) {
                    Some(size) => r.accepted_payload_size = size,
                    None => {
                        let line = self.lines.span(n);
                        self.report.error(
                            line,
                            format!(
                                "accepted_payload_size must be from 512 to 65535, not {}",
                                n.get_ref()
                            ),
                        );
                    }
                }
            }
            if r.nameservers.is_empty() && !r.parse_resolv_conf {
                self.report.warn(line, format!("resolvers '{}' has no nameservers configured: the names it should follow keep their start-up address", r.name));
            }
            all.push(r);
        }
        all
    }

    /// The server's DNS keys, before its name is looked at; `None` if one was wrong
    /// (reported).
    fn server_dns(&mut self, s: &ServerT) -> Option<ServerDns> {
        let mut ok = true;
        let mut dns = ServerDns {
            fqdn: String::new(),
            init_addr: Vec::new(),
            resolved_by: None,
            resolvers: s.resolvers.as_ref().map(|r| r.get_ref().clone()),
            prefer: Family::default(),
            template: None,
        };
        if let Some(v) = &s.init_addr {
            let line = self.lines.span(v);
            match self.report.check(line, InitAddr::parse_list(v.get_ref())) {
                Some(list) => dns.init_addr = list,
                None => ok = false,
            }
        }
        if let Some(v) = &s.resolve_prefer {
            let line = self.lines.span(v);
            match self.report.check(line, Family::parse(v.get_ref())) {
                Some(f) => dns.prefer = f,
                None => ok = false,
            }
        }
        if let Some(v) = &s.template {
            let line = self.lines.span(v);
            let text = match v.get_ref() {
                SlotsT::Count(n) => n.to_string(),
                SlotsT::Range(r) => r.clone(),
            };
            match self.report.check(line, Template::parse(&s.name, &text)) {
                Some(t) => dns.template = Some(t),
                None => ok = false,
            }
        }
        ok.then_some(dns)
    }

    /// The servers of one `[[backend.server]]` table: one, or a template's slots; each
    /// with its name resolved through `init_addr`.
    pub(super) fn servers(&mut self, s: &ServerT) -> Vec<Server> {
        let Some(dns) = self.server_dns(s) else {
            return Vec::new();
        };
        let Some(base) = self.server(s) else {
            return Vec::new();
        };
        let line = self.lines.span(&s.address);
        let slots: Vec<(String, Option<usize>)> = match &dns.template {
            Some(t) => t
                .slots()
                .enumerate()
                .map(|(i, n)| (format!("{}{n}", t.prefix), Some(i)))
                .collect(),
            None => vec![(s.name.clone(), None)],
        };
        let mut out = Vec::new();
        for (name, slot) in slots {
            let found = addr::server_with_dns(s.address.get_ref(), dns.clone(), slot);
            let Some((addr, dns)) = self.report.check(line, found) else {
                return Vec::new();
            };
            out.push(Server {
                name,
                addr,
                dns,
                ..base.clone()
            });
        }
        out
    }

    /// Each server's `resolvers` must name a `[[resolvers]]` table.
    pub(super) fn check_resolvers(
        &mut self,
        config: &Config,
        origins: &crate::config::validate::Origins,
    ) {
        let names: Vec<&str> = config.resolvers.iter().map(|r| r.name.as_str()).collect();
        for (b, lines) in config.backends.iter().zip(&origins.backends) {
            for (s, line) in b.servers.iter().zip(&lines.servers) {
                let Some(wanted) = s.dns.as_ref().and_then(|d| d.resolvers.as_deref()) else {
                    continue;
                };
                if !names.contains(&wanted) {
                    self.report.error(
                        *line,
                        format!(
                            "server '{}': resolvers \"{wanted}\" names no [[resolvers]] table{}",
                            s.name,
                            suggest::hint(wanted, names.iter().copied())
                        ),
                    );
                }
            }
        }
    }
}
