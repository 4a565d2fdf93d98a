//! The sessions view of `amqp-terminate` frontends: each AMQP client warren holds, the
//! node serving it now, its epoch and moves. Rendered as text (`show sess` on the runtime
//! socket), JSON (`<uri>;sessions`) and a table on the stats page.

use std::fmt::Write;

use tokio::time::Instant;

use crate::config::Mode;
use crate::state::sessions::SessionInfo;
use crate::state::Generation;

/// (frontend name, session) for every terminated session open now.
pub fn list(generation: &Generation) -> Vec<(String, SessionInfo)> {
    generation
        .frontends
        .iter()
        .filter(|f| f.config.mode == Mode::AmqpTerminate)
        .flat_map(|f| {
            f.sessions
                .list()
                .into_iter()
                .map(|s| (f.config.name.clone(), s))
        })
        .collect()
}

/// One line per session, as `show sess` prints them.
pub fn text(generation: &Generation) -> String {
    let now = Instant::now();
    let mut out = String::new();
    for (fe, s) in list(generation) {
        let _ = writeln!(
            out,
            "client={} fe={fe} user={} vhost={} name={:?} node={} epoch={} moves={} age={}s",
            s.client,
            s.user,
            s.vhost,
            s.name,
            s.node,
            s.epoch,
            s.moves,
            now.duration_since(s.since).as_secs()
        );
    }
    out
}

pub fn json(generation: &Generation) -> String {
    let now = Instant::now();
    let items: Vec<serde_json::Value> = list(generation)
        .into_iter()
        .map(|(fe, s)| {
            serde_json::json!({
                "frontend": fe,
                "client": s.client.to_string(),
                "user": s.user,
                "vhost": s.vhost,
                "connection_name": s.name,
                "node": s.node,
                "epoch": s.epoch,
                "moves": s.moves,
                "age_seconds": now.duration_since(s.since).as_secs(),
            })
        })
        .collect();
    format!("{}\n", serde_json::Value::Array(items))
}

/// The stats page's table (empty when no frontend terminates AMQP).
pub fn html(generation: &Generation, esc: fn(&str) -> String) -> String {
    if !generation
        .frontends
        .iter()
        .any(|f| f.config.mode == Mode::AmqpTerminate)
    {
        return String::new();
    }
    let now = Instant::now();
    let mut out = String::from(
        "<h2>AMQP sessions (amqp-terminate)</h2><table><tr><th>Frontend</th><th>Client</th><th>User</th>\
<th>Vhost</th><th>Connection name</th><th>Node</th><th>Epoch</th><th>Moves</th><th>Age</th></tr>",
    );
    for (fe, s) in list(generation) {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}s</td></tr>",
            esc(&fe),
            s.client,
            esc(&s.user),
            esc(&s.vhost),
            esc(&s.name),
            esc(&s.node),
            s.epoch,
            s.moves,
            now.duration_since(s.since).as_secs()
        );
    }
    out.push_str("</table>");
    out
}
