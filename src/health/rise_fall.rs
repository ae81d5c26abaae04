//! The rise/fall state machine of one member: pure logic, no I/O, no clock.

use std::time::Duration;

use crate::config::ProbeSettings;
use crate::zone::Health;

/// A change of a member's health, with what caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: Health,
    pub to: Health,
    /// Consecutive results that agreed with the new state.
    pub consecutive: u32,
}

/// Up/Down with hysteresis: `fall` consecutive failures take an up member down, `rise`
/// consecutive successes bring a down member up. The very first result decides at once, so that
/// the first answers at start-up already reflect reality instead of waiting `rise` rounds.
#[derive(Debug, Clone)]
pub struct Machine {
    settings: ProbeSettings,
    health: Health,
    /// Consecutive results that disagree with `health`.
    streak: u32,
}

impl Machine {
    pub fn new(settings: ProbeSettings) -> Self {
        Self {
            settings,
            health: Health::Pending,
            streak: 0,
        }
    }

    /// Starts from a known state, e.g. a member kept across a reload.
    pub fn resume(settings: ProbeSettings, health: Health) -> Self {
        Self {
            settings,
            health,
            streak: 0,
        }
    }

    pub fn health(&self) -> Health {
        self.health
    }

    /// Feeds one probe result; returns the transition it caused, if any.
    pub fn observe(&mut self, success: bool) -> Option<Transition> {
        let agrees = matches!(
            (self.health, success),
            (Health::Up, true) | (Health::Down, false)
        );
        if agrees {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = match self.health {
            Health::Pending => 1,
            Health::Up => self.settings.fall,
            Health::Down => self.settings.rise,
        };
        if self.streak < needed {
            return None;
        }
        let transition = Transition {
            from: self.health,
            to: if success { Health::Up } else { Health::Down },
            consecutive: self.streak,
        };
        self.health = transition.to;
        self.streak = 0;
        Some(transition)
    }

    /// Takes the member down at once, whatever `fall` says: held TCP probes call this when the
    /// held connection ended and the reconnect made at once failed. Those are two independent
    /// failure signals (the close or reset, and the refused or timed-out connect), which is how
    /// `fall` is satisfied in held mode. Returns `None` when the member is already down.
    pub fn force_down(&mut self) -> Option<Transition> {
        if self.health == Health::Down {
            self.streak = 0;
            return None;
        }
        let transition = Transition {
            from: self.health,
            to: Health::Down,
            consecutive: self.streak + 2,
        };
        self.health = Health::Down;
        self.streak = 0;
        Some(transition)
    }

    /// Time until the next probe: `fast_interval` while a change is being confirmed (HAProxy's
    /// `fastinter`), `interval` otherwise.
    pub fn next_delay(&self) -> Duration {
        if self.streak > 0 {
            self.settings.fast_interval
        } else {
            self.settings.interval
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> Machine {
        Machine::new(ProbeSettings {
            rise: 2,
            fall: 3,
            ..ProbeSettings::default()
        })
    }

    #[test]
    fn first_result_decides_at_once() {
        let mut up = machine();
        assert_eq!(up.observe(true).map(|t| t.to), Some(Health::Up));
        let mut down = machine();
        assert_eq!(down.observe(false).map(|t| t.to), Some(Health::Down));
    }

    #[test]
    fn fall_needs_consecutive_failures_and_probes_fast_meanwhile() {
        let mut m = machine();
        m.observe(true);
        assert_eq!(m.next_delay(), ProbeSettings::default().interval);
        assert_eq!(m.observe(false), None);
        assert_eq!(m.next_delay(), ProbeSettings::default().fast_interval);
        assert_eq!(m.observe(false), None);
        let t = m.observe(false).expect("third failure takes it down");
        assert_eq!((t.from, t.to, t.consecutive), (Health::Up, Health::Down, 3));
        assert_eq!(m.next_delay(), ProbeSettings::default().interval);
    }

    #[test]
    fn a_broken_streak_starts_over() {
        let mut m = machine();
        m.observe(true);
        m.observe(false);
        m.observe(false);
        assert_eq!(m.observe(true), None, "success breaks the failure streak");
        assert_eq!(m.next_delay(), ProbeSettings::default().interval);
        m.observe(false);
        m.observe(false);
        assert_eq!(m.health(), Health::Up);
    }

    #[test]
    fn force_down_ignores_fall() {
        let mut m = machine();
        m.observe(true);
        let t = m.force_down().expect("down at once");
        assert_eq!((t.from, t.to, t.consecutive), (Health::Up, Health::Down, 2));
        assert_eq!(m.force_down(), None);
        assert_eq!(m.observe(true), None, "rise still applies");
    }

    #[test]
    fn rise_brings_it_back() {
        let mut m = machine();
        m.observe(false);
        assert_eq!(m.observe(true), None);
        let t = m.observe(true).expect("second success brings it up");
        assert_eq!((t.from, t.to, t.consecutive), (Health::Down, Health::Up, 2));
    }
}
