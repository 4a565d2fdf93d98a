//! `cpu-map [auto:]<process-set>[/<thread-set>] <cpu-set>...`: which CPUs warren's worker
//! threads may run on (HAProxy 2.6's syntax; warren is one process, so the process set
//! must be `1`, `all`, `odd` or a range that contains 1). Sets are numbers and ranges
//! (`0-3,6` or `0-3 6`); threads count from 1, CPUs from 0, as in HAProxy.

/// One `cpu-map` line, compiled: which threads (1-based; empty = all) go on which CPUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuMap {
    /// Threads this line binds; empty means every thread.
    pub threads: Vec<u32>,
    pub cpus: Vec<u32>,
    /// `auto:`: the n-th thread of the set gets only the n-th CPU of the set.
    pub auto: bool,
    /// As written (without the keyword), for `warren convert`.
    pub text: String,
}

impl CpuMap {
    /// The CPUs thread `thread` (1-based) is bound to by this line, if it names it.
    pub fn cpus_for(&self, thread: u32) -> Option<Vec<u32>> {
        let position = if self.threads.is_empty() {
            Some(thread as usize - 1)
        } else {
            self.threads.iter().position(|t| *t == thread)
        }?;
        if self.auto {
            let cpu = self.cpus.get(position % self.cpus.len().max(1))?;
            Some(vec![*cpu])
        } else {
            Some(self.cpus.clone())
        }
    }
}

/// Parses the words after `cpu-map`.
pub fn parse(words: &[String]) -> Result<CpuMap, String> {
    let usage =
        "'cpu-map' takes [auto:]<process>[/<threads>] <cpus>, for example 'cpu-map 1/1-4 0-3'";
    let (first, cpus) = match words.split_first() {
        Some((f, rest)) if !rest.is_empty() => (f, rest),
        _ => return Err(usage.into()),
    };
    let (auto, set) = match first.strip_prefix("auto:") {
        Some(rest) => (true, rest),
        None => (false, first.as_str()),
    };
    let (process, threads) = match set.split_once('/') {
        Some((p, t)) => (p, Some(t)),
        None => (set, None),
    };
    let process_ok = match process {
        "all" | "odd" | "1" => true,
        p => numbers(p, 1).map(|n| n.contains(&1)).unwrap_or(false),
    };
    if !process_ok {
        return Err(format!(
            "'cpu-map {first}': warren is a single process, so the process set must include 1 (write '1/<threads>')"
        ));
    }
    let threads = match threads {
        None | Some("all") => Vec::new(),
        Some("odd") => (1..=64).step_by(2).collect(),
        Some("even") => (2..=64).step_by(2).collect(),
        Some(t) => numbers(t, 1)?,
    };
    let cpus = numbers(&cpus.join(","), 0)?;
    Ok(CpuMap {
        threads,
        cpus,
        auto,
        text: words.join(" "),
    })
}

/// `0-3,6` style sets; numbers below `min` are refused.
fn numbers(text: &str, min: u32) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        let bad = || format!("'{part}' is not a number or a range such as 0-3");
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (
                a.parse::<u32>().map_err(|_| bad())?,
                b.parse::<u32>().map_err(|_| bad())?,
            ),
            None => {
                let n = part.parse::<u32>().map_err(|_| bad())?;
                (n, n)
            }
        };
        if lo < min || lo > hi || hi > 4095 {
            return Err(bad());
        }
        out.extend(lo..=hi);
    }
    if out.is_empty() {
        return Err(format!("'{text}' names no CPU or thread"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn forms() {
        let m = parse(&w("1/1-4 0-3")).expect("ok");
        assert_eq!(m.cpus_for(2), Some(vec![0, 1, 2, 3]));
        assert_eq!(m.cpus_for(5), None);
        let m = parse(&w("auto:1/1-4 0-3")).expect("ok");
        assert_eq!(m.cpus_for(3), Some(vec![2]));
        let m = parse(&w("1 0 2")).expect("ok");
        assert_eq!(m.cpus_for(7), Some(vec![0, 2]));
        let m = parse(&w("all/all 1,3")).expect("ok");
        assert_eq!(m.cpus_for(1), Some(vec![1, 3]));
        for bad in ["2/1 0", "1/0 0", "1/1", "1/1 x", "1/1 3-1"] {
            assert!(parse(&w(bad)).is_err(), "{bad}");
        }
    }
}
