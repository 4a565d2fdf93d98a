//! The machine-readable views: JSON (an array of objects, one per row, every field of the
//! CSV with numbers as numbers) and Prometheus text (per-server gauges and counters, via
//! the `prometheus-client` crate). Both are computed from the same rows as the CSV, so they
//! agree with it and with each other.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::schema::{Kind, Row};

/// JSON for `;json`: `[{"pxname": "...", "svname": "...", "scur": 3, ...}, ...]`.
pub fn json(rows: &[Row]) -> String {
    let mut out = String::from("[");
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('{');
        let mut first = true;
        for (field, value) in row.fields() {
            if value.is_empty() {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(&format!("\"{field}\":"));
            if value.parse::<i64>().is_ok() {
                out.push_str(value);
            } else {
                out.push_str(&json_string(value));
            }
        }
        out.push('}');
    }
    out.push(']');
    out
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProxyLabels {
    proxy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResponseLabels {
    proxy: String,
    /// `frontend`, `backend` or the server's name.
    server: String,
    /// `1xx` … `5xx`, `other`.
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabels {
    proxy: String,
    server: String,
}

fn num(row: &Row, field: &str) -> i64 {
    row.get(field).parse().unwrap_or(0)
}

/// Prometheus text exposition of the rows.
pub fn prometheus(rows: &[Row]) -> String {
    let mut registry = Registry::with_prefix("warren");
    let gauge = |registry: &mut Registry, name: &str, help: &str| {
        let f = Family::<ServerLabels, Gauge>::default();
        registry.register(name, help, f.clone());
        f
    };
    let counter = |registry: &mut Registry, name: &str, help: &str| {
        let f = Family::<ServerLabels, Counter>::default();
        registry.register(name, help, f.clone());
        f
    };
    let up = gauge(
        &mut registry,
        "server_up",
        "1 when the server may take sessions (UP and READY), else 0",
    );
    let current = gauge(
        &mut registry,
        "server_current_sessions",
        "Sessions open to the server",
    );
    let weight = gauge(&mut registry, "server_weight", "Effective weight");
    let sessions = counter(
        &mut registry,
        "server_sessions",
        "Sessions sent to the server",
    );
    let bytes_in = counter(
        &mut registry,
        "server_bytes_in",
        "Bytes from clients to the server",
    );
    let bytes_out = counter(
        &mut registry,
        "server_bytes_out",
        "Bytes from the server to clients",
    );
    let conn_err = counter(
        &mut registry,
        "server_connection_errors",
        "Failed connects to the server",
    );
    let chk_fail = counter(
        &mut registry,
        "server_check_failures",
        "Failed health checks",
    );
    let chk_down = counter(
        &mut registry,
        "server_check_down_transitions",
        "Times the server went DOWN",
    );
    let downtime = counter(&mut registry, "server_downtime_seconds", "Time spent DOWN");
    let fe_current = Family::<ProxyLabels, Gauge>::default();
    registry.register(
        "frontend_current_sessions",
        "Client sessions open on the frontend",
        fe_current.clone(),
    );
    let fe_sessions = Family::<ProxyLabels, Counter>::default();
    registry.register(
        "frontend_sessions",
        "Client sessions accepted by the frontend",
        fe_sessions.clone(),
    );
    let fe_denied = Family::<ProxyLabels, Counter>::default();
    registry.register(
        "frontend_denied_connections",
        "Connections refused by rate-limit sessions-per-source",
        fe_denied.clone(),
    );
    let fe_moves = Family::<ProxyLabels, Counter>::default();
    registry.register(
        "frontend_amqp_moves",
        "amqp-terminate: sessions moved to another node with the client kept connected",
        fe_moves.clone(),
    );
    let fe_moves_failed = Family::<ProxyLabels, Counter>::default();
    registry.register(
        "frontend_amqp_moves_failed",
        "amqp-terminate: moves that could not be done (the client got connection.close 320)",
        fe_moves_failed.clone(),
    );
    let fe_republished = Family::<ProxyLabels, Counter>::default();
    registry.register(
        "frontend_amqp_republished_messages",
        "amqp-terminate: messages published again on a new node after a move",
        fe_republished.clone(),
    );
    let fe_held = Family::<ProxyLabels, Gauge>::default();
    registry.register(
        "frontend_amqp_clients_held",
        "amqp-terminate: clients held right now while their session moves",
        fe_held.clone(),
    );
    let be_queue = Family::<ProxyLabels, Gauge>::default();
    registry.register(
        "backend_queue_current",
        "Sessions waiting for a server slot",
        be_queue.clone(),
    );
    let be_usable = Family::<ProxyLabels, Gauge>::default();
    registry.register(
        "backend_usable_servers",
        "Servers that may take sessions (active + backup)",
        be_usable.clone(),
    );

    let http_responses = Family::<ResponseLabels, Counter>::default();
    registry.register(
        "http_responses",
        "HTTP mode: responses by status class (hrsp_*), per frontend, backend and server",
        http_responses.clone(),
    );
    let http_requests = Family::<ServerLabels, Counter>::default();
    registry.register(
        "http_requests",
        "HTTP mode: requests received (req_tot), per frontend, backend and server",
        http_requests.clone(),
    );
    let http_rate = Family::<ProxyLabels, Gauge>::default();
    registry.register(
        "frontend_http_request_rate",
        "HTTP mode: requests per second over the last second (req_rate)",
        http_rate.clone(),
    );

    for row in rows {
        let proxy = row.get("pxname").to_string();
        if !row.get("req_tot").is_empty() {
            let server = match row.kind {
                Kind::Frontend => "frontend".to_string(),
                Kind::Backend => "backend".to_string(),
                Kind::Server => row.get("svname").to_string(),
            };
            for (field, code) in [
                ("hrsp_1xx", "1xx"),
                ("hrsp_2xx", "2xx"),
                ("hrsp_3xx", "3xx"),
                ("hrsp_4xx", "4xx"),
                ("hrsp_5xx", "5xx"),
                ("hrsp_other", "other"),
            ] {
                http_responses
                    .get_or_create(&ResponseLabels {
                        proxy: proxy.clone(),
                        server: server.clone(),
                        code: code.to_string(),
                    })
                    .inc_by(num(row, field).max(0) as u64);
            }
            http_requests
                .get_or_create(&ServerLabels {
                    proxy: proxy.clone(),
                    server,
                })
                .inc_by(num(row, "req_tot").max(0) as u64);
            if row.kind == Kind::Frontend {
                http_rate
                    .get_or_create(&ProxyLabels {
                        proxy: proxy.clone(),
                    })
                    .set(num(row, "req_rate"));
            }
        }
        match row.kind {
            Kind::Server => {
                let l = ServerLabels {
                    proxy,
                    server: row.get("svname").to_string(),
                };
                let status = row.get("status");
                let is_up = status.starts_with("UP") || status == "no check";
                up.get_or_create(&l).set(i64::from(is_up));
                current.get_or_create(&l).set(num(row, "scur"));
                weight.get_or_create(&l).set(num(row, "weight"));
                let inc = |f: &Family<ServerLabels, Counter>, field: &str| {
                    f.get_or_create(&l).inc_by(num(row, field).max(0) as u64);
                };
                inc(&sessions, "stot");
                inc(&bytes_in, "bin");
                inc(&bytes_out, "bout");
                inc(&conn_err, "econ");
                inc(&chk_fail, "chkfail");
                inc(&chk_down, "chkdown");
                inc(&downtime, "downtime");
            }
            Kind::Frontend => {
                let l = ProxyLabels { proxy };
                fe_current.get_or_create(&l).set(num(row, "scur"));
                fe_sessions
                    .get_or_create(&l)
                    .inc_by(num(row, "stot").max(0) as u64);
                fe_denied
                    .get_or_create(&l)
                    .inc_by(num(row, "dcon").max(0) as u64);
                if row.get("mode") == "amqp-terminate" {
                    for (family, field) in [
                        (&fe_moves, "amqp_moves"),
                        (&fe_moves_failed, "amqp_moves_failed"),
                        (&fe_republished, "amqp_republished"),
                    ] {
                        family
                            .get_or_create(&l)
                            .inc_by(num(row, field).max(0) as u64);
                    }
                    fe_held.get_or_create(&l).set(num(row, "amqp_held"));
                }
            }
            Kind::Backend => {
                let l = ProxyLabels { proxy };
                be_queue.get_or_create(&l).set(num(row, "qcur"));
                be_usable
                    .get_or_create(&l)
                    .set(num(row, "act") + num(row, "bck"));
            }
        }
    }
    let dropped_logs = Counter::<u64>::default();
    registry.register(
        "dropped_logs",
        "Log lines dropped because the log writer was behind (HAProxy's DroppedLogs)",
        dropped_logs.clone(),
    );
    dropped_logs.inc_by(crate::log::dropped());
    let mut out = String::new();
    // Encoding into a String cannot fail.
    let _ = encode(&mut out, &registry);
    out
}
