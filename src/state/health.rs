//! The rise/fall state machine: check results in, UP/DOWN transitions out.
//!
//! ```text
//! checker ──CheckStatus::passed()──▶ HealthState::record ──Some(Transition)──▶ server state, log
//!                                          │
//!                                          └──next_interval(inter, fastinter, downinter)──▶ scheduler
//! ```
//!
//! Pure and time-free: the scheduler owns the clock and asks which interval comes next, so
//! every sequence of results is tested here without sleeping. The arithmetic is HAProxy's
//! (`src/check.c`, `set_server_check_status`, `check_notify_failure`,
//! `check_notify_success`), so operators see the same behaviour and the same
//! `UP 2/3` / `DOWN 1/2` strings on the stats page.

use std::fmt;
use std::time::Duration;

/// A change of a server's operational state, reported once, when it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Up,
    Down,
}

/// HAProxy's health counter for one server's active checks.
///
/// One counter `health` in `0..=rise+fall-1`; the server is UP exactly when `health >= rise`.
/// - A pass, while `health < rise+fall-1`, adds 1; reaching `rise` jumps straight to
///   `rise+fall-1` (the server is UP and now needs `fall` failures to go DOWN).
/// - A failure, while `health > 0`, takes 1; falling below `rise` drops to 0 (the server is
///   DOWN and needs `rise` passes to come back). So one failure also resets a DOWN server's
///   partial progress towards UP.
///
/// Hence a fully UP server goes DOWN after `fall` consecutive failures, a DOWN one comes UP
/// after `rise` consecutive passes, and a pass in between restores a wobbling UP server to
/// full health at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthState {
    health: u32,
    rise: u32,
    fall: u32,
}

impl HealthState {
    /// A server with checks starts UP with health == rise (falls at first failure), as in HAProxy.
    ///
    /// HAProxy's server parser sets `check.health = check.rise` with the comment "up, but
    /// will fall down at first failure": traffic flows from the start, and a dead server is
    /// taken out by the very first failed check. `rise` and `fall` below 1 (which the config
    /// rejects) are taken as 1.
    pub fn new(rise: u32, fall: u32) -> HealthState {
        let (rise, fall) = (rise.max(1), fall.max(1));
        HealthState {
            health: rise,
            rise,
            fall,
        }
    }

    /// Starts DOWN with health 0 (used when a server is added while its node is unknown, and in tests).
    pub fn new_down(rise: u32, fall: u32) -> HealthState {
        HealthState {
            health: 0,
            rise: rise.max(1),
            fall: fall.max(1),
        }
    }

    /// The top of the counter: fully UP, `fall` failures away from DOWN.
    fn full(&self) -> u32 {
        self.rise + self.fall - 1
    }

    pub fn is_up(&self) -> bool {
        self.health >= self.rise
    }

    /// Record one check result; Some(..) only when the UP/DOWN state flips.
    pub fn record(&mut self, passed: bool) -> Option<Transition> {
        let was_up = self.is_up();
        if passed {
            if self.health < self.full() {
                self.health += 1;
                if self.health >= self.rise {
                    self.health = self.full();
                }
            }
        } else if self.health > 0 {
            self.health -= 1;
            if self.health < self.rise {
                self.health = 0;
            }
        }
        match (was_up, self.is_up()) {
            (false, true) => Some(Transition::Up),
            (true, false) => Some(Transition::Down),
            _ => None,
        }
    }

    /// A failure that proves the server unusable, whatever `fall` says (HAProxy's
    /// `on-error mark-down`): health drops to 0, so it needs `rise` passes to come back.
    pub fn mark_down(&mut self) -> Option<Transition> {
        let was_up = self.is_up();
        self.health = 0;
        was_up.then_some(Transition::Down)
    }

    /// HAProxy's `on-error sudden-death`: an UP server is left one failure away from DOWN
    /// (the failure recorded next is that one).
    pub fn sudden_death(&mut self) {
        if self.health > self.rise {
            self.health = self.rise + 1;
        }
    }

    /// Which interval to wait before the next check: `downinter` while DOWN (health 0), `fastinter` while
    /// transitioning (UP but health < rise+fall-1, or DOWN with health > 0), `inter` otherwise.
    ///
    /// HAProxy's `srv_getinter()`. Callers pass `inter` for an unset `fastinter` or
    /// `downinter`, as HAProxy falls back to it. A fresh server (health == rise) is checked
    /// at `fastinter` until its first pass, so a dead node at start-up is found quickly.
    pub fn next_interval(
        &self,
        inter: Duration,
        fastinter: Duration,
        downinter: Duration,
    ) -> Duration {
        if self.health == self.full() {
            inter
        } else if self.health == 0 {
            downinter
        } else {
            fastinter
        }
    }

    /// HAProxy's status text: "UP", "DOWN", "UP 1/3" (going down), "DOWN 1/2" (going up).
    ///
    /// As HAProxy's stats page prints it (`srv_hlt_st` in `src/stats.c`): while UP but not at
    /// full health, `UP n/fall` where `n = health - rise + 1` is the number of further failed
    /// checks that would take the server DOWN (a fresh server with fall 3 shows `UP 1/3`);
    /// while DOWN with some passes, `DOWN n/rise` where `n = health` is the passes so far.
    pub fn status_text(&self) -> String {
        if self.is_up() {
            if self.health == self.full() {
                "UP".to_string()
            } else {
                format!("UP {}/{}", self.health - self.rise + 1, self.fall)
            }
        } else if self.health == 0 {
            "DOWN".to_string()
        } else {
            format!("DOWN {}/{}", self.health, self.rise)
        }
    }

    /// Consecutive-pass/fail counters for stats: (health, rise, fall).
    pub fn counters(&self) -> (u32, u32, u32) {
        (self.health, self.rise, self.fall)
    }
}

/// The outcome of one health check, with HAProxy's layered codes (`check_statuses` in
/// `src/check.c`), as shown in the stats page's "LastChk" column and in the log line
/// `Server be/srv is DOWN, reason: Layer4 connection problem, ...`.
///
/// Only the codes a TCP, AMQP (over plain TCP or TLS) or HTTP check, or passive health, can
/// produce. Before the first check completes there is no status: HAProxy shows `INI`; the
/// stats side renders `None` that way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckStatus {
    /// The TCP connection was established (a plain `check`).
    L4Ok,
    /// No TCP connection within the check timeout.
    L4TimeOut,
    /// The connection was refused, reset or unreachable.
    L4Con,
    /// The TLS handshake completed (TLS check with nothing more to expect).
    L6Ok,
    /// No TLS handshake within the timeout.
    L6TimeOut,
    /// The TLS handshake failed.
    L6Rsp,
    /// The application answered as expected (AMQP `connection.start`/`open-ok`, HTTP 2xx/3xx).
    L7Ok,
    /// Connected, but no answer within the timeout.
    L7TimeOut,
    /// Connected, but the answer was not the protocol expected.
    L7Rsp,
    /// HTTP answered with an unexpected status (management API check).
    L7Sts,
    /// A local socket error before or after connecting (no address, fd limit, ...).
    SockErr,
    /// Passive health: real traffic failed (HAProxy's `observe layer4`), not a check.
    Hana,
}

impl CheckStatus {
    /// HAProxy's short code: "L4OK", "L4TOUT", "L4CON", ...
    pub fn code(&self) -> &'static str {
        match self {
            CheckStatus::L4Ok => "L4OK",
            CheckStatus::L4TimeOut => "L4TOUT",
            CheckStatus::L4Con => "L4CON",
            CheckStatus::L6Ok => "L6OK",
            CheckStatus::L6TimeOut => "L6TOUT",
            CheckStatus::L6Rsp => "L6RSP",
            CheckStatus::L7Ok => "L7OK",
            CheckStatus::L7TimeOut => "L7TOUT",
            CheckStatus::L7Rsp => "L7RSP",
            CheckStatus::L7Sts => "L7STS",
            CheckStatus::SockErr => "SOCKERR",
            CheckStatus::Hana => "HANA",
        }
    }

    /// HAProxy's description, used after `reason:` in state-change log lines.
    pub fn description(&self) -> &'static str {
        match self {
            CheckStatus::L4Ok => "Layer4 check passed",
            CheckStatus::L4TimeOut => "Layer4 timeout",
            CheckStatus::L4Con => "Layer4 connection problem",
            CheckStatus::L6Ok => "Layer6 check passed",
            CheckStatus::L6TimeOut => "Layer6 timeout",
            CheckStatus::L6Rsp => "Layer6 invalid response",
            CheckStatus::L7Ok => "Layer7 check passed",
            CheckStatus::L7TimeOut => "Layer7 timeout",
            CheckStatus::L7Rsp => "Layer7 invalid response",
            CheckStatus::L7Sts => "Layer7 wrong status",
            CheckStatus::SockErr => "Socket error",
            CheckStatus::Hana => "Health analyze",
        }
    }

    /// Whether the result counts as a pass for [`HealthState::record`].
    pub fn passed(&self) -> bool {
        matches!(
            self,
            CheckStatus::L4Ok | CheckStatus::L6Ok | CheckStatus::L7Ok
        )
    }
}

impl fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::Transition::{Down, Up};
    use super::*;

    #[test]
    fn sudden_death_leaves_an_up_server_one_failure_from_down() {
        let mut h = HealthState::new(2, 5);
        h.record(true);
        h.sudden_death();
        assert_eq!(h.record(false), None, "the analysis's own failure");
        assert_eq!(h.record(false), Some(Down), "then one more");
        // A server already near the edge is not pulled back up.
        let mut h = HealthState::new(2, 5);
        h.sudden_death();
        assert_eq!(h.record(false), Some(Down));
    }

    #[test]
    fn mark_down_is_down_at_once_and_needs_rise_passes_back() {
        let mut h = HealthState::new(2, 3);
        assert_eq!(h.mark_down(), Some(Down));
        assert!(!h.is_up());
        assert_eq!(h.mark_down(), None, "already DOWN: no second transition");
        assert_eq!(h.record(true), None);
        assert_eq!(h.record(true), Some(Up));
    }

    /// Feeds a string of `+` (pass) and `-` (fail) and returns the transitions, one per result.
    fn feed(s: &mut HealthState, results: &str) -> Vec<Option<Transition>> {
        results.chars().map(|c| s.record(c == '+')).collect()
    }

    #[test]
    fn a_fresh_server_is_up_and_falls_at_the_first_failure() {
        let mut s = HealthState::new(2, 3);
        assert!(s.is_up());
        assert_eq!(s.counters(), (2, 2, 3));
        assert_eq!(s.record(false), Some(Down));
        assert!(!s.is_up());
        assert_eq!(s.counters(), (0, 2, 3));
    }

    #[test]
    fn a_fresh_server_that_passes_once_is_fully_up() {
        let mut s = HealthState::new(2, 3);
        assert_eq!(s.record(true), None);
        assert_eq!(s.counters(), (4, 2, 3));
        assert_eq!(feed(&mut s, "--"), [None, None]);
        assert_eq!(s.record(false), Some(Down));
    }

    #[test]
    fn a_down_server_needs_rise_passes() {
        let mut s = HealthState::new_down(2, 3);
        assert!(!s.is_up());
        assert_eq!(feed(&mut s, "++"), [None, Some(Up)]);
        assert_eq!(s.counters(), (4, 2, 3));
    }

    #[test]
    fn after_rising_it_needs_fall_failures() {
        let mut s = HealthState::new_down(3, 4);
        assert_eq!(feed(&mut s, "+++"), [None, None, Some(Up)]);
        assert_eq!(feed(&mut s, "----"), [None, None, None, Some(Down)]);
    }

    #[test]
    fn a_pass_while_going_down_restores_full_health() {
        let mut s = HealthState::new_down(2, 3);
        feed(&mut s, "++");
        assert_eq!(feed(&mut s, "--+--"), [None, None, None, None, None]);
        assert!(s.is_up());
        assert_eq!(s.record(false), Some(Down));
    }

    #[test]
    fn a_failure_while_going_up_starts_over() {
        let mut s = HealthState::new_down(3, 2);
        assert_eq!(feed(&mut s, "++-++"), [None; 5]);
        assert!(!s.is_up());
        assert_eq!(s.record(true), Some(Up));
    }

    #[test]
    fn flapping_reports_each_flip_once() {
        let mut s = HealthState::new(2, 2);
        let got = feed(&mut s, "-++--++--");
        assert_eq!(
            got,
            [
                Some(Down),
                None,
                Some(Up),
                None,
                Some(Down),
                None,
                Some(Up),
                None,
                Some(Down)
            ]
        );
        // Alternating results never flip a server that is fully up.
        let mut s = HealthState::new_down(2, 2);
        feed(&mut s, "++");
        assert!(feed(&mut s, "-+-+-+-+").iter().all(Option::is_none));
        assert!(s.is_up());
        // Nor one that is down.
        let mut s = HealthState::new_down(2, 2);
        assert!(feed(&mut s, "+-+-+-+-").iter().all(Option::is_none));
        assert!(!s.is_up());
    }

    #[test]
    fn rise_1_fall_1_follows_every_result() {
        let mut s = HealthState::new(1, 1);
        assert_eq!(s.counters(), (1, 1, 1));
        let got = feed(&mut s, "+-+--++");
        assert_eq!(
            got,
            [None, Some(Down), Some(Up), Some(Down), None, Some(Up), None]
        );
    }

    #[test]
    fn repeated_results_saturate() {
        let mut s = HealthState::new(2, 3);
        feed(&mut s, &"+".repeat(10));
        assert_eq!(s.counters().0, 4);
        feed(&mut s, &"-".repeat(10));
        assert_eq!(s.counters().0, 0);
    }

    #[test]
    fn zero_rise_or_fall_is_taken_as_one() {
        let mut s = HealthState::new(0, 0);
        assert_eq!(s.counters(), (1, 1, 1));
        assert_eq!(s.record(false), Some(Down));
        assert_eq!(HealthState::new_down(0, 5).counters(), (0, 1, 5));
    }

    #[test]
    fn next_interval_follows_the_counter() {
        let (inter, fast, down) = (
            Duration::from_secs(2),
            Duration::from_millis(500),
            Duration::from_secs(10),
        );
        let next = |s: &HealthState| s.next_interval(inter, fast, down);
        let mut s = HealthState::new(2, 3);
        assert_eq!(next(&s), fast, "fresh: not yet confirmed");
        s.record(true);
        assert_eq!(next(&s), inter, "fully up");
        s.record(false);
        assert_eq!(next(&s), fast, "going down");
        s.record(false);
        assert_eq!(next(&s), fast, "going down");
        s.record(false);
        assert_eq!(next(&s), down, "down");
        s.record(true);
        assert_eq!(next(&s), fast, "going up");
        s.record(true);
        assert_eq!(next(&s), inter, "up again");
        let s = HealthState::new(1, 1);
        assert_eq!(next(&s), inter, "rise 1 fall 1 is always settled");
    }

    #[test]
    fn status_text_matches_haproxy() {
        let mut s = HealthState::new(2, 3);
        assert_eq!(s.status_text(), "UP 1/3");
        s.record(true);
        assert_eq!(s.status_text(), "UP");
        s.record(false);
        assert_eq!(s.status_text(), "UP 2/3");
        s.record(false);
        assert_eq!(s.status_text(), "UP 1/3");
        s.record(false);
        assert_eq!(s.status_text(), "DOWN");
        s.record(true);
        assert_eq!(s.status_text(), "DOWN 1/2");
        s.record(true);
        assert_eq!(s.status_text(), "UP");
        assert_eq!(HealthState::new(1, 1).status_text(), "UP");
        assert_eq!(HealthState::new_down(1, 1).status_text(), "DOWN");
    }

    #[test]
    fn check_status_codes_descriptions_and_results() {
        let table = [
            (CheckStatus::L4Ok, "L4OK", "Layer4 check passed", true),
            (CheckStatus::L4TimeOut, "L4TOUT", "Layer4 timeout", false),
            (
                CheckStatus::L4Con,
                "L4CON",
                "Layer4 connection problem",
                false,
            ),
            (CheckStatus::L6Ok, "L6OK", "Layer6 check passed", true),
            (CheckStatus::L6TimeOut, "L6TOUT", "Layer6 timeout", false),
            (
                CheckStatus::L6Rsp,
                "L6RSP",
                "Layer6 invalid response",
                false,
            ),
            (CheckStatus::L7Ok, "L7OK", "Layer7 check passed", true),
            (CheckStatus::L7TimeOut, "L7TOUT", "Layer7 timeout", false),
            (
                CheckStatus::L7Rsp,
                "L7RSP",
                "Layer7 invalid response",
                false,
            ),
            (CheckStatus::L7Sts, "L7STS", "Layer7 wrong status", false),
            (CheckStatus::SockErr, "SOCKERR", "Socket error", false),
            (CheckStatus::Hana, "HANA", "Health analyze", false),
        ];
        for (status, code, description, passed) in table {
            assert_eq!(status.code(), code);
            assert_eq!(status.to_string(), code);
            assert_eq!(status.description(), description);
            assert_eq!(status.passed(), passed, "{code}");
        }
    }
}
