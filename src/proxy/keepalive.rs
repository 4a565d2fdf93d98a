//! TCP keep-alive on proxied sockets: opt-in in tcp mode (`option clitcpka`/`srvtcpka`),
//! always on in AMQP mode, where it is what finds a dead peer that negotiated no
//! heartbeat. The system default (2 h before the first probe) is useless for that, so
//! AMQP mode uses its own defaults unless the configuration says otherwise.

use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::TcpStream;

use crate::config::Keepalive;

/// AMQP mode's defaults: a silent dead peer is found after about 30 + 3×10 = 60 s.
const AMQP_IDLE: Duration = Duration::from_secs(30);
const AMQP_INTERVAL: Duration = Duration::from_secs(10);
const AMQP_COUNT: u32 = 3;

pub fn apply(stream: &TcpStream, ka: &Keepalive, amqp: bool) {
    if !ka.enabled && !amqp {
        return;
    }
    let mut params = TcpKeepalive::new();
    if let Some(idle) = ka.idle.or(amqp.then_some(AMQP_IDLE)) {
        params = params.with_time(idle);
    }
    if let Some(interval) = ka.interval.or(amqp.then_some(AMQP_INTERVAL)) {
        params = params.with_interval(interval);
    }
    if let Some(count) = ka.count.or(amqp.then_some(AMQP_COUNT)) {
        params = params.with_retries(count);
    }
    // A socket that refuses keep-alive still carries traffic; nothing to do about it.
    let _ = SockRef::from(stream).set_tcp_keepalive(&params);
}
