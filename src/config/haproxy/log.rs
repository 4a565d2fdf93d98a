//! `log` lines, in `global` and in proxies:
//! `log <target> [len <n>] [format <fmt>] <facility> [<max level> [<min level>]]`,
//! `log global` (proxies only) and `no log`.

use super::draft::LogEntry;
use crate::config::addr;
use crate::config::model::{Facility, Level, LogDestination, LogFormat, LogTarget};
use crate::config::report::Report;
use crate::config::suggest;

/// Parses the words after `log`; `None` when the line was reported or is to be skipped.
pub fn entry(
    args: &[String],
    line: usize,
    in_global: bool,
    report: &mut Report,
) -> Option<LogEntry> {
    let Some(target) = args.first() else {
        report.error(
            line,
            "'log' needs a target: an address, 'stderr', 'stdout', a file path, or 'global'",
        );
        return None;
    };
    if target == "global" {
        if in_global {
            report.error(line, "'log global' is for proxies; in 'global', name a target such as '127.0.0.1 local0'");
            return None;
        }
        if args.len() > 1 {
            report.error(
                line,
                format!("too many arguments to 'log global': remove '{}'", args[1]),
            );
            return None;
        }
        return Some(LogEntry::Global);
    }
    let destination = report.check(line, addr::parse_log_destination(target))?;
    if let LogDestination::File(path) = &destination {
        if is_socket(path) {
            report.warn(
                line,
                format!("logging to the unix socket '{}' is not supported yet; this log line is ignored (use a UDP address such as 127.0.0.1, or stderr)", path.display()),
            );
            return None;
        }
    }
    let mut format = LogFormat::Rfc3164;
    let mut rest = &args[1..];
    loop {
        match rest.first().map(String::as_str) {
            // The length limit only truncates long lines; warren's lines are short.
            Some("len") => {
                if rest.get(1).and_then(|n| n.parse::<u32>().ok()).is_none() {
                    report.error(line, "'log ... len' needs a number of bytes");
                    return None;
                }
                rest = &rest[2..];
            }
            Some("format") => {
                let Some(name) = rest.get(1) else {
                    report.error(line, "'log ... format' needs a format name");
                    return None;
                };
                match LogFormat::from_name(name) {
                    Some(f) => format = f,
                    None => {
                        report.error(
                            line,
                            format!(
                                "unknown log format '{name}'; warren knows rfc3164, rfc5424, short, raw and iso{}",
                                suggest::hint(name, LogFormat::ALL.iter().map(|(n, _)| *n))
                            ),
                        );
                        return None;
                    }
                }
                rest = &rest[2..];
            }
            Some("sample") => {
                report.error(line, "'log ... sample' is not supported yet");
                return None;
            }
            _ => break,
        }
    }
    let Some(facility_name) = rest.first() else {
        report.error(
            line,
            format!("'log {target}' needs a facility, for example 'local0'"),
        );
        return None;
    };
    let Some(facility) = Facility::from_name(facility_name) else {
        report.error(
            line,
            format!(
                "unknown syslog facility '{facility_name}'{}",
                suggest::hint(facility_name, Facility::NAMES)
            ),
        );
        return None;
    };
    let mut max_level = Level::Debug;
    for (i, name) in rest.iter().enumerate().skip(1) {
        if i > 2 {
            report.error(
                line,
                format!("too many arguments to 'log': remove '{name}'"),
            );
            return None;
        }
        let Some(level) = Level::from_name(name) else {
            report.error(
                line,
                format!(
                    "unknown log level '{name}'{}",
                    suggest::hint(name, Level::ALL.iter().map(|(n, _)| *n))
                ),
            );
            return None;
        };
        // The second level is HAProxy's minimum level, which only raises the severity of
        // quieter messages; warren accepts it and keeps the maximum.
        if i == 1 {
            max_level = level;
        }
    }
    Some(LogEntry::Target(LogTarget {
        destination,
        format,
        facility,
        max_level,
    }))
}

#[cfg(unix)]
fn is_socket(path: &std::path::Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path)
        .map(|m| m.file_type().is_socket())
        .unwrap_or(false)
}

#[cfg(not(unix))]
fn is_socket(_: &std::path::Path) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> (Option<LogEntry>, Report) {
        let mut report = Report::new("t.cfg");
        let args: Vec<String> = line.split_whitespace().map(String::from).collect();
        (entry(&args, 1, true, &mut report), report)
    }

    fn target(line: &str) -> LogTarget {
        match parse(line).0 {
            Some(LogEntry::Target(t)) => t,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn report_line() {
        let t = target("127.0.0.1 local3");
        assert_eq!(
            t.destination,
            LogDestination::Udp("127.0.0.1:514".parse().unwrap())
        );
        assert_eq!(t.facility.name(), "local3");
        assert_eq!(t.max_level, Level::Debug);
        assert_eq!(t.format, LogFormat::Rfc3164);
    }

    #[test]
    fn cluster_script_line() {
        let t = target("stderr format iso local0 info");
        assert_eq!(t.destination, LogDestination::Stderr);
        assert_eq!(t.format, LogFormat::Iso);
        assert_eq!(t.facility.name(), "local0");
        assert_eq!(t.max_level, Level::Info);
    }

    #[test]
    fn len_and_min_level() {
        let t = target("127.0.0.1:1514 len 1024 local1 notice err");
        assert_eq!(t.max_level, Level::Notice);
    }

    #[test]
    fn errors() {
        let (_, r) = parse("127.0.0.1 lokal3");
        assert!(
            r.errors[0].message.contains("did you mean 'local3'"),
            "{:?}",
            r.errors
        );
        let (_, r) = parse("127.0.0.1 local3 infoo");
        assert!(r.errors[0].message.contains("did you mean 'info'"));
        let (_, r) = parse("global");
        assert!(r.errors[0].message.contains("for proxies"));
        let (_, r) = parse("stderr format json local0");
        assert!(r.errors[0].message.contains("unknown log format"));
    }
}
