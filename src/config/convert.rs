//! Prints a [`Config`] as warren's TOML (placeholder).
use super::model::Config;
pub fn to_toml(_config: &Config) -> String { String::new() }
