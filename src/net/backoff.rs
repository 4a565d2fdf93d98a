//! Waiting after a failed `accept(2)`. The usual causes (out of file descriptors, EMFILE,
//! or memory) persist for a while: retrying at once would spin a worker at 100% and flood
//! the log, so each accept loop waits, doubling the wait up to a second, and starts again
//! from the shortest wait after a success (mini-redis's habit; HAProxy pauses its listeners
//! the same way).

use std::time::Duration;

const FIRST: Duration = Duration::from_millis(10);
const MAX: Duration = Duration::from_secs(1);

/// The wait before the next `accept` after failures.
#[derive(Debug)]
pub struct AcceptBackoff {
    next: Duration,
}

impl Default for AcceptBackoff {
    fn default() -> AcceptBackoff {
        AcceptBackoff { next: FIRST }
    }
}

impl AcceptBackoff {
    /// An accept succeeded: the next failure waits the shortest time again.
    pub fn succeeded(&mut self) {
        self.next = FIRST;
    }

    /// An accept failed: how long to wait before trying again.
    pub fn failed(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(MAX);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_a_second_and_starts_over_after_a_success() {
        let mut b = AcceptBackoff::default();
        let waits: Vec<u128> = (0..9).map(|_| b.failed().as_millis()).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        b.succeeded();
        assert_eq!(b.failed(), FIRST);
    }
}
