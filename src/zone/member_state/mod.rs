//! The health of one pool member as the rest of apidns sees it: a small shared cell that the
//! prober writes, the live-set builder reads (one atomic load), and reports read in full.
//!
//! This is vocabulary shared by the layers above the snapshot, so it lives at the snapshot's
//! level and imports nothing of apidns: `zone` keeps each member's cell in its pools and builds
//! live sets from it, `health` writes it, `metrics` labels series with its [`Signal`], and
//! `/status` reads its [`ProbeReport`]. None of them needs to import another to share it.

mod probe_failure;
mod signal;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, SystemTime};

pub use probe_failure::ProbeFailure;
pub use signal::Signal;

/// What is known about a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Health {
    /// Not probed yet: never answered, except when a pool answers with every member.
    Pending = 0,
    Up = 1,
    Down = 2,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Pending => "pending",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// The latest probe and its history, for status pages and the `probe` command.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    /// When the health last changed (or the member was first seen).
    pub since: SystemTime,
    pub last_probe: Option<SystemTime>,
    /// Latency of the last probe, or why it failed.
    pub last_result: Option<Result<Duration, ProbeFailure>>,
    pub consecutive_successes: u32,
    pub consecutive_failures: u32,
    pub transitions: u64,
    /// The last time the member went down, and why.
    pub last_down: Option<DownReport>,
}

/// What took a member down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownReport {
    pub signal: Signal,
    /// From the first failure signal of the streak to the down transition; `None` when the
    /// member was not up before (a first probe that failed).
    pub detection: Option<Duration>,
}

/// A member's current health, shared between its prober and every snapshot that serves it.
#[derive(Debug)]
pub struct MemberStatus {
    health: AtomicU8,
    /// Drained at run time (`apidns drain`): kept out of answers, still probed.
    drained: AtomicBool,
    report: Mutex<ProbeReport>,
}

impl MemberStatus {
    pub fn new(health: Health) -> Self {
        Self {
            health: AtomicU8::new(health as u8),
            drained: AtomicBool::new(false),
            report: Mutex::new(ProbeReport {
                since: SystemTime::now(),
                last_probe: None,
                last_result: None,
                consecutive_successes: 0,
                consecutive_failures: 0,
                transitions: 0,
                last_down: None,
            }),
        }
    }

    pub fn health(&self) -> Health {
        match self.health.load(Ordering::Acquire) {
            1 => Health::Up,
            2 => Health::Down,
            _ => Health::Pending,
        }
    }

    /// Sets the health and says whether it changed.
    pub fn set(&self, health: Health) -> bool {
        let changed = self.health.swap(health as u8, Ordering::AcqRel) != health as u8;
        if changed {
            let mut report = self.lock_report();
            report.since = SystemTime::now();
            report.transitions += 1;
        }
        changed
    }

    /// Records what took the member down, after [`MemberStatus::set`] took it down.
    pub fn record_down(&self, down: DownReport) {
        self.lock_report().last_down = Some(down);
    }

    pub fn is_drained(&self) -> bool {
        self.drained.load(Ordering::Acquire)
    }

    /// Drains or undrains the member; says whether that changed anything.
    pub fn set_drained(&self, drained: bool) -> bool {
        self.drained.swap(drained, Ordering::AcqRel) != drained
    }

    /// Records one probe result.
    pub fn record(&self, result: &Result<Duration, ProbeFailure>) {
        let mut report = self.lock_report();
        report.last_probe = Some(SystemTime::now());
        if result.is_ok() {
            report.consecutive_successes += 1;
            report.consecutive_failures = 0;
        } else {
            report.consecutive_failures += 1;
            report.consecutive_successes = 0;
        }
        report.last_result = Some(result.clone());
    }

    pub fn report(&self) -> ProbeReport {
        self.lock_report().clone()
    }

    fn lock_report(&self) -> std::sync::MutexGuard<'_, ProbeReport> {
        // The report is plain data; a panic elsewhere cannot leave it half-written.
        self.report
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
