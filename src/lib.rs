//! Warren: a load balancer and proxy for RabbitMQ clusters.
//!
//! The binary is a thin shell around this library: it parses the command line, loads a
//! [`config::Config`], binds a [`runtime::Warren`] and runs it. Tests start warren the
//! same way, on `127.0.0.1:0`.
//!
//! The modules form layers, and an import only ever points down (no cycles, nothing
//! imports a module above it; `tests/layers.rs` checks it):
//!
//! ```text
//! runtime                                   builds and wires everything; reload, stop
//! http                                      mode http: the HTTP/1.1 reverse proxy
//! stats                                     reads state, sends admin commands
//! health, proxy, dns                        tasks doing I/O: checks; sessions; resolution
//! state                                     live servers, backends, counters (no I/O)
//! tls, net                                  rustls configurations; plain/TLS sockets
//! config, amqp, proxy_protocol, balance, log   the model, protocol knowledge, algorithms
//! ```

// Nothing a peer or a file controls may panic the proxy; tests may.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod acl;
pub mod amqp;
pub mod balance;
pub mod config;
pub mod dns;
pub mod health;
pub mod http;
pub mod log;
pub mod net;
pub mod proxy;
pub mod proxy_protocol;
pub mod runtime;
pub mod state;
pub mod stats;
pub mod tls;
