//! The whole file into the model: sections in order, `[defaults]` inherited, references
//! resolved, each line remembered for the validator's messages.

use super::raw::*;
use super::Builder;
use toml::Spanned;

/// HAProxy's default `stats realm`, also warren's.
const DEFAULT_REALM: &str = "HAProxy Statistics";
use crate::config::model::*;
use crate::config::suggest;
use crate::config::validate::{BackendLines, Origins, ProxyLines};

/// A frontend's rate limits, key by key over `[defaults]`; 0 is off.
fn rate_limit(own: Option<&RateLimitT>, d: Option<&RateLimitT>) -> RateLimit {
    let pick = |f: fn(&RateLimitT) -> Option<u32>| {
        own.and_then(f).or_else(|| d.and_then(f)).filter(|n| *n > 0)
    };
    RateLimit {
        sessions: pick(|r| r.sessions),
        per_source: pick(|r| r.sessions_per_source),
    }
}

impl Builder<'_, '_> {
    pub(super) fn build(&mut self, file: File) -> (Config, Origins) {
        let global = self.global(file.global);
        let (userlists, errors) = super::http::userlists(&file.userlist);
        for (offset, message) in errors {
            self.report.error(self.lines.of(offset), message);
        }
        self.userlists = userlists;
        let mut config = Config {
            global,
            frontends: Vec::new(),
            backends: Vec::new(),
            stats: Vec::new(),
            resolvers: self.resolvers(&file.resolvers),
        };
        let mut origins = Origins::default();
        let d = file.defaults;

        for spanned in &file.backend {
            let line = self.lines.span(spanned);
            let b = spanned.get_ref();
            let mut servers = Vec::new();
            let mut server_lines = Vec::new();
            for s in &b.server {
                let sline = self.lines.span(s);
                for server in self.servers(s.get_ref()) {
                    servers.push(server);
                    server_lines.push(sline);
                }
            }
            let check_value = b.check.as_ref().or(d.check.as_ref());
            let check = check_value.map(|c| self.check(c)).unwrap_or(CheckKind::Tcp);
            let rebalance = b.rebalance.as_ref().map(|r| self.rebalance(r.get_ref()));
            config.backends.push(Backend {
                name: b.name.clone(),
                mode: self.mode(b.mode.as_ref().or(d.mode.as_ref())),
                balance: self.balance(b.balance.as_ref().or(d.balance.as_ref())),
                hash_type: match b.hash_type.as_ref() {
                    None => Default::default(),
                    Some(h) => match h.get_ref().as_str() {
                        "consistent" => crate::config::model::HashType::Consistent,
                        "map-based" => crate::config::model::HashType::MapBased,
                        other => {
                            let line = self.lines.span(h);
                            self.report.error(
                                line,
                                format!("hash_type '{other}': use \"consistent\" or \"map-based\""),
                            );
                            Default::default()
                        }
                    },
                },
                servers,
                retries: b.retries.or(d.retries).unwrap_or(3),
                redispatch: b.redispatch.or(d.redispatch).unwrap_or(false),
                timeouts: self.timeouts(&b.timeout, &d.timeout),
                check,
                keepalive: self.keepalive(b.keepalive.as_ref(), &d.keepalive),
                rebalance: rebalance.flatten(),
                rules: Default::default(),
                stick: b.stick.as_ref().and_then(|s| {
                    let st = s.get_ref();
                    let expire = self.duration(&st.expire)?;
                    if st.size == 0 || expire.is_zero() {
                        let line = self.lines.span(s);
                        self.report
                            .error(line, "stick: size and expire must be greater than 0");
                        return None;
                    }
                    Some(crate::config::model::Stick {
                        size: st.size,
                        expire,
                    })
                }),
                persist: b.persist.unwrap_or(false),
                log: self.proxy_log(b.log.as_ref(), &d.log, &config.global),
                http: self.http(b.http.as_ref(), d.http.as_ref()),
            });
            origins.backends.push(BackendLines {
                line,
                servers: server_lines,
                check: check_value
                    .filter(|c| c.get_ref().as_str() != Some("tcp"))
                    .map(|c| self.lines.span(c)),
                rebalance: b.rebalance.as_ref().map(|r| self.lines.span(r)),
            });
        }

        for spanned in &file.frontend {
            let line = self.lines.span(spanned);
            let f = spanned.get_ref();
            let (mut binds, mut bind_lines) = self.binds(&f.bind);
            if let Some(tls) = &f.tls {
                let (tls_binds, tls_lines) = self.tls_binds(tls);
                binds.extend(tls_binds);
                bind_lines.extend(tls_lines);
            }
            for b in &mut binds {
                b.accept_proxy = f.accept_proxy.unwrap_or(false);
                b.v4v6 = f.v4v6.unwrap_or(false) && b.addr.is_ipv6();
            }
            let default_backend = f.backend.as_ref().and_then(|name| {
                let found = config
                    .backends
                    .iter()
                    .position(|b| b.name == *name.get_ref());
                if found.is_none() {
                    let hint = suggest::hint(
                        name.get_ref(),
                        config.backends.iter().map(|b| b.name.as_str()),
                    );
                    self.report.error(
                        self.lines.span(name),
                        format!(
                            "frontend '{}' cannot use unknown backend '{}'{hint}",
                            f.name,
                            name.get_ref()
                        ),
                    );
                }
                found
            });
            config.frontends.push(Frontend {
                name: f.name.clone(),
                binds,
                mode: self.mode(f.mode.as_ref().or(d.mode.as_ref())),
                maxconn: f.maxconn.or(d.maxconn).unwrap_or(config.global.maxconn),
                default_backend,
                timeouts: self.timeouts(&f.timeout, &d.timeout),
                log: self.proxy_log(f.log.as_ref(), &d.log, &config.global),
                keepalive: self.keepalive(f.keepalive.as_ref(), &d.keepalive),
                initial_frame_max: self.initial_frame_max(
                    f.initial_frame_max
                        .as_ref()
                        .or(d.initial_frame_max.as_ref()),
                ),
                rate_limit: rate_limit(f.rate_limit.as_ref(), d.rate_limit.as_ref()),
                terminate: self.terminate(f.terminate.as_ref(), d.terminate.as_ref()),
                http: self.http(f.http.as_ref(), d.http.as_ref()),
                rules: Default::default(),
            });
            let handshake = f
                .timeout
                .handshake
                .as_ref()
                .or(d.timeout.handshake.as_ref());
            let frame_max = f
                .initial_frame_max
                .as_ref()
                .or(d.initial_frame_max.as_ref());
            origins.frontends.push(ProxyLines {
                line,
                binds: bind_lines,
                handshake: handshake.map(|h| self.lines.span(h)),
                initial_frame_max: frame_max.map(|v| self.lines.span(v)),
            });
        }

        // `rules` and the `http` table's acl/request/response lines, compiled together:
        // the http table's ACLs first, then `rules`, then the HTTP rules.
        let defaults_http = d.http.as_ref();
        let lines_of = |rules: &Option<Spanned<Vec<String>>>, http: Option<&super::http::HttpT>| {
            let (acls, http_rules, at) = super::http::rule_lines(http, defaults_http);
            let mut lines = acls;
            lines.extend(rules.iter().flat_map(|r| r.get_ref().iter().cloned()));
            lines.extend(http_rules);
            let line = match (rules, at) {
                (Some(r), _) => self.lines.span(r),
                (None, Some(at)) => self.lines.of(at),
                (None, None) => return None,
            };
            Some((lines, line))
        };
        let frontend_rules: Vec<_> = file
            .frontend
            .iter()
            .map(|f| lines_of(&f.get_ref().rules, f.get_ref().http.as_ref()))
            .collect();
        let backend_rules: Vec<_> = file
            .backend
            .iter()
            .map(|b| lines_of(&b.get_ref().rules, b.get_ref().http.as_ref()))
            .collect();
        crate::config::toml_rules::apply(
            &mut config,
            &frontend_rules,
            &backend_rules,
            &self.userlists,
            self.report,
        );

        for spanned in &file.stats {
            let line = self.lines.span(spanned);
            let s = spanned.get_ref();
            let (mut binds, mut bind_lines) = self.binds(&s.bind);
            if let Some(tls) = &s.tls {
                let (tls_binds, tls_lines) = self.tls_binds(tls);
                binds.extend(tls_binds);
                bind_lines.extend(tls_lines);
            }
            config.stats.push(StatsPage {
                name: s.name.clone(),
                binds,
                uri: s
                    .uri
                    .clone()
                    .unwrap_or_else(|| DEFAULT_STATS_URI.to_string()),
                refresh: s
                    .refresh
                    .as_ref()
                    .and_then(|r| self.duration(r))
                    .filter(|d| !d.is_zero()),
                realm: s.realm.clone().unwrap_or_else(|| DEFAULT_REALM.to_string()),
                users: s
                    .auth
                    .iter()
                    .map(|a| StatsUser {
                        user: a.user.clone(),
                        password: Secret(a.password.clone()),
                    })
                    .collect(),
                hide_version: s.hide_version.unwrap_or(false),
                admin: s.admin.unwrap_or(false),
                node: s.show_node.clone(),
                description: s.show_desc.clone(),
            });
            if !s.uri.as_deref().unwrap_or("/").starts_with('/') {
                self.report.error(
                    line,
                    format!("stats page '{}': 'uri' must start with '/'", s.name),
                );
            }
            origins.stats.push(ProxyLines {
                line,
                binds: bind_lines,
                ..ProxyLines::default()
            });
        }
        self.check_resolvers(&config, &origins);
        (config, origins)
    }
}
