//! The stats page a person reads: one table per proxy, a row per server, coloured by state,
//! refreshed by a `<meta>` tag (no JavaScript, no asset from the internet). With `stats
//! admin`, each server row carries a small form for the admin actions.

use std::fmt::Write;

use super::schema::{Kind, Row};
use crate::config::StatsPage;

/// What the page needs besides the rows.
pub struct PageInfo<'a> {
    pub page: &'a StatsPage,
    /// The admin forms' CSRF token, when admin actions are allowed.
    pub csrf: Option<&'a str>,
    /// A message to show once (the result of an admin action).
    pub notice: Option<&'a str>,
    /// More to show under the proxies (the sessions view), already HTML.
    pub sessions: String,
}

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The CSS class of a row, from its status text.
fn class(row: &Row) -> &'static str {
    let status = row.get("status");
    match row.kind {
        Kind::Frontend => "open",
        _ if status == "MAINT" => "maint",
        _ if status == "DRAIN" || status == "NOLB" => "drain",
        _ if status.starts_with("UP ") => "going-down",
        _ if status.starts_with("DOWN ") => "going-up",
        _ if status.starts_with("UP") || status == "no check" => "up",
        _ => "down",
    }
}

fn secs(v: &str) -> String {
    let Ok(s) = v.parse::<u64>() else {
        return String::new();
    };
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{}s", s / 60, s % 60),
        3600..=86399 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

fn bytes(v: &str) -> String {
    let Ok(b) = v.parse::<f64>() else {
        return String::new();
    };
    match b {
        b if b >= 1e9 => format!("{:.1} GB", b / 1e9),
        b if b >= 1e6 => format!("{:.1} MB", b / 1e6),
        b if b >= 1e3 => format!("{:.1} kB", b / 1e3),
        b => format!("{b} B"),
    }
}

const STYLE: &str = "body{font-family:sans-serif;font-size:13px;margin:1em;color:#222}\
h1{font-size:18px}h2{font-size:15px;margin:1.2em 0 .3em}\
table{border-collapse:collapse;margin-bottom:1em}th,td{border:1px solid #aaa;padding:2px 6px;text-align:right}\
th{background:#ddd}td.name{text-align:left;font-weight:bold}\
tr.open td,tr.up td{background:#c0f0c0}tr.down td{background:#f0a0a0}tr.going-down td{background:#f0e070}\
tr.going-up td{background:#e0f070}tr.drain td{background:#a0c0f0}tr.maint td{background:#c0c0c0}\
tr.backend td{font-weight:bold}.notice{background:#ffd;border:1px solid #cc8;padding:4px;margin:.5em 0}\
.legend span{display:inline-block;padding:1px 6px;margin-right:4px;border:1px solid #aaa}\
form{display:inline;margin:0}";

/// The whole page.
pub fn page(rows: &[Row], info: &PageInfo<'_>) -> String {
    let mut out = String::with_capacity(8192);
    let title = if info.page.hide_version {
        "warren statistics".to_string()
    } else {
        format!("warren {} statistics", env!("CARGO_PKG_VERSION"))
    };
    let _ = write!(
        out,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title>"
    );
    if let Some(r) = info.page.refresh {
        let _ = write!(
            out,
            "<meta http-equiv=\"refresh\" content=\"{}\">",
            r.as_secs().max(1)
        );
    }
    let _ = write!(out, "<style>{STYLE}</style></head><body><h1>{title}</h1>");
    // `stats show-node` / `show-desc`: which instance this is, when several serve one cluster.
    if let Some(node) = &info.page.node {
        let _ = write!(out, "<p class=\"node\">node: {}</p>", esc(node));
    }
    if let Some(description) = &info.page.description {
        let _ = write!(
            out,
            "<p class=\"desc\">description: {}</p>",
            esc(description)
        );
    }
    out.push_str(
        "<div class=\"legend\"><span style=\"background:#c0f0c0\">UP</span><span style=\"background:#f0e070\">UP, going down</span>\
<span style=\"background:#e0f070\">DOWN, going up</span><span style=\"background:#f0a0a0\">DOWN</span>\
<span style=\"background:#a0c0f0\">DRAIN / NOLB</span><span style=\"background:#c0c0c0\">MAINT</span></div>",
    );
    if let Some(n) = info.notice {
        let _ = write!(out, "<div class=\"notice\">{}</div>", esc(n));
    }
    let mut current = "";
    for row in rows {
        let px = row.get("pxname");
        if px != current {
            if !current.is_empty() {
                out.push_str("</table>");
            }
            current = px;
            let _ = write!(out, "<h2>{}</h2><table>", esc(px));
            out.push_str(
                "<tr><th rowspan=2></th><th colspan=3>Queue</th><th colspan=4>Sessions</th><th colspan=2>Bytes</th>\
<th colspan=2>Errors</th><th colspan=2>Warnings</th><th colspan=9>Server</th>",
            );
            if info.csrf.is_some() {
                out.push_str("<th rowspan=2>Admin</th>");
            }
            out.push_str(
                "</tr><tr><th>Cur</th><th>Max</th><th>Limit</th><th>Cur</th><th>Max</th><th>Limit</th><th>Total</th>\
<th>In</th><th>Out</th><th>Conn</th><th>Resp</th><th>Retr</th><th>Redis</th><th>Status</th><th>LastChk</th>\
<th>Wght</th><th>Act</th><th>Bck</th><th>Chk</th><th>Dwn</th><th>Dwntme</th><th>LastChg</th></tr>",
            );
        }
        let kind = match row.kind {
            Kind::Backend => " backend",
            _ => "",
        };
        let last_chk = match (row.get("check_status"), row.get("check_duration")) {
            // No check result: what there is to say (why DNS holds the server, if it does).
            ("", _) => row.get("last_chk").to_string(),
            (s, d) => format!("{s} in {d}ms"),
        };
        let _ = write!(
            out,
            "<tr class=\"{}{kind}\"><td class=\"name\">{}</td>",
            class(row),
            esc(row.get("svname"))
        );
        for f in ["qcur", "qmax", "qlimit", "scur", "smax", "slim", "stot"] {
            let _ = write!(out, "<td>{}</td>", esc(row.get(f)));
        }
        let _ = write!(
            out,
            "<td>{}</td><td>{}</td>",
            bytes(row.get("bin")),
            bytes(row.get("bout"))
        );
        for f in ["econ", "eresp", "wretr", "wredis"] {
            let _ = write!(out, "<td>{}</td>", esc(row.get(f)));
        }
        let status = match (row.kind, row.get("lastchg")) {
            (Kind::Frontend, _) | (_, "") => esc(row.get("status")),
            (_, l) => format!("{} {}", esc(row.get("status")), secs(l)),
        };
        let _ = write!(
            out,
            "<td>{status}</td><td title=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            esc(row.get("last_chk")),
            esc(&last_chk),
            esc(row.get("weight")),
            esc(row.get("act")),
            esc(row.get("bck")),
            esc(row.get("chkfail")),
            esc(row.get("chkdown")),
            secs(row.get("downtime")),
            secs(row.get("lastchg")),
        );
        if let Some(token) = info.csrf {
            out.push_str("<td>");
            if row.kind == Kind::Server {
                admin_form(
                    &mut out,
                    info.page,
                    token,
                    px,
                    row.get("svname"),
                    row.get("weight"),
                );
            }
            out.push_str("</td>");
        }
        out.push_str("</tr>");
    }
    if !current.is_empty() {
        out.push_str("</table>");
    }
    out.push_str(&info.sessions);
    out.push_str("</body></html>");
    out
}

fn admin_form(
    out: &mut String,
    page: &StatsPage,
    token: &str,
    backend: &str,
    server: &str,
    weight: &str,
) {
    let action = esc(&page.uri);
    let _ = write!(
        out,
        "<form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"token\" value=\"{token}\">\
<input type=\"hidden\" name=\"backend\" value=\"{b}\"><input type=\"hidden\" name=\"server\" value=\"{s}\">\
<select name=\"action\"><option value=\"ready\">ready</option><option value=\"drain\">drain</option>\
<option value=\"maint\">maint</option><option value=\"shutdown\">shut down sessions</option>\
<option value=\"weight\">set weight</option></select>\
<input name=\"weight\" size=\"3\" value=\"{w}\"><button type=\"submit\">Apply</button></form>",
        b = esc(backend),
        s = esc(server),
        w = esc(weight),
    );
}
