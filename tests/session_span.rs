//! Every session runs in one `tracing` span named `session` carrying its frontend,
//! backend, server and client, so whatever a session traces can be told apart.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::*;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

type Spans = Arc<Mutex<HashMap<u64, (String, HashMap<String, String>)>>>;

/// Keeps every span's name and fields, as recorded so far.
struct Capture(Spans);

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        if let Ok(mut spans) = self.0.lock() {
            spans.insert(id.into_u64(), (attrs.metadata().name().to_string(), fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Ok(mut spans) = self.0.lock() {
            if let Some((_, fields)) = spans.get_mut(&id.into_u64()) {
                values.record(&mut Fields(fields));
            }
        }
    }
}

#[tokio::test]
async fn a_session_span_names_frontend_backend_server_and_client() {
    let spans: Spans = Arc::default();
    let subscriber = tracing_subscriber::registry().with(Capture(Arc::clone(&spans)));
    // The test's runtime is single-threaded: warren's tasks run on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);

    let node = Backend::tagged("n1").await;
    let w = start(&format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         listen px\n    bind 127.0.0.1:0\n    server s1 {}\n",
        node.addr
    ));
    let (client, tag) = which_backend(w.addr("px")).await;
    assert_eq!(tag, "n1");
    let local = client.local_addr().expect("local addr").to_string();

    let sessions: Vec<HashMap<String, String>> = spans
        .lock()
        .expect("lock")
        .values()
        .filter(|(name, _)| name == "session")
        .map(|(_, f)| f.clone())
        .collect();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let s = &sessions[0];
    assert_eq!(s.get("frontend").map(String::as_str), Some("px"), "{s:?}");
    assert_eq!(s.get("backend").map(String::as_str), Some("px"), "{s:?}");
    assert_eq!(s.get("server").map(String::as_str), Some("s1"), "{s:?}");
    assert_eq!(s.get("client"), Some(&local), "{s:?}");
    w.stop().await;
}
