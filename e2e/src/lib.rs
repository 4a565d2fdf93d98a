//! Support for warren's end-to-end tests and demo: a real RabbitMQ cluster
//! (`scripts/rabbit-cluster`), the proxy under test (warren, or HAProxy as the reference)
//! spawned on the report's config, AMQP clients, and a timeline of what happened when.

pub mod amqp;
pub mod lab;
pub mod proxy;
pub mod terminate;
pub mod timeline;
pub mod workload;

use anyhow::Result;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

/// Tests inject faults into one shared cluster: they must not overlap even when the harness
/// runs them on several threads. Every test holds this for its whole run.
pub fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a test body gets: the cluster, the proxy kind, and a way to start proxies whose logs
/// are printed if the test fails.
#[derive(Clone)]
pub struct TestCtx {
    pub lab: lab::Lab,
    pub kind: proxy::ProxyKind,
    logs: Arc<Mutex<Vec<(String, proxy::LogLines)>>>,
}

impl TestCtx {
    /// Starts the proxy under test on `config`; its log is kept for the failure report.
    pub async fn proxy(&self, config: proxy::ProxyConfig) -> Result<proxy::Proxy> {
        let p = proxy::Proxy::start(self.kind.clone(), config).await?;
        let label = format!("{} -f {}", p.kind.name(), p.cfg_path.display());
        self.logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((label, p.log.clone()));
        Ok(p)
    }
}

/// Runs one end-to-end test: takes the suite lock, makes sure the cluster is up and every node
/// healthy, runs `body`, and on failure prints the proxies' logs and the nodes' log tails
/// before panicking with the error.
// The std guard is held across awaits on purpose: it serialises whole tests, each on its own
// runtime, and is never contended inside one runtime.
#[allow(clippy::await_holding_lock)]
pub async fn e2e_test<F, Fut>(name: &str, body: F)
where
    F: FnOnce(TestCtx) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let _serial = exclusive();
    let started = tokio::time::Instant::now();
    let setup = async {
        let lab = lab::Lab::get()?;
        let kind = proxy::ProxyKind::from_env()?;
        lab.ensure_healthy().await?;
        Ok::<_, anyhow::Error>(TestCtx {
            lab,
            kind,
            logs: Arc::default(),
        })
    };
    let ctx = match setup.await {
        Ok(c) => c,
        Err(e) => panic!("{name}: set-up failed: {e:#}"),
    };
    eprintln!("[e2e] {name}: proxy under test is {}", ctx.kind.name());
    let result = body(ctx.clone()).await;
    match result {
        Ok(()) => eprintln!(
            "[e2e] {name}: passed in {:.1}s",
            started.elapsed().as_secs_f64()
        ),
        Err(e) => {
            for (label, log) in ctx.logs.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                eprintln!("===== log of {label}\n{}", log.dump());
            }
            eprintln!("===== RabbitMQ node logs\n{}", ctx.lab.node_log_tails(40));
            panic!(
                "{name} failed after {:.1}s: {e:#}",
                started.elapsed().as_secs_f64()
            );
        }
    }
}
