//! The live state built from a [`Config`](crate::config::Config): backends, servers, their
//! counters and health, shared by every task. Sessions and checkers read it through `Arc`s
//! and atomics; nothing here does I/O.

pub mod address;
pub mod admin;
mod backend;
mod frontend;
mod generation;
pub mod health;
mod http;
mod process;
pub mod rate;
mod server;
pub mod sessions;
pub mod stick;

pub use backend::{BackendCounters, BackendState, NoServer, ServerEvent};
pub use frontend::{FrontendCounters, FrontendGuard, FrontendState};
pub use generation::Generation;
pub use http::HttpCounters;
pub use process::Process;
pub use server::{AdminState, Counters, Health, LastCheck, ServerState, SheddingGuard, Slot};
