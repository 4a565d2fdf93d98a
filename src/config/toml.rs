//! warren's own TOML format (placeholder, filled in next).
use super::model::Config;
use super::report::Report;
use super::validate::Origins;
pub(crate) fn parse(_text: &str, report: &mut Report) -> Option<(Config, Origins)> {
    report.error(0, "TOML is not implemented yet");
    None
}
