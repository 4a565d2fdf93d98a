//! Binds (plain and TLS) and server lines, into the model.

use std::path::PathBuf;

use toml::Spanned;

use super::raw::*;
use super::Builder;
use crate::config::model::*;
use crate::config::{addr, BindOptions, ServerOptions};

impl Builder<'_, '_> {
    pub(super) fn binds(&mut self, list: &[Spanned<String>]) -> (Vec<Bind>, Vec<usize>) {
        let mut binds = Vec::new();
        let mut lines = Vec::new();
        for text in list {
            let line = self.lines.span(text);
            if let Some(addrs) = self.report.check(line, addr::parse_bind(text.get_ref())) {
                for a in addrs {
                    binds.push(Bind {
                        addr: a,
                        accept_proxy: false,
                        v4v6: false,
                        tls: None,
                    });
                    lines.push(line);
                }
            }
        }
        (binds, lines)
    }

    /// The TLS binds of a frontend, with the certificates read.
    pub(super) fn tls_binds(&mut self, t: &Spanned<BindTlsT>) -> (Vec<Bind>, Vec<usize>) {
        let line = self.lines.span(t);
        let t = t.get_ref();
        let mut options = BindOptions {
            ssl: true,
            crt: t.crt.iter().map(PathBuf::from).collect(),
            ca_file: t.ca_file.as_ref().map(PathBuf::from),
            ..BindOptions::default()
        };
        if let Some(v) = &t.verify {
            options.verify = ClientVerify::from_name(v);
            if options.verify.is_none() {
                self.report.error(
                    line,
                    format!(
                        "tls.verify must be \"none\", \"optional\" or \"required\", not \"{v}\""
                    ),
                );
            }
        }
        options.min_version = self.min_version(line, t.min_version.as_deref()).flatten();
        let tls = match options.build() {
            Ok(tls) => tls,
            Err(message) => {
                self.report.error(line, format!("tls: {message}"));
                return (Vec::new(), Vec::new());
            }
        };
        let (mut binds, lines) = self.binds(&t.bind);
        for b in &mut binds {
            b.tls = tls.clone();
        }
        (binds, lines)
    }

    /// A `tls.min_version` as written: `Some(None)` when absent, `None` when wrong (reported).
    pub(super) fn min_version(
        &mut self,
        line: usize,
        v: Option<&str>,
    ) -> Option<Option<MinVersion>> {
        let Some(v) = v else { return Some(None) };
        let parsed = MinVersion::from_name(v);
        if parsed.is_none() {
            self.report.error(
                line,
                format!("tls.min_version must be \"1.2\" or \"1.3\", not \"{v}\""),
            );
        }
        parsed.map(Some)
    }

    pub(super) fn server_tls(&mut self, s: &ServerT) -> Option<ServerTls> {
        let t = s.tls.as_ref()?;
        let line = self.lines.span(t);
        let t = t.get_ref();
        let sessions = t.sessions.unwrap_or(true);
        let min_version = self.min_version(line, t.min_version.as_deref())?;
        let options = ServerOptions {
            sessions,
            checks: t.checks.unwrap_or(sessions && s.check_port.is_none()),
            verify: t.verify,
            ca_file: t.ca_file.as_ref().map(PathBuf::from),
            crt: t.crt.as_ref().map(PathBuf::from),
            name: t.name.clone(),
            min_version,
        };
        match options.build() {
            Ok(tls) => tls,
            Err(message) => {
                self.report
                    .error(line, format!("server '{}': {message}", s.name));
                None
            }
        }
    }

    /// A server line without its address, which [`Builder::servers`] fills in (a
    /// template makes several servers of one line).
    pub(super) fn server(&mut self, s: &ServerT) -> Option<Server> {
        let tls = self.server_tls(s);
        let inter = match &s.inter {
            Some(v) => self.duration(v)?,
            None => server_defaults::INTER,
        };
        let mut optional = |v: &Option<Spanned<String>>| match v {
            Some(v) => self.duration(v).map(Some),
            None => Some(None),
        };
        let fastinter = optional(&s.fastinter)?.unwrap_or(inter);
        let downinter = optional(&s.downinter)?.unwrap_or(inter);
        let slowstart = optional(&s.slowstart)?.filter(|d| !d.is_zero());
        Some(Server {
            name: s.name.clone(),
            addr: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
            check_port: s.check_port.as_ref().map(|p| {
                if *p.get_ref() == 0 {
                    self.report.error(
                        self.lines.span(p),
                        "check_port must be a port number from 1 to 65535",
                    );
                }
                *p.get_ref()
            }),
            check: s.check.unwrap_or(false),
            inter,
            fastinter,
            downinter,
            rise: s.rise.unwrap_or(server_defaults::RISE),
            fall: s.fall.unwrap_or(server_defaults::FALL),
            weight: s.weight.unwrap_or(server_defaults::WEIGHT),
            maxconn: s.maxconn.unwrap_or(0),
            maxqueue: s.maxqueue.unwrap_or(0),
            backup: s.backup.unwrap_or(false),
            disabled: s.disabled.unwrap_or(false),
            slowstart,
            shutdown_on_down: s.shutdown_sessions_on_down.unwrap_or(false),
            shutdown_backup_on_up: s.shutdown_backup_sessions_on_up.unwrap_or(false),
            send_proxy: match s.send_proxy.as_ref() {
                None => None,
                Some(v) => match v.get_ref().as_str() {
                    "v1" => Some(ProxyProtocol::V1),
                    "v2" => Some(ProxyProtocol::V2),
                    other => {
                        self.report.error(
                            self.lines.span(v),
                            format!("send_proxy must be \"v1\" or \"v2\", not \"{other}\""),
                        );
                        None
                    }
                },
            },
            check_send_proxy: s.check_send_proxy.unwrap_or(false),
            cookie: s.cookie.clone(),
            observe: self.observe(s),
            id: s.id.as_ref().map(|id| {
                if *id.get_ref() == 0 {
                    self.report
                        .error(self.lines.span(id), "id must be a positive number");
                }
                *id.get_ref()
            }),
            tls,
            dns: None,
        })
    }

    /// `observe`, `error_limit` and `on_error` (the last two mean nothing without the first,
    /// as in HAProxy).
    fn observe(&mut self, s: &ServerT) -> Option<Observe> {
        if let Some(limit) = &s.error_limit {
            if *limit.get_ref() == 0 {
                self.report
                    .error(self.lines.span(limit), "error_limit must be at least 1");
            }
        }
        let on_error = match &s.on_error {
            None => OnError::default(),
            Some(v) => match OnError::parse(v.get_ref()) {
                Some(action) => action,
                None => {
                    self.report.error(
                        self.lines.span(v),
                        format!(
                            "on_error must be one of {}, not \"{}\"",
                            OnError::NAMES.join(", "),
                            v.get_ref()
                        ),
                    );
                    OnError::default()
                }
            },
        };
        let v = s.observe.as_ref()?;
        let layer = match v.get_ref().as_str() {
            "layer4" => ObserveLayer::Layer4,
            "layer7" => ObserveLayer::Layer7,
            other => {
                self.report.error(
                    self.lines.span(v),
                    format!("observe must be \"layer4\" or \"layer7\", not \"{other}\""),
                );
                return None;
            }
        };
        Some(Observe {
            layer,
            error_limit: s
                .error_limit
                .as_ref()
                .map_or(DEFAULT_ERROR_LIMIT, |l| *l.get_ref()),
            on_error,
        })
    }
}
