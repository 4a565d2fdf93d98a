//! Client identity through the proxy, against a real RabbitMQ node that expects the PROXY
//! protocol (`proxy_protocol = true`): a balancer in front of the proxy says who the client
//! is (`accept-proxy`), the proxy passes it on (`send-proxy-v2`, checks with
//! `check-send-proxy`), and `rabbitmqctl list_connections peer_host peer_port` shows that
//! client, not the proxy. Runs against HAProxy too (same config lines).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use warren_e2e::lab::workspace_root;
use warren_e2e::proxy::{ProxyConfig, ServerLine};
use warren_e2e::{amqp, e2e_test};

/// A one-node "cluster" of its own (ports apart from the shared cluster's), whose node
/// requires a PROXY header on every connection. Stopped and removed on drop.
struct ProxyProtocolNode {
    lab: PathBuf,
}

const AMQP_PORT: u16 = 5695;

impl ProxyProtocolNode {
    fn start() -> Result<ProxyProtocolNode> {
        let node = ProxyProtocolNode {
            lab: std::env::temp_dir().join(format!("warren-e2e-pp-{}", std::process::id())),
        };
        node.run(&["start"])?;
        Ok(node)
    }

    fn run(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(workspace_root().join("scripts/rabbit-cluster"))
            .args(args)
            .env("N", "1")
            .env("LAB", &self.lab)
            .env("AMQP_BASE", AMQP_PORT.to_string())
            .env("DIST_BASE", "25695")
            .env("EPMD_PORT", "4372")
            .env("PROXY_PROTOCOL", "1")
            // Not the suite's management plugin: its port is the main cluster's.
            .env("MANAGEMENT", "0")
            .output()
            .context("running rabbit-cluster")?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() {
            bail!("rabbit-cluster {} failed:\n{text}", args.join(" "));
        }
        Ok(text)
    }
}

impl Drop for ProxyProtocolNode {
    fn drop(&mut self) {
        let _ = self.run(&["clean"]);
        let _ = std::fs::remove_dir_all(&self.lab);
    }
}

/// The balancer in front: prepends a PROXY v1 header naming `client` to each connection and
/// relays it to `to`.
async fn balancer_in_front(to: u16, client: &'static str) -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let port = l.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = l.accept().await {
            tokio::spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", to)).await else {
                    return;
                };
                if outbound
                    .write_all(format!("PROXY TCP4 {client} 198.51.100.1 4242 5672\r\n").as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    Ok(port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_sees_the_real_client_through_accept_proxy_and_send_proxy() {
    e2e_test(
        "the_node_sees_the_real_client_through_accept_proxy_and_send_proxy",
        |t| async move {
            let node = tokio::task::spawn_blocking(ProxyProtocolNode::start).await??;
            let mut config = ProxyConfig::report();
            config.servers = vec![ServerLine {
                name: "ppnode".into(),
                port: AMQP_PORT,
                weight: 1,
            }];
            config.bind_options = "accept-proxy".into();
            config.server_options = "send-proxy-v2 check-send-proxy".into();
            let proxy = t.proxy(config).await?;
            let front = balancer_in_front(proxy.config.front_port, "203.0.113.7").await?;

            let uri = format!("amqp://guest:guest@127.0.0.1:{front}/%2f");
            let conn = amqp::connect(&uri, "client-identity-e2e")
                .await
                .context("AMQP through balancer and proxy")?;
            let ch = conn
                .create_channel()
                .await
                .context("a channel: the session is usable")?;
            let out = tokio::task::spawn_blocking(move || {
                let out = node.run(&[
                    "ctl",
                    "1",
                    "list_connections",
                    "--no-table-headers",
                    "peer_host",
                    "peer_port",
                    "client_properties",
                ]);
                drop(node);
                out
            })
            .await??;
            let line = out
                .lines()
                .find(|l| l.contains("client-identity-e2e"))
                .with_context(|| format!("connection not listed:\n{out}"))?;
            let fields: Vec<&str> = line.split('\t').collect();
            ensure!(
                fields.first() == Some(&"203.0.113.7") && fields.get(1) == Some(&"4242"),
                "the node should see 203.0.113.7:4242, not the proxy: {line}"
            );
            let logged = proxy.log.dump();
            ensure!(
                logged.contains("203.0.113.7"),
                "the proxy's log names the real client:\n{logged}"
            );
            eprintln!(
                "[e2e] {} passed the client 203.0.113.7:4242 on; the node lists it as the peer",
                proxy.kind.name()
            );
            drop(ch);
            Ok(())
        },
    )
    .await;
}
