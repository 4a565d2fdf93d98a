//! The field report's scenario, end to end: real RabbitMQ nodes behind the proxy under test
//! (warren by default, HAProxy with `WARREN_E2E_PROXY=haproxy`), clients through its frontend.
//!
//! Run: `scripts/rabbit-cluster start && WARREN_E2E_CLUSTER=external cargo test -p warren-e2e
//! -- --test-threads=1 --nocapture` (without the env var, the first test starts the cluster).

use anyhow::{ensure, Context, Result};
use std::collections::BTreeMap;
use tokio::time::{Duration, Instant};
use warren_e2e::amqp::{self, RawQuietConsumer, QUEUES};
use warren_e2e::proxy::ProxyConfig;
use warren_e2e::timeline::Timeline;
use warren_e2e::workload::Clients;
use warren_e2e::{e2e_test, TestCtx};

/// Report §3: publishing with `clusterRabbit1key` reaches consumer 1 only;
/// `clusterRabbitCommonKey` reaches consumers 2 and 4 only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_routes_like_the_report() {
    e2e_test("topology_routes_like_the_report", |t| async move {
        let proxy = t.proxy(ProxyConfig::report()).await?;
        let uri = proxy.amqp_uri("");
        let admin = amqp::connect(&uri, "topology-admin").await?;
        amqp::declare_topology(&admin.create_channel().await?, false).await?;

        let mut clients = Clients::new();
        clients.spawn_consumers(&uri, "topo");
        clients
            .board
            .wait("4 consumers", Duration::from_secs(20), |o| {
                (o.sessions.len() == 4).then_some(())
            })
            .await?;
        // a publisher of our own, to control keys and ids exactly
        let ch = amqp::connect(&uri, "topology-publisher")
            .await?
            .create_channel()
            .await?;
        ch.confirm_select(Default::default()).await?;
        let sends = [
            (1u64, amqp::KEY1),
            (2, amqp::COMMON_KEY),
            (3, amqp::KEY1),
            (4, amqp::COMMON_KEY),
        ];
        for (id, key) in sends {
            let confirm = ch
                .basic_publish(
                    amqp::EXCHANGE,
                    key,
                    Default::default(),
                    id.to_string().as_bytes(),
                    Default::default(),
                )
                .await?
                .await?;
            ensure!(confirm.is_ack(), "message {id} not confirmed: {confirm:?}");
        }
        let got = clients
            .board
            .wait("deliveries of 1..4", Duration::from_secs(10), |o| {
                let n: usize = o.consumed.iter().map(|s| s.len()).sum();
                (n >= 6).then(|| o.consumed.clone())
            })
            .await?;
        // nothing else may trickle in: the queues are drained when the expected 6 arrived, and
        // a stray delivery would have been counted above (it is checked here as well)
        let expect: [Vec<u64>; 4] = [vec![1, 3], vec![2, 4], vec![], vec![2, 4]];
        for (q, want) in expect.iter().enumerate() {
            let have: Vec<u64> = got[q].iter().copied().collect();
            ensure!(
                &have == want,
                "consumer {} ({}) got {have:?}, expected {want:?}",
                q + 1,
                QUEUES[q].0
            );
        }
        eprintln!(
            "[e2e] routing: {:?}",
            got.iter()
                .map(|s| s.iter().copied().collect::<Vec<_>>())
                .collect::<Vec<_>>()
        );
        clients.stop().await;
        amqp::close(&admin).await;
        Ok(())
    })
    .await;
}

/// Report §2: `weight 30` on both servers: 60 connections are split 30/30 between the nodes.
/// Also weights 30/60 (1:2), which only a weighted round robin gets right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_round_robin_over_real_nodes() {
    e2e_test("weighted_round_robin_over_real_nodes", |t| async move {
        for (weights, expect) in [([30, 30], [30usize, 30usize]), ([30, 60], [20, 40])] {
            let proxy = t.proxy(ProxyConfig::report().weights(&weights)).await?;
            let uri = proxy.amqp_uri("");
            let prefix = format!("w{}-{}", weights[0], weights[1]);
            let mut conns = Vec::new();
            for i in 0..60 {
                conns.push(amqp::connect(&uri, &format!("{prefix}-{i}")).await?);
            }
            let per_node = count_by_node(&t, &format!("{prefix}-"), 60).await?;
            eprintln!("[e2e] weights {weights:?}: 60 connections per node {per_node:?}");
            for c in conns {
                amqp::close(&c).await;
            }
            let got = [
                per_node.get(&1).copied().unwrap_or(0),
                per_node.get(&2).copied().unwrap_or(0),
            ];
            // a smooth weighted round robin is exact over whole cycles; allow one either way
            // for where in the cycle the proxy starts
            ensure!(
                got[0].abs_diff(expect[0]) <= 1
                    && got[1].abs_diff(expect[1]) <= 1
                    && got[0] + got[1] == 60,
                "weights {weights:?}: got {got:?} connections on nodes 1/2, expected {expect:?}"
            );
            proxy.stop().await?;
        }
        Ok(())
    })
    .await;
}

/// Counts connections whose name starts with `prefix` per node, waiting until `n` are listed
/// (the management view lags the handshake by a few ms).
async fn count_by_node(t: &TestCtx, prefix: &str, n: usize) -> Result<BTreeMap<usize, usize>> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let conns = t.lab.connections(1).await?;
        let mut per_node = BTreeMap::new();
        for (name, node) in conns.iter().filter(|(name, _)| name.starts_with(prefix)) {
            let _ = name;
            *per_node.entry(*node).or_insert(0) += 1;
        }
        if per_node.values().sum::<usize>() >= n || Instant::now() > deadline {
            return Ok(per_node);
        }
        // no event tells when the broker lists a connection: poll, bounded
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Report §1/§4: a consumer that receives nothing, with heartbeats off, is cut by
/// `timeout client`/`timeout server` (5 s here, 1 min in the report). A client with a 2 s
/// heartbeat on the same proxy stays connected: the heartbeat frames count as traffic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_consumer_is_cut_by_tcp_timeouts() {
    e2e_test("quiet_consumer_is_cut_by_tcp_timeouts", |t| async move {
        let proxy = t.proxy(ProxyConfig::report().timeouts("5s", "5s")).await?;
        let admin = amqp::connect(&proxy.amqp_uri(""), "quiet-admin").await?;
        amqp::declare_topology(&admin.create_channel().await?, false).await?;
        amqp::close(&admin).await;

        let beating = amqp::connect(&proxy.amqp_uri("heartbeat=2"), "quiet-heartbeat-2s").await?;
        let beating_ch = amqp::consumer_channel(&beating).await?;
        let _beating_consumer = beating_ch
            .basic_consume(
                QUEUES[1].0,
                "beating",
                Default::default(),
                Default::default(),
            )
            .await?;

        let quiet =
            RawQuietConsumer::start(("127.0.0.1", proxy.config.front_port), QUEUES[0].0, 0).await?;
        let consuming = Instant::now();
        let how = tokio::time::timeout(Duration::from_secs(30), quiet.wait_end())
            .await
            .context("the quiet consumer was not cut within 30 s")?;
        let after = consuming.elapsed();
        eprintln!(
            "[e2e] quiet consumer (heartbeat 0) cut after {:.2}s: {how}",
            after.as_secs_f64()
        );
        ensure!(
            after >= Duration::from_secs(4),
            "cut after {after:?}: before the 5 s timeout"
        );
        ensure!(
            after <= Duration::from_secs(15),
            "cut after {after:?}: far later than the 5 s timeout"
        );
        ensure!(
            beating.status().connected(),
            "the consumer with a 2 s heartbeat was cut too: {:?}",
            beating.status().state()
        );
        amqp::close(&beating).await;
        Ok(())
    })
    .await;
}

/// How node 2 is failed.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// `kill -9` of its beam: its sockets close at once.
    Kill,
    /// `rabbitmqctl stop_app`: RabbitMQ closes its listener and its connections, the Erlang VM
    /// stays up.
    StopApp,
}

/// Report §3: node 2 is shut down; the consumers connected to it through the proxy lose their
/// connection, reconnect through the proxy to a living node and resume; everything published
/// is consumed; new connections through the proxy never fail meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_when_node_is_killed() {
    e2e_test("failover_when_node_is_killed", |t| failover(t, Fault::Kill)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_when_node_app_is_stopped() {
    e2e_test("failover_when_node_app_is_stopped", |t| {
        failover(t, Fault::StopApp)
    })
    .await;
}

async fn failover(t: TestCtx, fault: Fault) -> Result<()> {
    let proxy = t.proxy(ProxyConfig::report()).await?;
    let uri = proxy.amqp_uri("");
    let admin = amqp::connect(&uri, "failover-admin").await?;
    // quorum queues: replicated on all three nodes, so they outlive node 2
    amqp::declare_topology(&admin.create_channel().await?, true).await?;
    amqp::close(&admin).await;

    let prefix = format!("failover-{fault:?}").to_lowercase();
    let mut clients = Clients::new();
    clients.spawn_consumers(&uri, &prefix);
    let board = clients.board.clone();
    board
        .wait("4 consumers", Duration::from_secs(20), |o| {
            (o.sessions.len() == 4).then_some(())
        })
        .await?;

    // where did the consumers land? (round robin over two servers: two on each node)
    // sessions are listed in the order they started consuming, not in queue order
    let names: Vec<(usize, String)> = board.read(|o| {
        o.sessions
            .iter()
            .map(|s| (s.queue, s.name.clone()))
            .collect()
    });
    let placed = placement(
        &t,
        &names.iter().map(|(_, n)| n.clone()).collect::<Vec<_>>(),
    )
    .await?;
    let on_node2: Vec<usize> = names
        .iter()
        .filter(|(_, n)| placed.get(n) == Some(&2))
        .map(|(q, _)| *q)
        .collect();
    eprintln!(
        "[e2e] consumers on node 2 via the proxy: {:?}",
        on_node2.iter().map(|q| QUEUES[*q].0).collect::<Vec<_>>()
    );
    ensure!(
        !on_node2.is_empty(),
        "no consumer landed on node 2 ({placed:?}): nothing to fail over"
    );

    clients.spawn_publisher(
        &uri,
        &format!("{prefix}-publisher"),
        Duration::from_millis(20),
    );
    clients.spawn_prober(&uri, Duration::from_millis(50));
    // steady state first: 30 messages confirmed and consumed where they belong
    board
        .wait(
            "steady flow before the failure",
            Duration::from_secs(20),
            |o| {
                let first: Vec<_> = o
                    .confirmed
                    .iter()
                    .take(30)
                    .map(|(_, id, k)| (*id, *k))
                    .collect();
                (first.len() == 30 && o.missing(&first).is_empty()).then_some(())
            },
        )
        .await?;

    let timeline = Timeline::new();
    let mark = proxy.log.mark();
    let t_fail = match fault {
        Fault::Kill => {
            // between two probes, so no probe is mid-handshake on node 2 when it dies
            let _between = clients.probe_lock.lock().await;
            let at = Instant::now();
            t.lab.run_async(&["kill", "2"]).await?;
            at
        }
        Fault::StopApp => {
            // Probes pause while the app stops: a handshake already on node 2 when RabbitMQ
            // closes its connections fails whatever the proxy does (HAProxy too); the probes
            // check that every connection *started* during the failover succeeds.
            let _between = clients.probe_lock.lock().await;
            let at = Instant::now();
            t.lab.run_async(&["stop-app", "2"]).await?;
            at
        }
    };
    timeline.set_zero(t_fail);
    timeline.now(format!("fault command returned ({fault:?} node 2)"));
    timeline.at(t_fail, format!("fault injected ({fault:?} node 2)"));

    let t_down = proxy
        .wait_server_state("clusterRabbit2", "DOWN", mark, Duration::from_secs(30))
        .await?;
    timeline.at(t_down, "proxy logs clusterRabbit2 DOWN");

    // each consumer that was on node 2 ends its session and consumes again on a new one
    let reconnected = board
        .wait(
            "consumers of node 2 to reconnect",
            Duration::from_secs(60),
            |o| {
                let mut times = Vec::new();
                for &q in &on_node2 {
                    let s = o.sessions_of(q);
                    let again = s.iter().skip(1).find(|s| s.consuming_at > t_fail)?;
                    times.push((
                        q,
                        s[0].ended_at?,
                        s[0].end_reason.clone().unwrap_or_default(),
                        again.consuming_at,
                        again.name.clone(),
                    ));
                }
                Some(times)
            },
        )
        .await?;
    for (q, ended, reason, again, name) in &reconnected {
        timeline.at(
            *ended,
            format!(
                "consumer {} ({}) connection ended: {reason}",
                q + 1,
                QUEUES[*q].0
            ),
        );
        timeline.at(
            *again,
            format!("consumer {} reconnected through the proxy as {name}", q + 1),
        );
    }
    let t_reconnected = reconnected.iter().map(|r| r.3).max().expect("non-empty");
    // the new sessions must be on a living node
    let new_names: Vec<String> = reconnected.iter().map(|r| r.4.clone()).collect();
    let placed_again = placement(&t, &new_names).await?;
    ensure!(
        placed_again.values().all(|&n| n != 2),
        "reconnected consumers landed on the failed node: {placed_again:?}"
    );

    // keep publishing a while after the reconnection, then check everything arrived
    let target = board.read(|o| o.confirmed.len()) + 100;
    board
        .wait(
            "100 more confirmed publishes",
            Duration::from_secs(30),
            |o| (o.confirmed.len() >= target).then_some(()),
        )
        .await?;
    let sent: Vec<(u64, &'static str)> =
        board.read(|o| o.confirmed.iter().map(|(_, id, k)| (*id, *k)).collect());
    let after_fail = board.read(|o| o.confirmed_since(t_fail).len());
    board
        .wait(
            "every confirmed message consumed",
            Duration::from_secs(30),
            |o| o.missing(&sent).is_empty().then_some(()),
        )
        .await
        .with_context(|| {
            format!(
                "missing (id, queue): {:?}",
                board.read(|o| o.missing(&sent))
            )
        })?;

    let (first_any, first_reconnected, misrouted, probes, failed_probes, pub_errors, others_ended) =
        board.read(|o| {
            let first_any = o
                .deliveries
                .iter()
                .find(|(at, _, _)| *at > t_fail)
                .map(|d| d.0);
            let back: BTreeMap<usize, Instant> = reconnected.iter().map(|r| (r.0, r.3)).collect();
            let first_re = o
                .deliveries
                .iter()
                .find(|(at, q, _)| back.get(q).is_some_and(|b| at >= b))
                .map(|d| d.0);
            let failed: Vec<_> = o
                .probes
                .iter()
                .filter(|(_, r)| r.is_err())
                .cloned()
                .collect();
            let others_ended: Vec<_> = o
                .sessions
                .iter()
                .filter(|s| !on_node2.contains(&s.queue) && s.ended_at.is_some())
                .map(|s| (s.name.clone(), s.end_reason.clone()))
                .collect();
            (
                first_any,
                first_re,
                o.misrouted(),
                o.probes.len(),
                failed,
                o.publisher_errors.clone(),
                others_ended,
            )
        });
    if let Some(at) = first_any {
        timeline.at(
            at,
            "first message consumed after the failure (any consumer)",
        );
    }
    if let Some(at) = first_reconnected {
        timeline.at(at, "first message consumed by a reconnected consumer");
    }
    for (at, e) in &pub_errors {
        timeline.at(*at, format!("publisher: {e}"));
    }
    for (at, e) in &failed_probes {
        timeline.at(*at, format!("PROBE FAILED: {e:?}"));
    }
    clients.stop().await;
    eprintln!(
        "{}",
        timeline.render(&format!("{fault:?} node 2 via {}", t.kind.name()))
    );
    eprintln!(
        "[e2e] {fault:?}: {} messages confirmed ({after_fail} after the failure), all consumed; \
         {probes} probe connections, {} failed; DOWN after {} ms, consumers back after {} ms",
        sent.len(),
        failed_probes.len(),
        timeline.offset_ms(t_down),
        timeline.offset_ms(t_reconnected)
    );

    ensure!(
        misrouted.is_empty(),
        "messages consumed from the wrong queue: {misrouted:?}"
    );
    ensure!(
        failed_probes.is_empty(),
        "new connections through the proxy failed during the failover: {failed_probes:?}"
    );
    ensure!(
        others_ended.is_empty(),
        "consumers on node 1 lost their connection too: {others_ended:?}"
    );
    ensure!(
        first_reconnected.is_some(),
        "reconnected consumers consumed nothing"
    );

    match fault {
        Fault::Kill => t.lab.run_async(&["restart", "2"]).await?,
        Fault::StopApp => t.lab.run_async(&["start-app", "2"]).await?,
    };
    Ok(())
}

/// Node of each named connection, waiting until all of them are listed by the broker.
async fn placement(t: &TestCtx, names: &[String]) -> Result<BTreeMap<String, usize>> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let all: BTreeMap<String, usize> = t.lab.connections(1).await?.into_iter().collect();
        let found: BTreeMap<String, usize> = names
            .iter()
            .filter_map(|n| all.get(n).map(|node| (n.clone(), *node)))
            .collect();
        if found.len() == names.len() {
            return Ok(found);
        }
        ensure!(
            Instant::now() < deadline,
            "connections {names:?} not all listed by the broker: {found:?}"
        );
        // no event says when the broker lists a connection: poll, bounded
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Report §4 note 2: a failed node is dropped until it recovers. Node 2 is killed, the proxy
/// marks it DOWN and sends new connections elsewhere; node 2 is started again, the proxy marks
/// it UP after `rise` good checks, and new connections reach it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_comes_back_after_rise_checks() {
    e2e_test("node_comes_back_after_rise_checks", |t| async move {
        let config = ProxyConfig::report();
        let (inter, rise) = (Duration::from_millis(config.inter_ms as u64), config.rise);
        let proxy = t.proxy(config).await?;
        let uri = proxy.amqp_uri("");
        let timeline = Timeline::new();

        let mark = proxy.log.mark();
        let t_kill = Instant::now();
        timeline.set_zero(t_kill);
        t.lab.run_async(&["kill", "2"]).await?;
        timeline.at(t_kill, "kill -9 node 2");
        let t_down = proxy.wait_server_state("clusterRabbit2", "DOWN", mark, Duration::from_secs(30)).await?;
        timeline.at(t_down, "proxy logs clusterRabbit2 DOWN");

        // while it is down, every new connection goes to node 1
        let mut conns = Vec::new();
        for i in 0..10 {
            conns.push(amqp::connect(&uri, &format!("back-down-{i}")).await?);
        }
        let down = count_by_node(&t, "back-down-", 10).await?;
        for c in conns.drain(..) {
            amqp::close(&c).await;
        }
        ensure!(!down.contains_key(&2) && down.get(&1) == Some(&10), "with node 2 DOWN, connections went to {down:?}");

        let mark = proxy.log.mark();
        let t_restart = Instant::now();
        timeline.at(t_restart, "restart node 2");
        t.lab.run_async(&["restart", "2"]).await?;
        // "restart" returns once node 2 serves AMQP and is back in the cluster
        let t_served = Instant::now();
        timeline.at(t_served, "node 2 serves AMQP again, back in the cluster");
        let t_up = proxy.wait_server_state("clusterRabbit2", "UP", mark, Duration::from_secs(30)).await?;
        timeline.at(t_up, "proxy logs clusterRabbit2 UP");
        eprintln!("{}", timeline.render(&format!("node 2 back via {}", t.kind.name())));
        // UP needs `rise` consecutive good checks, `inter` apart: not before (rise-1)*inter after
        // the restart began (the port opens somewhere in between; no tighter bound is knowable)
        let min_up = inter * (rise - 1);
        ensure!(t_up >= t_restart + min_up, "UP {:?} after the restart began: sooner than {rise} checks", t_up - t_restart);

        for i in 0..10 {
            conns.push(amqp::connect(&uri, &format!("back-up-{i}")).await?);
        }
        let up = count_by_node(&t, "back-up-", 10).await?;
        for c in conns {
            amqp::close(&c).await;
        }
        eprintln!("[e2e] 10 connections while node 2 was DOWN: {down:?}; 10 after it came back UP: {up:?}");
        ensure!(up.get(&2).copied().unwrap_or(0) >= 4, "after UP, node 2 got too few of 10 connections: {up:?}");
        Ok(())
    })
    .await;
}
