//! Configuration: file → typed, validated [`Config`].
//!
//! ```text
//! haproxy.cfg ──haproxy::parse──┐
//!                               ├──▶ Config (no Option where a default exists) ──▶ runtime
//! warren.toml ──toml::parse─────┘
//! ```
//!
//! Both parsers fill defaults and resolve references (backend names, `log global`, server
//! addresses) themselves, then hand the result to [`validate`], so every check that does not
//! depend on the syntax lives in one place. Errors carry `file:line` and a plain sentence;
//! warnings (HTTP-only directives in a TCP proxy, missing timeouts) are returned beside the
//! config rather than printed, so the binary decides where they go.

mod error;
mod model;

pub use error::{ConfigError, Diagnostic};
pub use model::*;

use std::path::Path;

/// Which syntax a file is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Haproxy,
    Toml,
}

/// A configuration that passed validation, with the warnings it raised.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
}
