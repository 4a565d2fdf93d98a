//! The field report, live: four consumers and a publisher through the proxy, node 2 killed
//! mid-way, messages per second before and after, and when the proxy and the clients reacted.
//!
//! Expects the cluster running (`scripts/rabbit-cluster start`); `scripts/demo` does it all.
//! Env: WARREN_BIN / WARREN_E2E_PROXY as in the tests; DEMO_PORT (10000), DEMO_STATS_PORT
//! (10080), DEMO_SECONDS (20), DEMO_KILL_AT (6), DEMO_THREE=1 to add node 3 as a server,
//! DEMO_MODE: `terminate` (warren's default here: clients keep their connections), `amqp`
//! (clients are told with 320 and reconnect) or `tcp` (the report's HAProxy behaviour).

use anyhow::Result;
use tokio::time::{Duration, Instant};
use warren_e2e::amqp::{self, QUEUES};
use warren_e2e::lab::Lab;
use warren_e2e::proxy::{Proxy, ProxyConfig, ProxyKind};
use warren_e2e::timeline::Timeline;
use warren_e2e::workload::Clients;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<()> {
    let lab = Lab::get()?;
    let mut config = ProxyConfig::report();
    config.front_port = env_num("DEMO_PORT", 10000) as u16;
    config.stats_port = env_num("DEMO_STATS_PORT", 10080) as u16;
    if std::env::var("DEMO_THREE").as_deref() == Ok("1") {
        config = config.with_node(3, 30);
    }
    let kind = ProxyKind::from_env()?;
    let mode = match (&kind, std::env::var("DEMO_MODE").as_deref()) {
        (ProxyKind::Haproxy, _) => "tcp".to_string(),
        (_, Ok(m)) => m.to_string(),
        (_, Err(_)) => "terminate".to_string(),
    };
    match mode.as_str() {
        "terminate" => config = config.terminate(),
        "amqp" => config = config.amqp(),
        _ => {}
    }
    println!("mode: {mode}");
    let (seconds, kill_at) = (env_num("DEMO_SECONDS", 20), env_num("DEMO_KILL_AT", 6));
    let proxy = Proxy::start(kind, config).await?;
    println!(
        "proxy: {} -f {}",
        proxy.kind.name(),
        proxy.cfg_path.display()
    );
    println!("stats page: {}", proxy.stats_url());
    let uri = proxy.amqp_uri("");

    let admin = amqp::connect(&uri, "demo-admin").await?;
    amqp::declare_topology(&admin.create_channel().await?, true).await?;
    amqp::close(&admin).await;

    let mut clients = Clients::new();
    clients.spawn_consumers(&uri, "demo");
    let board = clients.board.clone();
    board
        .wait("4 consumers", Duration::from_secs(20), |o| {
            (o.sessions.len() == 4).then_some(())
        })
        .await?;
    let where_: Vec<(String, usize)> = lab
        .connections(1)
        .await?
        .into_iter()
        .filter(|(n, _)| n.starts_with("demo-q"))
        .collect();
    println!("consumers (connection name -> node): {where_:?}");
    clients.spawn_publisher(&uri, "demo-publisher", Duration::from_millis(10));

    let timeline = Timeline::new();
    let start = Instant::now();
    let mark = proxy.log.mark();
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let (mut last_pub, mut last_del) = (0usize, 0usize);
    let mut killed = None;
    println!("\n  second  published/s  consumed/s  (per consumer)");
    for second in 1..=seconds {
        tick.tick().await;
        let (p, d, per_q) = board.read(|o| {
            let per_q: Vec<usize> = (0..4)
                .map(|q| o.deliveries.iter().filter(|x| x.1 == q).count())
                .collect();
            (o.confirmed.len(), o.deliveries.len(), per_q)
        });
        println!(
            "  {second:>6}  {:>11}  {:>10}  {per_q:?}{}",
            p - last_pub,
            d - last_del,
            if killed.is_some() {
                "  (node 2 down)"
            } else {
                ""
            }
        );
        (last_pub, last_del) = (p, d);
        if second == kill_at {
            let t = Instant::now();
            timeline.set_zero(t);
            lab.run_async(&["kill", "2"]).await?;
            timeline.at(t, "kill -9 node 2");
            println!("  ------  kill -9 node 2");
            killed = Some(t);
        }
    }
    // let the consumers drain what was confirmed up to now, then stop the clients (the
    // publisher goes on meanwhile: what it publishes later is not counted)
    let drained: Vec<_> = board.read(|o| o.confirmed.iter().map(|(_, id, k)| (*id, *k)).collect());
    let _ = board
        .wait("queues drained", Duration::from_secs(15), |o| {
            o.missing(&drained).is_empty().then_some(())
        })
        .await;
    clients.stop().await;

    if let Some(t_fail) = killed {
        if let Ok((_, at)) = proxy
            .log
            .wait_for(
                "Server rabbitmq_cluster_back/clusterRabbit2 is DOWN",
                mark,
                Duration::from_secs(1),
            )
            .await
        {
            timeline.at(at, "proxy marks clusterRabbit2 DOWN");
        }
        board.read(|o| {
            for s in &o.sessions {
                if let (Some(end), Some(why)) = (s.ended_at, &s.end_reason) {
                    timeline.at(
                        end,
                        format!("{} ({}) connection ended: {why}", s.name, QUEUES[s.queue].0),
                    );
                }
                if s.consuming_at > t_fail {
                    timeline.at(
                        s.consuming_at,
                        format!("{} consuming again through the proxy", s.name),
                    );
                }
            }
            for (at, e) in &o.publisher_errors {
                timeline.at(*at, format!("publisher: {e}"));
            }
            println!(
                "\n{} messages confirmed, {} deliveries; not consumed: {}",
                drained.len(),
                o.deliveries.len(),
                o.missing(&drained).len()
            );
            let missing = o.missing(&drained);
            if !missing.is_empty() {
                println!("not consumed (id, queue): {missing:?}");
            }
        });
        if let Ok((_, at)) = proxy
            .log
            .wait_for("moved from", mark, Duration::from_millis(1))
            .await
        {
            timeline.at(at, "warren moves the first session to a living node");
        }
        let (reconnections, pause) = board.read(|o| {
            let mut gaps: Vec<Duration> = o
                .deliveries
                .windows(2)
                .filter(|w| w[1].0 >= t_fail)
                .map(|w| w[1].0.duration_since(w[0].0))
                .collect();
            gaps.sort();
            (o.sessions.len().saturating_sub(4), gaps.last().copied())
        });
        let moves = proxy
            .log
            .dump()
            .lines()
            .filter(|l| l.contains("moved from"))
            .count();
        println!(
            "client reconnections: {reconnections}; sessions moved by warren: {moves}; longest pause in deliveries after the kill: {}",
            pause.map_or("-".to_string(), |p| format!("{} ms", p.as_millis()))
        );
        println!(
            "{}",
            timeline.render(&format!("kill -9 node 2 behind {}", proxy.kind.name()))
        );
    }
    println!(
        "proxy log:\n{}",
        proxy
            .log
            .dump()
            .lines()
            .filter(|l| l.contains("Server ")
                || l.contains("moved from")
                || l.contains("could not move"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    println!("bringing node 2 back...");
    lab.run_async(&["restart", "2"]).await?;
    proxy.stop().await?;
    Ok(())
}
