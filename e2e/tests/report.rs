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
        clients.board.wait("4 consumers", Duration::from_secs(20), |o| (o.sessions.len() == 4).then_some(())).await?;
        // a publisher of our own, to control keys and ids exactly
        let ch = amqp::connect(&uri, "topology-publisher").await?.create_channel().await?;
        ch.confirm_select(Default::default()).await?;
        let sends = [(1u64, amqp::KEY1), (2, amqp::COMMON_KEY), (3, amqp::KEY1), (4, amqp::COMMON_KEY)];
        for (id, key) in sends {
            let confirm = ch
                .basic_publish(amqp::EXCHANGE, key, Default::default(), id.to_string().as_bytes(), Default::default())
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
            ensure!(&have == want, "consumer {} ({}) got {have:?}, expected {want:?}", q + 1, QUEUES[q].0);
        }
        eprintln!("[e2e] routing: {:?}", got.iter().map(|s| s.iter().copied().collect::<Vec<_>>()).collect::<Vec<_>>());
        clients.stop().await;
        admin.close(200, "done").await?;
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
                c.close(200, "done").await?;
            }
            let got = [per_node.get(&1).copied().unwrap_or(0), per_node.get(&2).copied().unwrap_or(0)];
            // a smooth weighted round robin is exact over whole cycles; allow one either way
            // for where in the cycle the proxy starts
            ensure!(
                got[0].abs_diff(expect[0]) <= 1 && got[1].abs_diff(expect[1]) <= 1 && got[0] + got[1] == 60,
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
        admin.close(200, "done").await?;

        let beating = amqp::connect(&proxy.amqp_uri("heartbeat=2"), "quiet-heartbeat-2s").await?;
        let beating_ch = amqp::consumer_channel(&beating).await?;
        let _beating_consumer = beating_ch
            .basic_consume(QUEUES[1].0, "beating", Default::default(), Default::default())
            .await?;

        let quiet = RawQuietConsumer::start(("127.0.0.1", proxy.config.front_port), QUEUES[0].0, 0).await?;
        let consuming = Instant::now();
        let how = tokio::time::timeout(Duration::from_secs(30), quiet.wait_end())
            .await
            .context("the quiet consumer was not cut within 30 s")?;
        let after = consuming.elapsed();
        eprintln!("[e2e] quiet consumer (heartbeat 0) cut after {:.2}s: {how}", after.as_secs_f64());
        ensure!(after >= Duration::from_secs(4), "cut after {after:?}: before the 5 s timeout");
        ensure!(after <= Duration::from_secs(15), "cut after {after:?}: far later than the 5 s timeout");
        ensure!(
            beating.status().connected(),
            "the consumer with a 2 s heartbeat was cut too: {:?}",
            beating.status().state()
        );
        beating.close(200, "done").await?;
        Ok(())
    })
    .await;
}
