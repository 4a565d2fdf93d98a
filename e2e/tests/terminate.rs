//! Warren's `amqp-terminate` mode against real RabbitMQ nodes: a client keeps its
//! connection while the node behind it dies, and its consumers and publishes go on.
//! lapin's own recovery is off: any close or error the client sees fails the test.
//!
//! These are warren's features: with `WARREN_E2E_PROXY=haproxy` the tests say so and pass
//! without running (no other proxy terminates AMQP).

use anyhow::{ensure, Context, Result};
use tokio::time::{Duration, Instant};
use warren_e2e::amqp::{self, QUEUES};
use warren_e2e::proxy::{ProxyConfig, ProxyKind};
use warren_e2e::terminate::{Consumer, Publisher};
use warren_e2e::{e2e_test, TestCtx};

fn warren_only(t: &TestCtx, name: &str) -> bool {
    if t.kind == ProxyKind::Haproxy {
        eprintln!("[e2e] {name}: amqp-terminate is warren's; nothing to run against HAProxy");
        return false;
    }
    true
}

/// The node under `name`'s connection, as the cluster sees it.
async fn node_of(t: &TestCtx, name: &str, ask: usize) -> Result<usize> {
    let conns = t.lab.connections(ask).await?;
    conns
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, node)| *node)
        .with_context(|| format!("no connection named {name} in the cluster: {conns:?}"))
}

/// `kill -9` of the node under a consumer (prefetch 50, manual acks) and a confirming
/// publisher: neither sees a close, every confirmed message is consumed, duplicates stay
/// within prefetch + the unconfirmed window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_and_publisher_outlive_a_killed_node() {
    e2e_test("consumer_and_publisher_outlive_a_killed_node", |t| async move {
        if !warren_only(&t, "consumer_and_publisher_outlive_a_killed_node") {
            return Ok(());
        }
        let proxy = t.proxy(ProxyConfig::report().nodes(&[1, 2, 3]).terminate()).await?;
        let uri = proxy.amqp_uri("");
        let admin = amqp::connect(&uri, "term-admin").await?;
        amqp::declare_topology(&admin.create_channel().await?, true).await?;
        amqp::close(&admin).await;

        let mut consumer = Consumer::start(&uri, "term-consumer", QUEUES[0].0, 50).await?;
        let publisher = Publisher::start(&uri, "term-publisher", QUEUES[0].1, Duration::from_millis(5)).await?;
        // Let traffic flow, then kill the consumer's node (any node but 1 would also do).
        let mut delivered = consumer.delivered.clone();
        tokio::time::timeout(Duration::from_secs(10), delivered.wait_for(|n| *n >= 100))
            .await
            .context("no 100 deliveries before the kill")??;
        let victim = node_of(&t, "term-consumer", 1).await?;
        let victim = if victim == 1 { node_of(&t, "term-consumer", 2).await? } else { victim };
        let killed_at = Instant::now();
        t.lab.run_async(&["kill", &victim.to_string()]).await?;
        eprintln!("[e2e] killed node {victim} (under term-consumer)");
        let before = consumer.seen.lock().unwrap().counts.len();
        tokio::time::timeout(Duration::from_secs(30), delivered.wait_for(|n| *n > before + 100))
            .await
            .context("deliveries did not resume within 30 s of the kill")??;
        let (pub_conn, confirmed) = publisher.stop().await?;
        ensure!(consumer.wait_for(&confirmed, Duration::from_secs(30)).await, "confirmed messages were not all consumed: missing {:?}", confirmed.difference(&consumer.ids()).take(20).collect::<Vec<_>>());
        let (paused, dups) = {
            let seen = consumer.seen.lock().unwrap();
            (seen.pause_around(killed_at), seen.duplicates())
        };
        eprintln!(
            "[e2e] after kill -9 of node {victim}: {} confirmed, all consumed, {dups} duplicates, longest pause in deliveries {:?}",
            confirmed.len(),
            paused
        );
        ensure!(dups <= 50 + 1, "{dups} duplicates: more than prefetch + unconfirmed window");
        ensure!(consumer.errors.list().is_empty(), "the consumer saw errors: {:?}", consumer.errors.list());
        ensure!(pub_conn.status().connected(), "the publisher's connection was closed");
        let errors = consumer.errors.clone();
        let conn = consumer.stop();
        ensure!(conn.status().connected(), "the consumer's connection was closed: {:?}", errors.list());
        let moved = proxy.log.dump();
        for line in moved.lines().filter(|l| l.contains("moved from") || l.contains("could not move")) {
            eprintln!("[e2e] warren: {line}");
        }
        ensure!(moved.contains("moved from"), "warren did not log the move");
        amqp::close(&conn).await;
        amqp::close(&pub_conn).await;
        t.lab.run_async(&["restart", &victim.to_string()]).await?;
        Ok(())
    })
    .await;
}
