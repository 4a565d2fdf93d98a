//! Moving a session to another node while its client stays connected.
//!
//! Unplanned (the node died, froze, or closed with 320): what the old node did not
//! confirm is published again and unacked deliveries come again (at-least-once). Planned
//! (drain, maintenance, rebalancing, `shutdown sessions` on a live server): consumers are
//! cancelled on the old node and warren waits, bounded, until the client has settled every
//! delivery and the node has confirmed every publish, so nothing is delivered twice.
//! Either way the client is held (not read, but sent heartbeats) for at most
//! `timeout failover`; what cannot be moved ends with `connection.close` 320.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use amq_protocol::protocol::{basic, AMQPClass};
use tokio::time::Instant;

use super::io::Side;
use super::node;
use super::replay;
use super::{scratch, Session, Turn};
use crate::amqp::methods::connection_close;
use crate::amqp::terminate::channel::Phase;
use crate::amqp::terminate::relay::put_method;
use crate::amqp::terminate::wire::{id, HEARTBEAT};
use crate::config::Level;
use crate::log::tcplog::Cause;

/// The longest a planned move waits for deliveries to be settled and publishes confirmed.
const SETTLE_WAIT: Duration = Duration::from_secs(5);

/// The longest one attempt at a move (log in, replay) may take before it is given up and
/// the move tried again.
const ATTEMPT_LIMIT: Duration = Duration::from_secs(5);

/// Pause between two rounds of trying every node, so a cluster that is all down is not
/// hammered while the client is held.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// Why a move did not happen.
pub(super) enum NotMoved {
    /// Fall back to what `amqp` mode does: 320 with this reason.
    Fallback(String),
    /// The session ended meanwhile (the client left or closed).
    Ended(Cause, String),
}

/// Counts a client as held while its session moves.
struct Held<'a>(&'a std::sync::atomic::AtomicU32);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Session<'_> {
    pub(super) async fn move_session(&mut self, why: &str, planned: bool) -> Result<(), NotMoved> {
        let started = Instant::now();
        let deadline = started + self.failover_timeout();
        self.cannot_move()?;
        let counters = &self.frontend.counters;
        counters.held.fetch_add(1, Ordering::Relaxed);
        let _held = Held(&counters.held);
        if planned {
            self.settle_on_old_node(started + SETTLE_WAIT.min(self.failover_timeout()))
                .await?;
        }
        let Some(mut old) = self.node.take() else {
            return Err(NotMoved::Fallback("no node".into()));
        };
        let from = old.server().full_name.clone();
        let avoid = [old.server().id];
        if !old.side.gone {
            old.side
                .wbuf
                .extend_from_slice(&connection_close(200, "warren is moving this session"));
            let _ = old
                .side
                .flush_until(Instant::now() + Duration::from_secs(1))
                .await;
        }
        drop(old);

        let stop = &self.process.stop;
        let Session {
            backend,
            peer,
            destination,
            client,
            relay,
            creds,
            client_heartbeat,
            ..
        } = self;
        let (backend, peer, destination, hb) = (*backend, *peer, *destination, *client_heartbeat);
        let (node, republished) = loop {
            let mut to_client = scratch();
            // One attempt may not use up the whole deadline: a node that hangs on one step
            // (a quorum queue still electing its leader) is left and the move tried again.
            let attempt_by = deadline.min(Instant::now() + ATTEMPT_LIMIT);
            let attempt = async {
                let started = node::reach(backend, peer, destination, &avoid, deadline).await?;
                let mut node = node::login(started, creds, hb, attempt_by)
                    .await
                    .map_err(|e| e.to_string())?;
                let n = replay::replay(&mut node.side, relay, &mut to_client, attempt_by).await?;
                Ok::<_, String>((node, n))
            };
            let Some(result) = hold(client, hb, stop, attempt).await else {
                return Err(NotMoved::Ended(
                    Cause::Killed,
                    "warren is shutting down".into(),
                ));
            };
            match result {
                Ok((node, n)) => {
                    client.wbuf.extend_from_slice(&to_client);
                    break (node, n);
                }
                Err(e) => {
                    tracing::debug!("move attempt failed: {e}");
                    if Instant::now() + RETRY_PAUSE >= deadline {
                        return Err(NotMoved::Fallback(format!(
                            "no node took the session within timeout failover ({} ms): {e}",
                            self.failover_timeout().as_millis()
                        )));
                    }
                }
            }
            if hold(client, hb, stop, tokio::time::sleep(RETRY_PAUSE))
                .await
                .is_none()
            {
                return Err(NotMoved::Ended(
                    Cause::Killed,
                    "warren is shutting down".into(),
                ));
            }
        };
        let to = node.server().full_name.clone();
        let left = node::left_suffix(&node.left);
        // The client was not read while held: its silence then says nothing.
        self.client.last_read = Instant::now();
        self.entry.moved(&to);
        self.node = Some(node);
        self.moves += 1;
        self.frontend.counters.moves.fetch_add(1, Ordering::Relaxed);
        self.frontend
            .counters
            .republished
            .fetch_add(republished, Ordering::Relaxed);
        self.log(
            Level::Notice,
            &format!(
                "moved from {from} to {to} ({}) in {} ms: {why}; {republished} messages republished, epoch {}{left}",
                if planned { "planned" } else { "failover" },
                started.elapsed().as_millis(),
                self.moves
            ),
        );
        if let Some(unseen) = self.refused_unseen() {
            self.log(
                Level::Warning,
                &format!("{unseen} messages were refused by the node (basic.nack) and the client had no confirms to learn it"),
            );
        }
        Ok(())
    }

    /// What cannot be moved: an open transaction, and queues that die with the connection
    /// (unless `option amqp-terminate lenient`).
    fn cannot_move(&self) -> Result<(), NotMoved> {
        if let Some((n, _)) = self.relay.channels.iter().find(|(_, c)| c.tx && c.tx_dirty) {
            return Err(NotMoved::Fallback(format!(
                "channel {n} has an open transaction"
            )));
        }
        if let Some(queue) = self.relay.topology.connection_bound_queue() {
            if !self.frontend.config.terminate.lenient {
                return Err(NotMoved::Fallback(format!(
                    "{queue} cannot move with the session (option amqp-terminate lenient would declare it again, empty)"
                )));
            }
            self.log(
                Level::Notice,
                &format!("{queue} will be declared again on the new node, empty (lenient)"),
            );
        }
        Ok(())
    }

    /// A planned move: cancel every consumer on the old node, then keep the session running
    /// until the client settled every delivery and the node confirmed every publish, or
    /// `until`.
    async fn settle_on_old_node(&mut self, until: Instant) -> Result<(), NotMoved> {
        let Some(node) = self.node.as_mut() else {
            return Ok(());
        };
        for (&n, ch) in self.relay.channels.iter_mut() {
            if ch.phase != Phase::Open {
                continue;
            }
            let tags: Vec<String> = ch.consumer_tags().map(str::to_string).collect();
            for tag in tags {
                let cancel = AMQPClass::Basic(basic::AMQPMethod::Cancel(basic::Cancel {
                    consumer_tag: tag.as_str().into(),
                    nowait: false,
                }));
                put_method(&mut node.side.wbuf, n, &cancel);
                ch.cancelling += 1;
            }
        }
        let server = Arc::clone(node.server());
        let kill = tokio_util::sync::CancellationToken::new();
        loop {
            let settled = self.relay.channels.values().all(|c| {
                c.cancelling == 0 && c.outstanding.count() == 0 && c.publishes.unconfirmed() == 0
            });
            if settled || Instant::now() >= until {
                return Ok(());
            }
            let turn = match tokio::time::timeout_at(until, self.turn(&server, &kill)).await {
                Err(_) => return Ok(()),
                Ok(turn) => turn,
            };
            match turn {
                Turn::Go => {}
                // The node went meanwhile: the move goes on as an unplanned one.
                Turn::Move { .. } => return Ok(()),
                Turn::End { cause, how } => return Err(NotMoved::Ended(cause, how)),
            }
        }
    }

    fn refused_unseen(&mut self) -> Option<u64> {
        let n: u64 = self
            .relay
            .channels
            .values_mut()
            .map(|c| std::mem::take(&mut c.publishes.refused_unseen))
            .sum();
        (n > 0).then_some(n)
    }
}

/// Runs `work` while the client is held: it is not read, but it is sent heartbeats on its
/// schedule so it does not give up on warren. `None` when warren stops meanwhile.
async fn hold<T>(
    client: &mut Side,
    heartbeat: u16,
    stop: &tokio_util::sync::CancellationToken,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    tokio::pin!(work);
    let every = if heartbeat > 0 {
        Duration::from_secs(u64::from(heartbeat)) / 2
    } else {
        Duration::from_secs(3600)
    };
    loop {
        tokio::select! {
            r = &mut work => return Some(r),
            _ = stop.cancelled() => return None,
            _ = tokio::time::sleep(every) => {
                client.wbuf.extend_from_slice(&HEARTBEAT);
                let _ = client.write_some();
            }
        }
    }
}

/// Reads from the client until its `connection.close-ok` (true), or until `deadline` or
/// the socket closes (false).
pub(super) async fn await_close_ok(client: &mut Side, deadline: Instant) -> bool {
    loop {
        match client.read_frame(deadline).await {
            Ok(f) if f.method() == Some(id::CONNECTION_CLOSE_OK) => return true,
            Ok(f) if f.method() == Some(id::CONNECTION_CLOSE) => {
                // Both closed at once: answer, and that is the end.
                client
                    .wbuf
                    .extend_from_slice(&crate::amqp::methods::connection_close_ok());
                let _ = client.flush_until(deadline).await;
                return true;
            }
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}
