//! Warren's `amqp-terminate` mode against real RabbitMQ nodes: a client keeps its
//! connection while the node behind it dies, stops, freezes or is drained, and its consumers
//! and publishes go on. lapin's own recovery is off: any close or error the client sees
//! fails the test. What cannot be moved ends with `connection.close` 320 and the reason.
//!
//! These are warren's features: with `WARREN_E2E_PROXY=haproxy` the tests say so and pass
//! without running (no other proxy terminates AMQP).

use anyhow::{ensure, Context, Result};
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use tokio::time::{Duration, Instant};
use warren_e2e::amqp::{self, QUEUES};
use warren_e2e::proxy::{Proxy, ProxyConfig, ProxyKind};
use warren_e2e::terminate::{Consumer, Errors, Publisher};
use warren_e2e::{e2e_test, TestCtx};

fn warren_only(t: &TestCtx, name: &str) -> bool {
    if t.kind == ProxyKind::Haproxy {
        eprintln!("[e2e] {name}: amqp-terminate is warren's; nothing to run against HAProxy");
        return false;
    }
    true
}

/// The node under `name`'s connection, asking a node other than `avoid` (which may be down).
async fn node_of(t: &TestCtx, name: &str) -> Result<usize> {
    for ask in 1..=3 {
        if let Ok(conns) = t.lab.connections(ask).await {
            if let Some((_, node)) = conns.iter().find(|(n, _)| n == name) {
                return Ok(*node);
            }
        }
    }
    anyhow::bail!("no connection named {name} in the cluster")
}

/// What happens to the node under the consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Kill,
    StopApp,
    Freeze,
    Drain,
    /// `shutdown sessions` on a server that is up (the admin API's `shutdown`).
    Shutdown,
}

impl Fault {
    async fn apply(self, t: &TestCtx, proxy: &Proxy, node: usize) -> Result<()> {
        let n = node.to_string();
        match self {
            Fault::Kill => t.lab.run_async(&["kill", &n]).await.map(drop),
            Fault::StopApp => t.lab.run_async(&["stop-app", &n]).await.map(drop),
            Fault::Freeze => t.lab.run_async(&["freeze", &n]).await.map(drop),
            Fault::Drain => proxy
                .admin(&format!("clusterRabbit{node}"), "drain")
                .await
                .map(drop),
            Fault::Shutdown => proxy
                .admin(&format!("clusterRabbit{node}"), "shutdown")
                .await
                .map(drop),
        }
    }

    async fn undo(self, t: &TestCtx, proxy: &Proxy, node: usize) -> Result<()> {
        let n = node.to_string();
        match self {
            Fault::Kill => t.lab.run_async(&["restart", &n]).await.map(drop),
            Fault::StopApp => t.lab.run_async(&["start-app", &n]).await.map(drop),
            Fault::Freeze => t.lab.run_async(&["thaw", &n]).await.map(drop),
            Fault::Drain => proxy
                .admin(&format!("clusterRabbit{node}"), "ready")
                .await
                .map(drop),
            Fault::Shutdown => Ok(()),
        }
    }

    /// Planned moves settle deliveries first: no duplicates.
    fn planned(self) -> bool {
        matches!(self, Fault::Drain | Fault::Shutdown)
    }
}

/// A consumer (prefetch 50, manual acks) and a confirming publisher through warren; the
/// consumer's node suffers `fault`. Neither client sees a close; every confirmed message is
/// consumed; duplicates stay within prefetch + the unconfirmed window (none for a planned
/// move).
async fn outlive(t: TestCtx, name: &str, fault: Fault) -> Result<()> {
    if !warren_only(&t, name) {
        return Ok(());
    }
    let proxy = t
        .proxy(ProxyConfig::report().nodes(&[1, 2, 3]).terminate())
        .await?;
    // Heartbeat 2 s: the whole path is watched that closely, so a frozen node is left
    // after about 2 × 2 s + 1 s.
    let uri = proxy.amqp_uri("heartbeat=2");
    let admin = amqp::connect(&uri, "term-admin").await?;
    amqp::declare_topology(&admin.create_channel().await?, true).await?;
    amqp::close(&admin).await;

    let mut consumer = Consumer::start(&uri, "term-consumer", QUEUES[0].0, 50).await?;
    let publisher = Publisher::start(
        &uri,
        "term-publisher",
        QUEUES[0].1,
        Duration::from_millis(5),
    )
    .await?;
    let mut delivered = consumer.delivered.clone();
    tokio::time::timeout(Duration::from_secs(10), delivered.wait_for(|n| *n >= 100))
        .await
        .context("no 100 deliveries before the fault")??;
    let victim = node_of(&t, "term-consumer").await?;
    let mark = proxy.log.mark();
    let at = Instant::now();
    fault.apply(&t, &proxy, victim).await?;
    eprintln!("[e2e] {fault:?} of node {victim} (under term-consumer)");
    let result = async {
        proxy
            .log
            .wait_for("\"term-consumer\"} moved from", mark, Duration::from_secs(30))
            .await
            .context("warren did not move the consumer within 30 s")?;
        let now = *delivered.borrow();
        tokio::time::timeout(Duration::from_secs(30), delivered.wait_for(|n| *n > now + 100))
            .await
            .context("deliveries did not resume within 30 s of the move")??;
        if fault == Fault::Freeze {
            // Messages the frozen node had handed to the consumer stay checked out to it
            // until the cluster sees that node again or declares it gone (net_ticktime,
            // 60 s): RabbitMQ's rule, not warren's. Thawed, it finds its connection closed
            // by warren and returns them.
            fault.undo(&t, &proxy, victim).await?;
        }
        let (pub_conn, confirmed) = publisher.stop().await?;
        ensure!(
            consumer.wait_for(&confirmed, Duration::from_secs(30)).await,
            "confirmed messages were not all consumed: missing {:?}",
            confirmed.difference(&consumer.ids()).take(20).collect::<Vec<_>>()
        );
        let (paused, dups) = {
            let seen = consumer.seen.lock().unwrap_or_else(|p| p.into_inner());
            (seen.pause_around(at), seen.duplicates())
        };
        eprintln!(
            "[e2e] {fault:?} of node {victim}: {} confirmed, all consumed, {dups} duplicates, longest pause in deliveries {paused:?}",
            confirmed.len()
        );
        for line in proxy.log.dump().lines().filter(|l| l.contains("moved from") || l.contains("could not move")) {
            eprintln!("[e2e] warren: {line}");
        }
        // The sessions view and the counters say what happened.
        let sessions = proxy.stats_get(";sessions").await?;
        ensure!(
            sessions.contains("\"connection_name\":\"term-consumer\"") && sessions.contains("\"moves\":1"),
            "the sessions view does not show the consumer's move: {sessions}"
        );
        let csv = proxy.stats_get(";csv").await?;
        let header: Vec<&str> = csv.lines().next().unwrap_or("").trim_start_matches("# ").split(',').collect();
        let moves_col = header.iter().position(|c| *c == "amqp_moves").context("no amqp_moves column")?;
        let frontend = csv.lines().find(|l| l.contains(",FRONTEND,")).context("no FRONTEND row")?;
        let moves: u64 = frontend.split(',').nth(moves_col).unwrap_or("").parse().unwrap_or(0);
        ensure!(moves >= 1, "amqp_moves is {moves} on the stats page");
        let bound = if fault.planned() { 0 } else { 50 + 1 };
        ensure!(dups <= bound, "{dups} duplicates: more than {bound}");
        ensure!(consumer.errors.list().is_empty(), "the consumer saw errors: {:?}", consumer.errors.list());
        ensure!(publisher_ok(&pub_conn), "the publisher's connection was closed");
        let errors = consumer.errors.clone();
        let conn = consumer.stop();
        ensure!(conn.status().connected(), "the consumer's connection was closed: {:?}", errors.list());
        amqp::close(&conn).await;
        amqp::close(&pub_conn).await;
        Ok(())
    }
    .await;
    if fault != Fault::Freeze || result.is_err() {
        fault.undo(&t, &proxy, victim).await?;
    }
    result
}

fn publisher_ok(conn: &lapin::Connection) -> bool {
    conn.status().connected()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_outlive_a_killed_node() {
    e2e_test("clients_outlive_a_killed_node", |t| {
        outlive(t, "clients_outlive_a_killed_node", Fault::Kill)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_outlive_a_stopped_app() {
    e2e_test("clients_outlive_a_stopped_app", |t| {
        outlive(t, "clients_outlive_a_stopped_app", Fault::StopApp)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_outlive_a_frozen_node() {
    e2e_test("clients_outlive_a_frozen_node", |t| {
        outlive(t, "clients_outlive_a_frozen_node", Fault::Freeze)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_move_off_a_drained_server_without_duplicates() {
    e2e_test(
        "clients_move_off_a_drained_server_without_duplicates",
        |t| {
            outlive(
                t,
                "clients_move_off_a_drained_server_without_duplicates",
                Fault::Drain,
            )
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_move_off_a_server_whose_sessions_are_shut_down_without_duplicates() {
    e2e_test(
        "clients_move_off_a_server_whose_sessions_are_shut_down_without_duplicates",
        |t| {
            outlive(
                t,
                "clients_move_off_a_server_whose_sessions_are_shut_down_without_duplicates",
                Fault::Shutdown,
            )
        },
    )
    .await;
}

/// What cannot be moved ends as `amqp` mode ends it: `connection.close` 320 with the
/// reason. Waits for the client's connection to report an error containing `expect`.
async fn told(conn: &lapin::Connection, errors: &Errors, expect: &str) -> Result<String> {
    let e = errors
        .wait_for(expect, Instant::now() + Duration::from_secs(40))
        .await
        .with_context(|| format!("not told within 40 s; errors so far: {:?}", errors.list()))?;
    ensure!(!conn.status().connected(), "told, but still connected");
    Ok(e)
}

/// An exclusive queue dies with the node's connection: in strict mode (the default) the
/// session is not moved, and the client is told why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exclusive_queue_falls_back_to_320() {
    e2e_test("an_exclusive_queue_falls_back_to_320", |t| async move {
        if !warren_only(&t, "an_exclusive_queue_falls_back_to_320") {
            return Ok(());
        }
        let proxy = t
            .proxy(ProxyConfig::report().nodes(&[1, 2, 3]).terminate())
            .await?;
        let conn = amqp::connect(&proxy.amqp_uri(""), "term-exclusive").await?;
        let errors = Errors::watch(&conn);
        let ch = conn.create_channel().await?;
        let q = ch
            .queue_declare(
                "",
                QueueDeclareOptions {
                    exclusive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        ensure!(
            q.name().as_str().starts_with("warren.gen-"),
            "server-named queue not named by warren: {}",
            q.name()
        );
        ch.basic_consume(
            q.name().as_str(),
            "",
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
        let victim = node_of(&t, "term-exclusive").await?;
        t.lab.run_async(&["kill", &victim.to_string()]).await?;
        let result = told(&conn, &errors, "exclusive queue").await;
        t.lab.run_async(&["restart", &victim.to_string()]).await?;
        let e = result?;
        eprintln!("[e2e] exclusive queue: the client was told: {e}");
        ensure!(
            e.contains("CONNECTION-FORCED") || e.contains("CONNECTION_FORCED"),
            "not a 320: {e}"
        );
        Ok(())
    })
    .await;
}

/// A transaction open when the node dies cannot be replayed: 320 with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_falls_back_to_320() {
    e2e_test("an_open_transaction_falls_back_to_320", |t| async move {
        if !warren_only(&t, "an_open_transaction_falls_back_to_320") {
            return Ok(());
        }
        let proxy = t
            .proxy(ProxyConfig::report().nodes(&[1, 2, 3]).terminate())
            .await?;
        let uri = proxy.amqp_uri("");
        let admin = amqp::connect(&uri, "term-tx-admin").await?;
        amqp::declare_topology(&admin.create_channel().await?, true).await?;
        amqp::close(&admin).await;
        let conn = amqp::connect(&uri, "term-tx").await?;
        let errors = Errors::watch(&conn);
        let ch = conn.create_channel().await?;
        ch.tx_select().await?;
        ch.basic_publish(
            amqp::EXCHANGE,
            QUEUES[0].1,
            BasicPublishOptions::default(),
            b"in tx",
            Default::default(),
        )
        .await?;
        let victim = node_of(&t, "term-tx").await?;
        t.lab.run_async(&["kill", &victim.to_string()]).await?;
        let result = told(&conn, &errors, "open transaction").await;
        t.lab.run_async(&["restart", &victim.to_string()]).await?;
        let e = result?;
        eprintln!("[e2e] open transaction: the client was told: {e}");
        Ok(())
    })
    .await;
}

/// With no node to move to within `timeout failover`, the client is told so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_node_within_timeout_failover_falls_back_to_320() {
    e2e_test(
        "no_node_within_timeout_failover_falls_back_to_320",
        |t| async move {
            if !warren_only(&t, "no_node_within_timeout_failover_falls_back_to_320") {
                return Ok(());
            }
            let mut config = ProxyConfig::report().nodes(&[2]).terminate();
            config.failover = Some("3s".into());
            let proxy = t.proxy(config).await?;
            let conn = amqp::connect(&proxy.amqp_uri(""), "term-alone").await?;
            let errors = Errors::watch(&conn);
            let _ch = conn.create_channel().await?;
            let held_from = Instant::now();
            t.lab.run_async(&["kill", "2"]).await?;
            let result = told(&conn, &errors, "timeout failover").await;
            let held = held_from.elapsed();
            t.lab.run_async(&["restart", "2"]).await?;
            let e = result?;
            eprintln!("[e2e] no node: the client was held {held:?}, then told: {e}");
            Ok(())
        },
    )
    .await;
}

/// Reads the pika consumer's lines into `got` until `done(got)` or `within`; a `closed` line
/// is a failure.
async fn pika_lines(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    got: &mut std::collections::BTreeSet<u64>,
    done: impl Fn(&std::collections::BTreeSet<u64>) -> bool,
    within: Duration,
) -> Result<()> {
    let deadline = Instant::now() + within;
    while !done(got) && Instant::now() < deadline {
        if let Ok(Some(line)) = tokio::time::timeout_at(deadline, rx.recv()).await {
            ensure!(
                !line.starts_with("closed"),
                "pika's connection ended: {line}"
            );
            if let Some(id) = line
                .strip_prefix("msg ")
                .and_then(|v| v.parse::<u64>().ok())
            {
                got.insert(id);
            }
        }
    }
    Ok(())
}

/// A client in another language with no recovery of its own (Python's pika): its node is
/// killed, it keeps its connection and goes on consuming.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pika_consumer_outlives_a_killed_node() {
    e2e_test("a_pika_consumer_outlives_a_killed_node", |t| async move {
        if !warren_only(&t, "a_pika_consumer_outlives_a_killed_node") {
            return Ok(());
        }
        use tokio::io::{AsyncBufReadExt, BufReader};
        let proxy = t.proxy(ProxyConfig::report().nodes(&[1, 2, 3]).terminate()).await?;
        let uri = proxy.amqp_uri("");
        let admin = amqp::connect(&uri, "pika-admin").await?;
        amqp::declare_topology(&admin.create_channel().await?, true).await?;
        amqp::close(&admin).await;
        let script = warren_e2e::lab::workspace_root().join("e2e/clients/pika_consumer.py");
        let mut child = tokio::process::Command::new("/usr/bin/python3")
            .arg(&script)
            .arg(proxy.config.front_port.to_string())
            .arg(QUEUES[0].0)
            .arg("pika-consumer")
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting the pika consumer (Debian's python3-pika)")?;
        let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await.context("pika did not start")?;
        ensure!(first.as_deref() == Some("consuming"), "pika: {first:?}");
        let publisher = Publisher::start(&uri, "pika-publisher", QUEUES[0].1, Duration::from_millis(10)).await?;
        let mut got = std::collections::BTreeSet::new();
        pika_lines(&mut rx, &mut got, |g| g.len() >= 50, Duration::from_secs(20)).await?;
        ensure!(got.len() >= 50, "pika consumed only {} messages", got.len());
        let victim = node_of(&t, "pika-consumer").await?;
        let mark = proxy.log.mark();
        t.lab.run_async(&["kill", &victim.to_string()]).await?;
        let result = async {
            proxy
                .log
                .wait_for("\"pika-consumer\"} moved from", mark, Duration::from_secs(30))
                .await
                .context("warren did not move the pika consumer")?;
            let after = got.len();
            pika_lines(&mut rx, &mut got, |g| g.len() >= after + 100, Duration::from_secs(30)).await?;
            ensure!(got.len() >= after + 100, "pika did not go on consuming after the kill ({after} then {})", got.len());
            let (pub_conn, confirmed) = publisher.stop().await?;
            pika_lines(&mut rx, &mut got, |g| confirmed.is_subset(g), Duration::from_secs(30)).await?;
            ensure!(confirmed.is_subset(&got), "pika missed confirmed messages: {:?}", confirmed.difference(&got).take(10).collect::<Vec<_>>());
            ensure!(child.try_wait()?.is_none(), "the pika consumer exited");
            eprintln!("[e2e] pika consumer kept its connection through kill -9 of node {victim}; {} confirmed, all consumed", confirmed.len());
            amqp::close(&pub_conn).await;
            Ok(())
        }
        .await;
        t.lab.run_async(&["restart", &victim.to_string()]).await?;
        result
    })
    .await;
}

/// The field report's scenario in terminate mode: four consumers on the report's four
/// queues and a publisher; node 2 is killed. Every consumer keeps its connection (the
/// workload would reconnect a consumer whose connection ended, as pm2 did: it must not
/// have to), and every confirmed message reaches every queue it was routed to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_consumers_keep_their_connections_when_node_2_dies() {
    e2e_test("report_consumers_keep_their_connections_when_node_2_dies", |t| async move {
        if !warren_only(&t, "report_consumers_keep_their_connections_when_node_2_dies") {
            return Ok(());
        }
        use warren_e2e::workload::Clients;
        let proxy = t.proxy(ProxyConfig::report().terminate()).await?;
        let uri = proxy.amqp_uri("");
        let admin = amqp::connect(&uri, "report-term-admin").await?;
        amqp::declare_topology(&admin.create_channel().await?, true).await?;
        amqp::close(&admin).await;
        let mut clients = Clients::new();
        clients.spawn_consumers(&uri, "report-term");
        let board = clients.board.clone();
        board
            .wait("4 consumers", Duration::from_secs(20), |o| (o.sessions.len() == 4).then_some(()))
            .await?;
        clients.spawn_publisher(&uri, "report-term-publisher", Duration::from_millis(20));
        board
            .wait("30 messages through", Duration::from_secs(20), |o| {
                let first: Vec<_> = o.confirmed.iter().take(30).map(|(_, id, k)| (*id, *k)).collect();
                (first.len() == 30 && o.missing(&first).is_empty()).then_some(())
            })
            .await?;
        let mark = proxy.log.mark();
        t.lab.run_async(&["kill", "2"]).await?;
        let result = async {
            proxy
                .log
                .wait_for("moved from rabbitmq_cluster_back/clusterRabbit2", mark, Duration::from_secs(30))
                .await
                .context("warren moved no session off node 2")?;
            let since = Instant::now();
            board
                .wait("60 more messages through", Duration::from_secs(30), |o| {
                    let later = o.confirmed_since(since);
                    (later.len() >= 60 && o.missing(&later).is_empty()).then_some(())
                })
                .await?;
            let drained: Vec<_> = board.read(|o| o.confirmed.iter().map(|(_, id, k)| (*id, *k)).collect());
            board
                .wait("every confirmed message consumed", Duration::from_secs(30), |o| {
                    o.missing(&drained).is_empty().then_some(())
                })
                .await?;
            let (sessions, ended, errors) = board.read(|o| {
                (
                    o.sessions.len(),
                    o.sessions.iter().filter(|s| s.ended_at.is_some()).count(),
                    o.publisher_errors.clone(),
                )
            });
            let moves = proxy.log.dump().lines().filter(|l| l.contains("moved from")).count();
            eprintln!(
                "[e2e] report scenario, terminate mode: {sessions} consumer sessions (4 at the start), {ended} ended, {moves} log lines of moves, {} confirmed",
                drained.len()
            );
            ensure!(sessions == 4 && ended == 0, "consumers reconnected: {sessions} sessions, {ended} ended");
            ensure!(errors.is_empty(), "the publisher saw errors: {errors:?}");
            Ok(())
        }
        .await;
        clients.stop().await;
        t.lab.run_async(&["restart", "2"]).await?;
        result
    })
    .await;
}

/// `rebalance` in terminate mode: when node 3 comes back, warren moves sessions onto it
/// (planned moves), and no client notices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_moves_sessions_onto_a_returning_node_unnoticed() {
    e2e_test("rebalance_moves_sessions_onto_a_returning_node_unnoticed", |t| async move {
        if !warren_only(&t, "rebalance_moves_sessions_onto_a_returning_node_unnoticed") {
            return Ok(());
        }
        let mut config = ProxyConfig::report().nodes(&[1, 2, 3]).terminate();
        config.rebalance = Some("window 2s batch 2".into());
        let proxy = t.proxy(config).await?;
        let uri = proxy.amqp_uri("");
        let admin = amqp::connect(&uri, "rb-admin").await?;
        amqp::declare_topology(&admin.create_channel().await?, true).await?;
        amqp::close(&admin).await;
        let mark = proxy.log.mark();
        t.lab.run_async(&["stop-app", "3"]).await?;
        let result = async {
            proxy.wait_server_state("clusterRabbit3", "DOWN", mark, Duration::from_secs(30)).await?;
            let mut consumers = Vec::new();
            for i in 0..6 {
                consumers.push(Consumer::start(&uri, &format!("rb-consumer-{i}"), QUEUES[i % 4].0, 50).await?);
            }
            let mark = proxy.log.mark();
            t.lab.run_async(&["start-app", "3"]).await?;
            proxy.wait_server_state("clusterRabbit3", "UP", mark, Duration::from_secs(60)).await?;
            proxy
                .log
                .wait_for("to rabbitmq_cluster_back/clusterRabbit3 (planned)", mark, Duration::from_secs(30))
                .await
                .context("no session was moved onto node 3")?;
            // Every consumer still consumes on its own connection.
            let publisher = Publisher::start(&uri, "rb-publisher", amqp::COMMON_KEY, Duration::from_millis(5)).await?;
            let mut seen = consumers[1].delivered.clone();
            tokio::time::timeout(Duration::from_secs(10), seen.wait_for(|n| *n >= 20))
                .await
                .context("no deliveries after the rebalance")??;
            let (pub_conn, confirmed) = publisher.stop().await?;
            let sessions = proxy.stats_get(";sessions").await?;
            let moved = sessions
                .split("},{")
                .filter(|s| s.contains("\"rb-consumer-") && s.contains("clusterRabbit3"))
                .count();
            ensure!(moved > 0, "the sessions view shows no consumer on node 3: {sessions}");
            // Consumers sharing the common-key queue split its messages: together they get all.
            // The two consumers of that queue share its messages: together they get all.
            let sharing: Vec<usize> = (0..6).filter(|i| QUEUES[i % 4].0 == QUEUES[1].0).collect();
            let consumed = |consumers: &Vec<Consumer>| -> std::collections::BTreeSet<u64> {
                sharing.iter().flat_map(|&i| consumers[i].ids()).collect()
            };
            let mut watches: Vec<_> = sharing.iter().map(|&i| consumers[i].delivered.clone()).collect();
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut all = consumed(&consumers);
            while !confirmed.is_subset(&all) {
                let changed = futures_util::future::select_all(watches.iter_mut().map(|w| Box::pin(w.changed())));
                if tokio::time::timeout_at(deadline, changed).await.is_err() {
                    break;
                }
                all = consumed(&consumers);
            }
            ensure!(confirmed.is_subset(&all), "messages to {} were not all consumed", QUEUES[1].0);
            for c in consumers {
                let errors = c.errors.clone();
                let conn = c.stop();
                ensure!(conn.status().connected() && errors.list().is_empty(), "a consumer saw its connection end: {:?}", errors.list());
                amqp::close(&conn).await;
            }
            amqp::close(&pub_conn).await;
            eprintln!("[e2e] rebalance: {moved} of 6 sessions now on node 3 (sessions view), every consumer kept its connection");
            Ok(())
        }
        .await;
        let _ = t.lab.run_async(&["start-app", "3"]).await;
        result
    })
    .await;
}
