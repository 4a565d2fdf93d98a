//! AMQPS: an AMQP client speaks TLS to the proxy (`bind ... ssl crt <pem>`), which
//! terminates it and speaks plain AMQP to real RabbitMQ nodes. Runs against HAProxy too
//! (same config line), so the two can be compared.

use anyhow::{ensure, Context, Result};
use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::tcp::OwnedTLSConfig;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use warren_e2e::proxy::ProxyConfig;
use warren_e2e::{amqp, e2e_test};

/// A CA and a certificate for `localhost` signed by it, written as HAProxy wants it (chain
/// and key in one PEM file). Returns (CA PEM, path of the server PEM).
fn certificate() -> Result<(String, std::path::PathBuf)> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["localhost".to_string()])?.signed_by(&key, &ca)?;
    let dir = std::env::temp_dir().join(format!("warren-e2e-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("rabbit.pem");
    std::fs::write(&path, format!("{}{}", cert.pem(), key.serialize_pem()))?;
    Ok((ca.pem(), path))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqps_client_publishes_and_consumes_through_tls_termination() {
    e2e_test("amqps_client_publishes_and_consumes_through_tls_termination", |t| async move {
        let (ca_pem, pem) = certificate()?;
        let mut config = ProxyConfig::report();
        config.bind_options = format!("ssl crt {}", pem.display());
        let proxy = t.proxy(config).await?;
        let uri = format!("amqps://guest:guest@localhost:{}/%2f", proxy.config.front_port);
        let props = ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio)
            .with_connection_name("amqps-e2e".into());
        let tls = OwnedTLSConfig { identity: None, cert_chain: Some(ca_pem) };
        let conn = Connection::connect_with_config(&uri, props, tls).await.context("AMQPS connection through the proxy")?;
        let ch = conn.create_channel().await?;
        let queue = "warren.e2e.amqps";
        ch.queue_declare(queue, QueueDeclareOptions { auto_delete: true, ..Default::default() }, FieldTable::default()).await?;
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        let confirm = ch
            .basic_publish("", queue, BasicPublishOptions::default(), b"over tls", BasicProperties::default())
            .await?
            .await?;
        ensure!(confirm.is_ack(), "the node did not confirm the publish: {confirm:?}");
        let got = ch.basic_get(queue, BasicGetOptions { no_ack: true }).await?.context("the message is in the queue")?;
        ensure!(got.delivery.data == b"over tls", "got {:?}", got.delivery.data);

        // The node sees a plain AMQP connection from the proxy: TLS ended at the proxy.
        let out = t.lab.run_async(&["ctl", "1", "list_connections", "--no-table-headers", "ssl", "client_properties"]).await?;
        let line = out.lines().find(|l| l.contains("amqps-e2e")).with_context(|| format!("connection not listed:\n{out}"))?;
        ensure!(line.trim_start().starts_with("false"), "the node's side should be plain AMQP: {line}");
        eprintln!("[e2e] AMQPS client -> {} (TLS terminated) -> node: publish confirmed, message consumed", proxy.kind.name());
        amqp::close(&conn).await;
        Ok(())
    })
    .await;
}
