//! Warren's AMQP mode against real RabbitMQ nodes: the report's two pains removed.
//! A quiet consumer is never cut for silence; a frozen node is found by the AMQP check and a
//! dead peer by the heartbeat; a client whose node dies is told with `connection.close` 320;
//! after a node returns, rebalancing spreads the sessions again.
//!
//! These are warren's features: with `WARREN_E2E_PROXY=haproxy` the tests say so and pass
//! without running (HAProxy has no AMQP mode to compare with).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{ensure, Context, Result};
use lapin::options::BasicConsumeOptions;
use lapin::types::FieldTable;
use tokio::time::{Duration, Instant};
use warren_e2e::amqp::{self, RawQuietConsumer, QUEUES};
use warren_e2e::proxy::{ProxyConfig, ProxyKind};
use warren_e2e::timeline::Timeline;
use warren_e2e::{e2e_test, TestCtx};

fn warren_only(t: &TestCtx, name: &str) -> bool {
    if t.kind == ProxyKind::Haproxy {
        eprintln!("[e2e] {name}: AMQP mode is warren's; nothing to run against HAProxy");
        return false;
    }
    true
}

/// The report's first pain: `timeout client 1m` cut idle consumers. In AMQP mode a consumer
/// with heartbeats off is not cut by `timeout client/server 5s`, and still receives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_consumer_is_kept_in_amqp_mode() {
    e2e_test("quiet_consumer_is_kept_in_amqp_mode", |t| async move {
        if !warren_only(&t, "quiet_consumer_is_kept_in_amqp_mode") {
            return Ok(());
        }
        let proxy = t.proxy(ProxyConfig::report().timeouts("5s", "5s").amqp()).await?;
        let admin = amqp::connect(&proxy.amqp_uri(""), "amqp-quiet-admin").await?;
        let ch = admin.create_channel().await?;
        amqp::declare_topology(&ch, false).await?;

        let mut quiet = RawQuietConsumer::start(("127.0.0.1", proxy.config.front_port), QUEUES[0].0, 0).await?;
        // 30 s of silence, six times the timeouts: the session must neither end nor deliver.
        let idle = tokio::time::timeout(Duration::from_secs(30), quiet.wait_delivery()).await;
        ensure!(idle.is_err(), "the quiet consumer ended (or got a message) during 30 s of silence: {idle:?}");
        ch.basic_publish(amqp::EXCHANGE, amqp::KEY1, Default::default(), b"after 30 s", Default::default())
            .await?
            .await?;
        tokio::time::timeout(Duration::from_secs(10), quiet.wait_delivery())
            .await
            .context("no delivery within 10 s")??;
        eprintln!("[e2e] quiet consumer (heartbeat 0) kept 30 s through timeout client/server 5s, then consumed");
        amqp::close(&admin).await;
        Ok(())
    })
    .await;
}

/// With a negotiated heartbeat of 2 s, a node that stops answering (frozen) is found by
/// warren in about 2×2 s + 1 s, and the client is told with connection.close 320. The client
/// here sends heartbeats but never checks the server's (as many client libraries do), so
/// only warren can notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_finds_a_frozen_node_and_tells_the_client() {
    e2e_test("heartbeat_finds_a_frozen_node_and_tells_the_client", |t| async move {
        if !warren_only(&t, "heartbeat_finds_a_frozen_node_and_tells_the_client") {
            return Ok(());
        }
        // Only node 2 behind this proxy, and checks slow enough not to act first.
        let mut config = ProxyConfig::report().amqp().nodes(&[2]);
        config.inter_ms = 60_000;
        let proxy = t.proxy(config).await?;
        let admin = amqp::connect(&proxy.amqp_uri(""), "amqp-heartbeat-admin").await?;
        amqp::declare_topology(&admin.create_channel().await?, false).await?;
        amqp::close(&admin).await;
        let client = RawQuietConsumer::start_with(("127.0.0.1", proxy.config.front_port), QUEUES[0].0, 2, true).await?;
        let frozen_at = Instant::now();
        t.lab.run_async(&["freeze", "2"]).await?;
        let how = tokio::time::timeout(Duration::from_secs(30), client.wait_end()).await;
        let after = frozen_at.elapsed();
        t.lab.run_async(&["thaw", "2"]).await?;
        let how = how.context("the client was not told within 30 s")?;
        eprintln!("[e2e] frozen node found by warren's heartbeat watch after {:.2}s; the client got: {how}", after.as_secs_f64());
        ensure!(how.contains("connection.close from server: 320"), "not a connection.close 320: {how}");
        ensure!(how.contains("clusterRabbit2") && how.contains("missed heartbeats"), "the reason does not say what happened: {how}");
        Ok(())
    })
    .await;
}

/// Issue 14: a frozen node never costs a client its connection attempt. In AMQP mode the
/// node's `connection.start` is part of connecting (within `timeout connect`): a frozen node
/// (it still accepts TCP) is a failed connect, redispatched to a node that answers, and
/// counted against its health. Checks are slowed down (TCP checks would pass on a frozen
/// node anyway), so only the connect path acts. 20 handshakes, every one succeeds, and the
/// log says which server was left and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_node_never_costs_a_client_its_connection() {
    let name = "a_frozen_node_never_costs_a_client_its_connection";
    e2e_test(name, |t| async move {
        if !warren_only(&t, name) {
            return Ok(());
        }
        let config = ProxyConfig::report().amqp();
        twenty_handshakes_during_a_freeze(&t, config, "amqp").await
    })
    .await;
}

/// The same in `amqp-terminate` mode, which reaches nodes with a connect of its own (at the
/// first login and on every move).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_node_never_costs_a_terminated_client_its_connection() {
    let name = "a_frozen_node_never_costs_a_terminated_client_its_connection";
    e2e_test(name, |t| async move {
        if !warren_only(&t, name) {
            return Ok(());
        }
        let config = ProxyConfig::report().terminate();
        twenty_handshakes_during_a_freeze(&t, config, "amqp-terminate").await
    })
    .await;
}

async fn twenty_handshakes_during_a_freeze(
    t: &TestCtx,
    mut config: ProxyConfig,
    mode: &str,
) -> Result<()> {
    config.inter_ms = 60_000;
    let proxy = t.proxy(config).await?;
    let mark = proxy.log.mark();
    let frozen_at = Instant::now();
    t.lab.run_async(&["freeze", "2"]).await?;
    let opened = async {
        let mut slowest = Duration::ZERO;
        for i in 0..20 {
            let started = Instant::now();
            // Bound: timeout connect (2 s) per frozen attempt, and a few of them at most.
            let c = tokio::time::timeout(
                Duration::from_secs(20),
                amqp::connect(&proxy.amqp_uri(""), &format!("{mode}-frozen-connect-{i}")),
            )
            .await
            .with_context(|| format!("connection {i} hung"))?
            .with_context(|| format!("connection {i} failed"))?;
            slowest = slowest.max(started.elapsed());
            amqp::close(&c).await;
        }
        anyhow::Ok(slowest)
    }
    .await;
    let frozen_for = frozen_at.elapsed();
    t.lab.run_async(&["thaw", "2"]).await?;
    let slowest = opened?;
    let down = proxy
        .wait_server_state("clusterRabbit2", "DOWN", mark, Duration::from_secs(10))
        .await
        .context("the frozen node was not marked DOWN")?;
    proxy
        .log
        .wait_for(
            "left=clusterRabbit2:\"no connection.start within timeout connect\"",
            mark,
            Duration::from_secs(10),
        )
        .await
        .context("no log line says the frozen node was left, and why")?;
    eprintln!(
        "[e2e] {mode} mode, node 2 frozen for {:.1}s: 20 of 20 AMQP handshakes through warren succeeded, the slowest in {:.2}s; marked DOWN {:.2}s after the freeze",
        frozen_for.as_secs_f64(),
        slowest.as_secs_f64(),
        down.saturating_duration_since(frozen_at).as_secs_f64()
    );
    Ok(())
}

/// A frozen node accepts TCP, so a TCP check never marks it DOWN (HAProxy, measured). The AMQP
/// check does, within about fall × inter + timeout check; no new connection goes there; after
/// SIGCONT it is UP again after `rise` checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_check_marks_a_frozen_node_down_and_up_again() {
    e2e_test("amqp_check_marks_a_frozen_node_down_and_up_again", |t| async move {
        if !warren_only(&t, "amqp_check_marks_a_frozen_node_down_and_up_again") {
            return Ok(());
        }
        let mut config = ProxyConfig::report().amqp();
        config.amqp_check = true;
        config.timeout_check = "1s".into();
        let bound = Duration::from_millis(u64::from(config.fall * config.inter_ms) + 1000);
        let proxy = t.proxy(config).await?;
        let timeline = Timeline::new();
        let mark = proxy.log.mark();
        let frozen_at = Instant::now();
        timeline.set_zero(frozen_at);
        t.lab.run_async(&["freeze", "2"]).await?;
        timeline.at(frozen_at, "SIGSTOP node 2");
        let down = proxy.wait_server_state("clusterRabbit2", "DOWN", mark, Duration::from_secs(30)).await?;
        timeline.at(down, format!("warren logs clusterRabbit2 DOWN (bound fall × inter + timeout check = {bound:?})"));

        // Every new session goes to node 1 now: read each one's server from its log line.
        let mark = proxy.log.mark();
        for i in 0..10 {
            let c = amqp::connect(&proxy.amqp_uri(""), &format!("amqp-frozen-{i}")).await?;
            amqp::close(&c).await;
        }
        for _ in 0..10 {
            proxy.log.wait_for("rabbitmq_cluster_back/clusterRabbit1 ", mark, Duration::from_secs(10)).await?;
        }
        let sent_to_2 = proxy.log.dump().lines().skip(mark).filter(|l| l.contains("rabbitmq_cluster_back/clusterRabbit2 ")).count();
        ensure!(sent_to_2 == 0, "{sent_to_2} sessions were sent to the frozen node");

        let mark = proxy.log.mark();
        let thawed_at = Instant::now();
        t.lab.run_async(&["thaw", "2"]).await?;
        timeline.at(thawed_at, "SIGCONT node 2");
        let up = proxy.wait_server_state("clusterRabbit2", "UP", mark, Duration::from_secs(30)).await?;
        timeline.at(up, "warren logs clusterRabbit2 UP");
        eprintln!("{}", timeline.render("frozen node via warren's AMQP check"));
        Ok(())
    })
    .await;
}

/// The report's second pain: consumers on a dead node "simply died". In AMQP mode the client
/// library reports reply code 320 and warren's reason, not a socket error; when the node's
/// app is stopped, RabbitMQ's own 320 passes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_a_failed_node_get_connection_close_320() {
    e2e_test(
        "clients_of_a_failed_node_get_connection_close_320",
        |t| async move {
            if !warren_only(&t, "clients_of_a_failed_node_get_connection_close_320") {
                return Ok(());
            }
            for fault in ["kill", "stop-app"] {
                let mut config = ProxyConfig::report().amqp().nodes(&[2]);
                config.shutdown_sessions = true;
                let proxy = t.proxy(config).await?;
                let conn = amqp::connect(&proxy.amqp_uri(""), &format!("amqp-320-{fault}")).await?;
                let (tx, mut errors) = tokio::sync::mpsc::unbounded_channel();
                conn.on_error(move |e| {
                    let _ = tx.send(e.to_string());
                });
                t.lab.run_async(&[fault, "2"]).await?;
                let error = tokio::time::timeout(Duration::from_secs(30), errors.recv())
                    .await
                    .context("the client heard nothing within 30 s")?
                    .context("error channel closed")?;
                eprintln!("[e2e] {fault} of node 2: the client library reports: {error}");
                ensure!(
                    error.contains("CONNECTION_FORCED"),
                    "{fault}: not a connection.close 320: {error}"
                );
                if fault == "kill" {
                    ensure!(
                        error.contains("clusterRabbit2"),
                        "kill: warren's reason does not name the node: {error}"
                    );
                }
                proxy.stop().await?;
                t.lab.ensure_healthy().await?;
            }
            Ok(())
        },
    )
    .await;
}

/// After a node returns, connections stay piled on the survivors ("all the clients end up on
/// the first node up"). With `rebalance`, warren sheds the excess with connection.close 320
/// over the window; the reconnecting consumers spread 10/10/10 again and keep consuming.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_spreads_sessions_after_a_node_returns() {
    e2e_test(
        "rebalance_spreads_sessions_after_a_node_returns",
        |t| async move {
            if !warren_only(&t, "rebalance_spreads_sessions_after_a_node_returns") {
                return Ok(());
            }
            let mut config = ProxyConfig::report().amqp().with_node(3, 30);
            config.rebalance = Some("window 5s batch 2".into());
            let proxy = t.proxy(config).await?;
            let uri = proxy.amqp_uri("");
            let admin = amqp::connect(&uri, "rebalance-admin").await?;
            amqp::declare_topology(&admin.create_channel().await?, true).await?;
            amqp::close(&admin).await;

            let consuming = Arc::new(AtomicUsize::new(0));
            let (stop, _) = tokio::sync::watch::channel(false);
            let mut tasks = Vec::new();
            for i in 0..30 {
                tasks.push(tokio::spawn(reconnecting_consumer(
                    uri.clone(),
                    i,
                    consuming.clone(),
                    stop.subscribe(),
                )));
            }
            wait_until("30 consumers", Duration::from_secs(60), || {
                consuming.load(Ordering::SeqCst) == 30
            })
            .await?;
            let spread = spread(&t, 30).await?;
            eprintln!("[e2e] rebalance: start {spread:?}");

            let timeline = Timeline::new();
            let mark = proxy.log.mark();
            let stopped_at = Instant::now();
            timeline.set_zero(stopped_at);
            t.lab.run_async(&["stop-app", "3"]).await?;
            timeline.at(stopped_at, "stop_app node 3");
            proxy
                .wait_server_state("clusterRabbit3", "DOWN", mark, Duration::from_secs(30))
                .await?;
            wait_until(
                "30 consumers on nodes 1 and 2",
                Duration::from_secs(60),
                || consuming.load(Ordering::SeqCst) == 30,
            )
            .await?;
            let piled = spread_where(&t, 30, |s| s.get(&3).copied().unwrap_or(0) == 0).await?;
            eprintln!("[e2e] rebalance: node 3 stopped {piled:?}");

            let mark = proxy.log.mark();
            t.lab.run_async(&["start-app", "3"]).await?;
            let up = proxy
                .wait_server_state("clusterRabbit3", "UP", mark, Duration::from_secs(60))
                .await?;
            timeline.at(up, "warren logs clusterRabbit3 UP: rebalancing starts");
            let even = spread_where(&t, 30, |s| {
                (1..=3).all(|n| s.get(&n).copied().unwrap_or(0) == 10)
            })
            .await?;
            timeline.now(format!("spread {even:?}"));
            wait_until("all 30 consuming again", Duration::from_secs(30), || {
                consuming.load(Ordering::SeqCst) == 30
            })
            .await?;
            eprintln!(
                "{}",
                timeline.render("rebalance via warren (window 5 s, batch 2)")
            );
            let _ = stop.send(true);
            for task in tasks {
                let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
            }
            Ok(())
        },
    )
    .await;
}

/// A consumer on one of the report's queues that reconnects whenever its connection ends.
/// `consuming` counts the consumers currently subscribed.
async fn reconnecting_consumer(
    uri: String,
    i: usize,
    consuming: Arc<AtomicUsize>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let queue = QUEUES[i % QUEUES.len()].0;
    let mut generation = 0;
    while !*stop.borrow() {
        let name = format!("rebalance-{i}-g{generation}");
        generation += 1;
        let Ok(conn) = amqp::connect(&uri, &name).await else {
            // node gone or queue leader moving: a real client retries
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
                _ = stop.changed() => return,
            }
        };
        let (tx, mut ended) = tokio::sync::mpsc::unbounded_channel();
        conn.on_error(move |e| {
            let _ = tx.send(e.to_string());
        });
        let consumer = async {
            let ch = amqp::consumer_channel(&conn).await?;
            ch.basic_consume(
                queue,
                &name,
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
        };
        if consumer.await.is_err() {
            amqp::close(&conn).await;
            continue;
        }
        consuming.fetch_add(1, Ordering::SeqCst);
        tokio::select! {
            _ = ended.recv() => {}
            _ = stop.changed() => {}
        }
        consuming.fetch_sub(1, Ordering::SeqCst);
        amqp::close(&conn).await;
    }
}

/// Waits for a condition no event announces (consumer counts), polling with a deadline.
async fn wait_until(what: &str, within: Duration, mut ok: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + within;
    while !ok() {
        ensure!(
            Instant::now() < deadline,
            "{what}: not reached within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

async fn spread(t: &TestCtx, n: usize) -> Result<BTreeMap<usize, usize>> {
    spread_where(t, n, |_| true).await
}

/// Connections named `rebalance-*` per node once `n` are listed and `ok` holds (the broker's
/// listing lags; no event tells when it is current, so poll with a deadline).
async fn spread_where(
    t: &TestCtx,
    n: usize,
    ok: impl Fn(&BTreeMap<usize, usize>) -> bool,
) -> Result<BTreeMap<usize, usize>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut per_node = BTreeMap::new();
        for (_, node) in t.lab.connections(1).await?.iter().filter(|(name, _)| {
            name.starts_with("rebalance-") && !name.starts_with("rebalance-admin")
        }) {
            *per_node.entry(*node).or_insert(0) += 1;
        }
        if per_node.values().sum::<usize>() == n && ok(&per_node) {
            return Ok(per_node);
        }
        ensure!(
            Instant::now() < deadline,
            "spread never reached the expected shape; last {per_node:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
