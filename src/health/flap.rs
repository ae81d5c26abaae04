//! Flap hold-down for held probes: a member that goes down again soon after coming back is
//! kept down for a while before successes count towards `rise` again, so that one signal never
//! makes it flap in and out of the answers.
//!
//! The rule, shared by the held TCP (`watch/held_tcp.rs`) and HTTP(S) (`watch/held_http.rs`) loops: down again
//! within `5 × interval` of coming back is a flap; each consecutive flap holds the member down
//! for at least `interval`, doubling, up to 30 s.

use std::time::Duration;

use tokio::time::Instant;
use tracing::warn;

use super::report::Reporter;
use super::rise_fall::{Machine, Transition};
use crate::zone::{Health, ProbeFailure};

/// The longest hold-down of a flapping member.
const HOLD_DOWN_MAX: Duration = Duration::from_secs(30);
/// A member that goes down within this many intervals of coming back up has flapped.
const FLAP_WINDOW_INTERVALS: u32 = 5;

/// One member's flap record.
#[derive(Debug)]
pub(crate) struct Flaps {
    interval: Duration,
    /// Consecutive flaps (down again soon after coming back).
    count: u32,
    /// When the member last came back up from down.
    up_since: Option<Instant>,
    /// Until when successes do not count towards `rise`.
    held_down_until: Option<Instant>,
}

impl Flaps {
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            interval,
            count: 0,
            up_since: None,
            held_down_until: None,
        }
    }

    /// Records one probe result and gives it to the machine, unless the member is held down
    /// after flapping. Returns the transition, if any, with the flap record updated for it.
    pub(crate) fn feed(
        &mut self,
        reporter: &mut Reporter,
        machine: &mut Machine,
        result: &Result<Duration, ProbeFailure>,
    ) -> Option<Transition> {
        reporter.record(result);
        if !self.counts(machine.health(), result.is_ok()) {
            return None;
        }
        let transition = machine.observe(result.is_ok());
        self.track(reporter, transition)
    }

    /// Takes the member down at once (two independent failure signals agreed, e.g. a held
    /// connection's loss and the failed reconnect), with the flap record updated for it. The
    /// failure is recorded once per signal, so that the status's consecutive failures agree
    /// with the transition's `consecutive` (see [`Machine::force_down`]).
    pub(crate) fn force_down(
        &mut self,
        reporter: &mut Reporter,
        machine: &mut Machine,
        result: &Result<Duration, ProbeFailure>,
    ) -> Option<Transition> {
        reporter.record(result);
        reporter.record(result);
        let transition = machine.force_down();
        self.track(reporter, transition)
    }

    /// Updates the record for a transition: a return from down starts the flap window, a fall
    /// within it earns a hold-down.
    fn track(&mut self, reporter: &Reporter, transition: Option<Transition>) -> Option<Transition> {
        let change = transition.as_ref()?;
        let now = Instant::now();
        match change.to {
            Health::Up if change.from == Health::Down => self.came_up(now),
            Health::Down => {
                if let Some(hold_down) = self.went_down(now) {
                    warn!(pool = %reporter.pool, member = %reporter.target, flaps = self.count, hold_down_ms = hold_down.as_millis() as u64, "member flaps: held down before rise counts again");
                }
            }
            Health::Up | Health::Pending => {}
        }
        transition
    }

    /// The member came back up from down.
    fn came_up(&mut self, now: Instant) {
        self.up_since = Some(now);
    }

    /// The member went down; returns the hold-down it earned, if it flapped.
    fn went_down(&mut self, now: Instant) -> Option<Duration> {
        let window = self.interval.saturating_mul(FLAP_WINDOW_INTERVALS);
        let flapped = self
            .up_since
            .is_some_and(|since| now.duration_since(since) < window);
        self.count = if flapped { self.count + 1 } else { 0 };
        let hold_down = hold_down(self.interval, self.count);
        self.held_down_until = (!hold_down.is_zero()).then(|| now + hold_down);
        (!hold_down.is_zero()).then_some(hold_down)
    }

    /// Whether a success now must not count towards `rise`.
    fn holds_down(&self, now: Instant) -> bool {
        self.held_down_until.is_some_and(|until| now < until)
    }

    /// Whether a probe result counts: a success of a down member does not while it is held
    /// down.
    fn counts(&self, health: Health, success: bool) -> bool {
        !(success && health == Health::Down && self.holds_down(Instant::now()))
    }
}

/// How long to wait before holding a connection again after `short_lived` connections in a
/// row that the server closed quickly: `interval` from the second on, doubling, up to 30 s.
pub(crate) fn rehold_backoff(interval: Duration, short_lived: u32) -> Duration {
    interval
        .saturating_mul(1 << short_lived.saturating_sub(2).min(16))
        .min(HOLD_DOWN_MAX)
}

/// How long a member that flapped `flaps` times in a row stays down at least.
fn hold_down(interval: Duration, flaps: u32) -> Duration {
    if flaps == 0 {
        return Duration::ZERO;
    }
    interval
        .saturating_mul(1 << (flaps - 1).min(16))
        .min(HOLD_DOWN_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_down_doubles_up_to_the_cap() {
        let second = Duration::from_secs(1);
        assert_eq!(hold_down(second, 0), Duration::ZERO);
        assert_eq!(hold_down(second, 1), second);
        assert_eq!(hold_down(second, 3), 4 * second);
        assert_eq!(hold_down(second, u32::MAX), HOLD_DOWN_MAX);
    }

    #[test]
    fn rehold_backoff_grows_after_the_second_short_connection() {
        let interval = Duration::from_secs(1);
        assert_eq!(rehold_backoff(interval, 2), interval);
        assert_eq!(rehold_backoff(interval, 3), 2 * interval);
        assert_eq!(rehold_backoff(interval, 40), HOLD_DOWN_MAX);
    }

    #[test]
    fn only_a_quick_return_to_down_is_a_flap() {
        let interval = Duration::from_secs(1);
        let mut flaps = Flaps::new(interval);
        let start = Instant::now();
        assert_eq!(flaps.went_down(start), None, "the first fall is no flap");
        flaps.came_up(start + interval);
        let again = start + 3 * interval;
        assert_eq!(flaps.went_down(again), Some(interval));
        assert!(flaps.holds_down(again + interval / 2));
        assert!(!flaps.holds_down(again + interval));
        flaps.came_up(again + 2 * interval);
        assert_eq!(flaps.went_down(again + 3 * interval), Some(2 * interval));
        flaps.came_up(again + 4 * interval);
        assert_eq!(
            flaps.went_down(again + 20 * interval),
            None,
            "down long after coming back: the streak ends"
        );
        assert_eq!(flaps.count, 0);
    }
}
