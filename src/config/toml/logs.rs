//! `[global]` and the log targets of global and proxies, into the model.

use toml::Spanned;

use super::raw::*;
use super::Builder;
use crate::config::model::*;
use crate::config::{addr, suggest};

impl Builder<'_, '_> {
    pub(super) fn global(&mut self, g: GlobalT) -> Global {
        let nbthread = g.nbthread.as_ref().map(|n| {
            if *n.get_ref() == 0 {
                self.report
                    .error(self.lines.span(n), "'nbthread' must be at least 1");
            }
            *n.get_ref()
        });
        Global {
            log: g.log.iter().filter_map(|l| self.log_target(l)).collect(),
            pidfile: g.pidfile.map(Into::into),
            node: g.node.clone(),
            description: g.description.clone(),
            maxconn: g.maxconn.unwrap_or(DEFAULT_GLOBAL_MAXCONN),
            user: g.user,
            group: g.group,
            daemon: g.daemon.unwrap_or(false),
            nbthread,
            hard_stop_after: g.hard_stop_after.as_ref().and_then(|d| self.duration(d)),
            ulimit_n: g.ulimit_n,
            spread_checks: match &g.spread_checks {
                Some(p) if *p.get_ref() > 50 => {
                    let line = self.lines.span(p);
                    self.report
                        .error(line, "spread_checks is a percentage from 0 to 50");
                    0
                }
                Some(p) => *p.get_ref(),
                None => 0,
            },
            max_spread_checks: g.max_spread_checks.as_ref().and_then(|d| self.duration(d)),
            cpu_map: g
                .cpu_map
                .iter()
                .filter_map(|m| {
                    let words: Vec<String> =
                        m.get_ref().split_whitespace().map(str::to_string).collect();
                    let line = self.lines.span(m);
                    self.report.check(
                        line,
                        crate::config::cpu_map::parse(&words).map_err(|e| format!("cpu_map: {e}")),
                    )
                })
                .collect(),
            chroot: g.chroot.as_ref().and_then(|c| {
                if std::path::Path::new(c.get_ref()).is_dir() {
                    Some(c.get_ref().into())
                } else {
                    let line = self.lines.span(c);
                    self.report
                        .error(line, format!("chroot '{}': no such directory", c.get_ref()));
                    None
                }
            }),
            stats_socket: g.stats_socket.as_ref().map(|s| StatsSocket {
                path: s.path.clone().into(),
                mode: match &s.mode {
                    None => 0o600,
                    Some(m) => match u32::from_str_radix(m.get_ref(), 8) {
                        Ok(mode) if mode <= 0o777 => mode,
                        _ => {
                            let line = self.lines.span(m);
                            self.report.error(line, format!("stats_socket mode '{}' is not an octal file mode such as \"600\"", m.get_ref()));
                            0o600
                        }
                    },
                },
                user: s.user.clone(),
                group: s.group.clone(),
            }),
            bufsize: g.bufsize.as_ref().and_then(|b| {
                if *b.get_ref() < MIN_BUFSIZE {
                    self.report.error(
                        self.lines.span(b),
                        format!("'bufsize' must be at least {MIN_BUFSIZE} bytes"),
                    );
                    return None;
                }
                Some(*b.get_ref())
            }),
        }
    }

    pub(super) fn log_target(&mut self, spanned: &Spanned<LogT>) -> Option<LogTarget> {
        let line = self.lines.span(spanned);
        let l = spanned.get_ref();
        let destination = self
            .report
            .check(line, addr::parse_log_destination(&l.address))?;
        let facility_name = l.facility.as_deref().unwrap_or("local0");
        let Some(facility) = Facility::from_name(facility_name) else {
            self.report.error(
                line,
                format!(
                    "unknown syslog facility '{facility_name}'{}",
                    suggest::hint(facility_name, Facility::NAMES)
                ),
            );
            return None;
        };
        let level_name = l.level.as_deref().unwrap_or("debug");
        let Some(max_level) = Level::from_name(level_name) else {
            self.report.error(
                line,
                format!(
                    "unknown log level '{level_name}'{}",
                    suggest::hint(level_name, Level::ALL.iter().map(|(n, _)| *n))
                ),
            );
            return None;
        };
        let format_name = l.format.as_deref().unwrap_or("rfc3164");
        let Some(format) = LogFormat::from_name(format_name) else {
            self.report.error(
                line,
                format!(
                    "unknown log format '{format_name}'{}",
                    suggest::hint(format_name, LogFormat::ALL.iter().map(|(n, _)| *n))
                ),
            );
            return None;
        };
        Some(LogTarget {
            destination,
            format,
            facility,
            max_level,
        })
    }

    pub(super) fn proxy_log(
        &mut self,
        own: Option<&ProxyLogT>,
        defaults: &ProxyLogT,
        global: &Global,
    ) -> ProxyLog {
        let empty = ProxyLogT::default();
        let own = own.unwrap_or(&empty);
        let mut targets = Vec::new();
        if own.global.or(defaults.global).unwrap_or(false) {
            targets.extend(global.log.iter().cloned());
        }
        if let Some(list) = own.targets.as_ref().or(defaults.targets.as_ref()) {
            targets.extend(list.iter().filter_map(|l| self.log_target(l)));
        }
        ProxyLog {
            targets,
            tcplog: own.tcplog.or(defaults.tcplog).unwrap_or(false)
                || own.httplog.or(defaults.httplog).unwrap_or(false),
            httplog: own.httplog.or(defaults.httplog).unwrap_or(false),
            dontlognull: own.dontlognull.or(defaults.dontlognull).unwrap_or(false),
            health_checks: own
                .health_checks
                .or(defaults.health_checks)
                .unwrap_or(false),
            separate_errors: own
                .separate_errors
                .or(defaults.separate_errors)
                .unwrap_or(false),
            logasap: own.logasap.or(defaults.logasap).unwrap_or(false),
            dontlog_normal: own
                .dontlog_normal
                .or(defaults.dontlog_normal)
                .unwrap_or(false),
        }
    }
}
