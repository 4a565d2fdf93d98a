//! The stats listener: HTTP/1.1 (hyper) on each `bind` of a stats page.
//!
//! | request | answer |
//! |---|---|
//! | `GET <uri>` | the HTML page |
//! | `GET <uri>;csv` | HAProxy's CSV (`show stat`) |
//! | `GET <uri>;json` | the same rows as JSON |
//! | `GET /metrics` | Prometheus text |
//! | `POST <uri>` (form: token, backend, server, action, weight) | an admin action from the page |
//! | `POST <uri>/api/server` (JSON: backend, server, action, weight) | the same, for scripts |
//!
//! Every request needs the page's credentials when it has `stats auth`; admin actions need
//! `stats admin` and credentials even when the page is public (with no `stats auth`, admin
//! actions are refused: HAProxy would let anyone act). Form posts carry the page's CSRF
//! token; the JSON API needs `Content-Type: application/json`, which a cross-site form
//! cannot send; both must come from the page's own origin when the browser names one.
//! A client has 30 s to send its request headers (hyper's `header_read_timeout`), so idle
//! or trickling connections do not pile up.

use std::convert::Infallible;
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST, ORIGIN, REFERER, WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{auth, export, html, run_action, schema};
use crate::config::StatsPage;
use crate::net::{AcceptBackoff, Stream, Tls};
use crate::state::Generation;

/// Admin requests larger than this are refused (a form post is a few hundred bytes).
const MAX_BODY: usize = 16 * 1024;

/// Time a client has to send a request's headers (hyper's default, made effective).
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What every request of one stats page shares.
pub struct Page {
    pub config: StatsPage,
    pub current: Arc<ArcSwap<Generation>>,
    pub csrf: String,
}

/// Time a browser has to finish the TLS handshake of an HTTPS stats page.
const TLS_HANDSHAKE: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves `listener` until `retire` (a reload: the next configuration's loop takes the
/// socket over) or `stop` (the process stops, which also ends open connections).
pub async fn serve(
    listener: Arc<TcpListener>,
    page: Arc<Page>,
    tls: Option<Arc<rustls::ServerConfig>>,
    retire: CancellationToken,
    stop: CancellationToken,
) {
    let mut backoff = AcceptBackoff::default();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = retire.cancelled() => return,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                backoff.succeeded();
                stream
            }
            Err(e) => {
                let wait = backoff.failed();
                tracing::error!(page = %page.config.name, "stats page: accept failed: {e}; retrying in {wait:?}");
                tokio::select! {
                    _ = retire.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                continue;
            }
        };
        let (page, stop, tls) = (Arc::clone(&page), stop.clone(), tls.clone());
        tokio::spawn(async move {
            let stream = match tls {
                None => Stream::Plain(stream),
                Some(config) => {
                    match tokio::time::timeout(TLS_HANDSHAKE, Tls::accept(stream, &config)).await {
                        Ok(Ok(stream)) => stream,
                        _ => return,
                    }
                }
            };
            let io = hyper_util::rt::TokioIo::new(stream);
            let service = hyper::service::service_fn(move |req| {
                let page = Arc::clone(&page);
                async move { Ok::<_, Infallible>(handle(req, &page).await) }
            });
            // The timer makes hyper's 30 s header read timeout apply (without one it is
            // silently off, and a slowloris could hold the stats port's connections).
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(io, service);
            tokio::select! {
                _ = conn => {}
                _ = stop.cancelled() => {}
            }
        });
    }
}

fn response(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    r.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-cache"));
    r
}

fn unauthorized(realm: &str) -> Response<Full<Bytes>> {
    let mut r = response(
        StatusCode::UNAUTHORIZED,
        "text/plain",
        "401 Unauthorized: this page needs a user and password.\n",
    );
    let realm = realm.replace('"', "'");
    if let Ok(v) = HeaderValue::from_str(&format!("Basic realm=\"{realm}\"")) {
        r.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    r
}

async fn handle(req: Request<Incoming>, page: &Page) -> Response<Full<Bytes>> {
    let cfg = &page.config;
    let authorization = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let authenticated = auth::allowed(&cfg.users, authorization);
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or(req.uri().path(), |p| p.as_str())
        .to_string();
    let uri = cfg.uri.trim_end_matches('/');
    let base = if uri.is_empty() { "/" } else { uri };
    let generation = page.current.load_full();

    match (req.method().clone(), path_and_query.as_str()) {
        (Method::GET, "/metrics") => {
            if !authenticated {
                return unauthorized(&cfg.realm);
            }
            let rows = schema::rows(&generation);
            response(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                export::prometheus(&rows),
            )
        }
        (Method::GET, p) if matches_page(p, base) => {
            if !authenticated {
                return unauthorized(&cfg.realm);
            }
            let rows = schema::rows(&generation);
            if p.ends_with(";csv") {
                response(
                    StatusCode::OK,
                    "text/csv; charset=utf-8",
                    schema::csv(&rows),
                )
            } else if p.ends_with(";json") {
                response(StatusCode::OK, "application/json", export::json(&rows))
            } else if p.ends_with(";sessions") {
                response(
                    StatusCode::OK,
                    "application/json",
                    super::sessions::json(&generation),
                )
            } else {
                let info = html::PageInfo {
                    page: cfg,
                    sessions: super::sessions::html(&generation, html::esc),
                    csrf: cfg.admin.then_some(page.csrf.as_str()),
                    notice: None,
                };
                response(
                    StatusCode::OK,
                    "text/html; charset=utf-8",
                    html::page(&rows, &info),
                )
            }
        }
        (Method::POST, p)
            if p == format!("{uri}/api/server") || (uri.is_empty() && p == "/api/server") =>
        {
            if !admin_allowed(cfg, authorization) {
                return unauthorized(&cfg.realm);
            }
            if !same_origin(&req) {
                return response(
                    StatusCode::FORBIDDEN,
                    "text/plain",
                    "403 cross-site request refused\n",
                );
            }
            let json = req
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"));
            if !json {
                return response(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "text/plain",
                    "the admin API takes application/json\n",
                );
            }
            let body = match body(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            match api_action(&body, &generation) {
                Ok(message) => response(
                    StatusCode::OK,
                    "application/json",
                    format!("{{\"result\":{}}}\n", serde_json::Value::String(message)),
                ),
                Err(e) => response(
                    StatusCode::BAD_REQUEST,
                    "application/json",
                    format!("{{\"error\":{}}}\n", serde_json::Value::String(e)),
                ),
            }
        }
        (Method::POST, p) if matches_page(p, base) => {
            if !admin_allowed(cfg, authorization) {
                return unauthorized(&cfg.realm);
            }
            if !same_origin(&req) {
                return response(
                    StatusCode::FORBIDDEN,
                    "text/plain",
                    "403 cross-site request refused\n",
                );
            }
            let body = match body(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let form = parse_form(&body);
            let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            if field("token") != Some(page.csrf.as_str()) {
                return response(
                    StatusCode::FORBIDDEN,
                    "text/plain",
                    "403 missing or stale form token: reload the page\n",
                );
            }
            let result = run_action(
                &generation,
                field("backend"),
                field("server"),
                field("action"),
                field("weight"),
                "the stats page",
            );
            let (status, notice) = match result {
                Ok(m) => (StatusCode::OK, m),
                Err(e) => (StatusCode::BAD_REQUEST, e),
            };
            let rows = schema::rows(&generation);
            let info = html::PageInfo {
                page: cfg,
                sessions: super::sessions::html(&generation, html::esc),
                csrf: Some(page.csrf.as_str()),
                notice: Some(&notice),
            };
            response(status, "text/html; charset=utf-8", html::page(&rows, &info))
        }
        _ => response(StatusCode::NOT_FOUND, "text/plain", "404 not found\n"),
    }
}

/// `<uri>`, `<uri>/`, `<uri>;csv`, `<uri>;json` and HAProxy's `<uri>?stats;csv` forms.
fn matches_page(path: &str, base: &str) -> bool {
    let rest = if base == "/" {
        path.strip_prefix('/')
    } else {
        path.strip_prefix(base)
    };
    match rest {
        Some(r) => {
            let r = r.trim_start_matches('/');
            r.is_empty() || r.starts_with(';') || r.starts_with('?')
        }
        None => false,
    }
}

/// Admin actions need `stats admin` and real credentials, even on a public page.
fn admin_allowed(cfg: &StatsPage, authorization: Option<&str>) -> bool {
    cfg.admin && !cfg.users.is_empty() && auth::allowed(&cfg.users, authorization)
}

/// A form post must come from the page itself: its `Origin` (or `Referer`) host must be
/// the request's `Host`. Browsers always send one of them on a cross-site POST.
fn same_origin(req: &Request<Incoming>) -> bool {
    let host = req
        .headers()
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin = req
        .headers()
        .get(ORIGIN)
        .or_else(|| req.headers().get(REFERER))
        .and_then(|v| v.to_str().ok());
    match origin {
        None => true,
        Some(o) => {
            let after_scheme = o.split_once("://").map_or(o, |(_, rest)| rest);
            let origin_host = after_scheme.split('/').next().unwrap_or("");
            !host.is_empty() && origin_host == host
        }
    }
}

async fn body(req: Request<Incoming>) -> Result<Bytes, Response<Full<Bytes>>> {
    match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(_) => Err(response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "text/plain",
            "413 request too large\n",
        )),
    }
}

fn api_action(body: &[u8], generation: &Generation) -> Result<String, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let s = |k: &str| v.get(k).and_then(|x| x.as_str());
    let weight = v.get("weight").map(|w| {
        w.as_u64()
            .map_or_else(|| w.as_str().unwrap_or("").to_string(), |n| n.to_string())
    });
    run_action(
        generation,
        s("backend"),
        s("server"),
        s("action"),
        weight.as_deref(),
        "the admin API",
    )
}

/// `application/x-www-form-urlencoded` → pairs.
fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (url_decode(k), url_decode(v)))
        .collect()
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(v)) => {
                out.push(v);
                i += 2;
            }
            (c, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_paths() {
        assert!(matches_page("/haproxy", "/haproxy"));
        assert!(matches_page("/haproxy;csv", "/haproxy"));
        assert!(matches_page("/haproxy/;json", "/haproxy"));
        assert!(matches_page("/haproxy?stats;csv", "/haproxy"));
        assert!(!matches_page("/haproxyx", "/haproxy"));
        assert!(matches_page("/;csv", "/"));
    }

    #[test]
    fn forms_decode() {
        let f = parse_form(b"backend=rabbitmq_cluster_back&server=clusterRabbit2&action=set+weight&w=%32%30&bad=%zz&end=%4");
        assert_eq!(f[0], ("backend".into(), "rabbitmq_cluster_back".into()));
        assert_eq!(f[2], ("action".into(), "set weight".into()));
        assert_eq!(f[3], ("w".into(), "20".into()));
        assert_eq!(f[4], ("bad".into(), "%zz".into()));
        assert_eq!(f[5], ("end".into(), "%4".into()));
    }
}
