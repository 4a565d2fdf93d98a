//! The values proxies share (mode, balance, timeouts, keep-alive, rebalance, check), into
//! the model, each checked with its line.

use std::time::Duration;

use toml::Spanned;

use super::raw::*;
use super::{check, Builder};
use crate::config::model::*;
use crate::config::{duration, suggest};

impl Builder<'_, '_> {
    pub(super) fn mode(&mut self, mode: Option<&Spanned<String>>) -> Mode {
        // Warren's own format defaults to AMQP mode (DESIGN: the mode a RabbitMQ operator
        // wants; it costs within 5% of tcp mode, bench/RESULTS.md); haproxy.cfg keeps `mode tcp`.
        let Some(spanned) = mode else {
            return Mode::Amqp;
        };
        let line = self.lines.span(spanned);
        match spanned.get_ref().as_str() {
            "tcp" => Mode::Tcp,
            "amqp" => Mode::Amqp,
            "amqp-terminate" => Mode::AmqpTerminate,
            "http" => Mode::Http,
            other => {
                self.report.error(
                    line,
                    format!(
                        "unknown mode '{other}'; use \"amqp\", \"amqp-terminate\", \"tcp\" or \"http\"{}",
                        suggest::hint(other, ["tcp", "amqp", "amqp-terminate", "http"])
                    ),
                );
                Mode::Tcp
            }
        }
    }

    pub(super) fn balance(&mut self, balance: Option<&Spanned<String>>) -> Algorithm {
        let Some(spanned) = balance else {
            return Algorithm::RoundRobin;
        };
        let name = spanned.get_ref().as_str();
        let name = if name == "random(2)" { "random" } else { name };
        Algorithm::from_name(name).unwrap_or_else(|| {
            self.report.error(
                self.lines.span(spanned),
                format!(
                    "unknown balance algorithm '{name}'{}",
                    suggest::hint(name, Algorithm::ALL.iter().map(|(n, _)| *n))
                ),
            );
            Algorithm::RoundRobin
        })
    }

    pub(super) fn duration(&mut self, value: &Spanned<String>) -> Option<Duration> {
        let line = self.lines.span(value);
        self.report.check(line, duration::parse(value.get_ref()))
    }

    /// A timeout of the proxy, else of `[defaults]`; "0" means none, as in HAProxy.
    pub(super) fn timeout(
        &mut self,
        own: &Option<Spanned<String>>,
        default: &Option<Spanned<String>>,
    ) -> Option<Duration> {
        let value = own.as_ref().or(default.as_ref())?;
        self.duration(value).filter(|d| !d.is_zero())
    }

    pub(super) fn timeouts(&mut self, own: &TimeoutsT, d: &TimeoutsT) -> Timeouts {
        Timeouts {
            client: self.timeout(&own.client, &d.client),
            server: self.timeout(&own.server, &d.server),
            connect: self.timeout(&own.connect, &d.connect),
            queue: self.timeout(&own.queue, &d.queue),
            check: self.timeout(&own.check, &d.check),
            tunnel: self.timeout(&own.tunnel, &d.tunnel),
            client_fin: self.timeout(&own.client_fin, &d.client_fin),
            server_fin: self.timeout(&own.server_fin, &d.server_fin),
            handshake: self.timeout(&own.handshake, &d.handshake),
            client_hs: self.timeout(&own.client_hs, &d.client_hs),
            http_request: self.timeout(&own.http_request, &d.http_request),
            http_keep_alive: self.timeout(&own.http_keep_alive, &d.http_keep_alive),
            failover: self.timeout(&own.failover, &d.failover),
        }
    }

    /// A proxy's `http` table over `[defaults]`'s (see `toml/http.rs`).
    pub(super) fn http(
        &mut self,
        own: Option<&super::http::HttpT>,
        d: Option<&super::http::HttpT>,
    ) -> HttpProxy {
        let (settings, errors) = super::http::http(own, d);
        for (offset, message) in errors {
            self.report.error(self.lines.of(offset), message);
        }
        settings
    }

    /// The frontend's `terminate` table, else `[defaults]`'s, key by key.
    pub(super) fn terminate(
        &mut self,
        own: Option<&TerminateT>,
        d: Option<&TerminateT>,
    ) -> Terminate {
        let mut t = Terminate::default();
        if let Some(lenient) = own.and_then(|o| o.lenient).or(d.and_then(|d| d.lenient)) {
            t.lenient = lenient;
        }
        let buffer = own
            .and_then(|o| o.publish_buffer.as_ref())
            .or(d.and_then(|d| d.publish_buffer.as_ref()));
        if let Some(b) = buffer {
            let n = *b.get_ref();
            if n < 128 * 1024 {
                let line = self.lines.span(b);
                self.report.error(line, format!("terminate.publish_buffer must be at least 131072 bytes (one message of RabbitMQ's default frame_max), not {n}"));
            } else {
                t.publish_buffer = n;
            }
        }
        t
    }

    /// `initial_frame_max` in bytes, within [`INITIAL_FRAME_MAX_RANGE`].
    pub(super) fn initial_frame_max(&mut self, value: Option<&Spanned<u32>>) -> u32 {
        let Some(v) = value else {
            return DEFAULT_INITIAL_FRAME_MAX;
        };
        let n = *v.get_ref();
        if !INITIAL_FRAME_MAX_RANGE.contains(&n) {
            self.report.error(
                self.lines.span(v),
                format!(
                    "initial_frame_max must be from {} to {} bytes (RabbitMQ's default initial_frame_max is 8192), not {n}",
                    INITIAL_FRAME_MAX_RANGE.start(),
                    INITIAL_FRAME_MAX_RANGE.end()
                ),
            );
        }
        n
    }

    /// Keep-alive of a proxy, key by key over `[defaults]`.
    pub(super) fn keepalive(&mut self, own: Option<&KeepaliveT>, d: &KeepaliveT) -> Keepalive {
        let empty = KeepaliveT::default();
        let own = own.unwrap_or(&empty);
        let mut positive = |v: Option<&Spanned<String>>, what: &str| {
            let v = v?;
            let d = self.duration(v)?;
            if d.is_zero() {
                self.report.error(
                    self.lines.span(v),
                    format!("keepalive {what} must be greater than 0"),
                );
            }
            Some(d)
        };
        let idle = positive(own.idle.as_ref().or(d.idle.as_ref()), "idle");
        let interval = positive(own.interval.as_ref().or(d.interval.as_ref()), "interval");
        let count = own.count.as_ref().or(d.count.as_ref()).map(|c| {
            if *c.get_ref() == 0 {
                self.report
                    .error(self.lines.span(c), "keepalive count must be at least 1");
            }
            *c.get_ref()
        });
        Keepalive {
            enabled: own.enabled.or(d.enabled).unwrap_or(false),
            idle,
            interval,
            count,
        }
    }

    /// `rebalance = { window, batch }`, defaults 60 s and 1.
    pub(super) fn rebalance(&mut self, r: &RebalanceT) -> Option<Rebalance> {
        let window = match &r.window {
            Some(w) => {
                let d = self.duration(w)?;
                if d.is_zero() {
                    self.report.error(
                        self.lines.span(w),
                        "rebalance window must be greater than 0",
                    );
                }
                d
            }
            None => Duration::from_secs(60),
        };
        let batch = match &r.batch {
            Some(b) => {
                if *b.get_ref() == 0 {
                    self.report
                        .error(self.lines.span(b), "rebalance batch must be at least 1");
                }
                *b.get_ref()
            }
            None => 1,
        };
        Some(Rebalance { window, batch })
    }

    /// `check = "tcp" | "amqp"`, or a table:
    /// `{ type = "amqp-login", user, password, vhost = "/" }`,
    /// `{ type = "http", method = "OPTIONS", uri = "/", headers = [{ name, value }], expect_status = [200] }`.
    pub(super) fn check(&mut self, value: &Spanned<toml::Value>) -> CheckKind {
        let line = self.lines.span(value);
        match check::parse(value.get_ref()) {
            Ok(kind) => kind,
            Err(message) => {
                self.report.error(line, format!("check: {message}"));
                CheckKind::Tcp
            }
        }
    }
}
