//! Waits that watch for an event with a generous upper bound, and small helpers for comparing
//! what they saw.

use std::time::{Duration, Instant};

/// Polls `condition` every 5 ms until it holds, returning how long that took, or `None` once
/// `limit` has passed.
pub fn wait_until(limit: Duration, condition: impl FnMut() -> bool) -> Option<Duration> {
    wait_every(limit, Duration::from_millis(5), condition)
}

/// Polls `condition` every `every` (for conditions that are costly to check) until it holds,
/// returning how long that took, or `None` once `limit` has passed.
pub fn wait_every(
    limit: Duration,
    every: Duration,
    mut condition: impl FnMut() -> bool,
) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if condition() {
            return Some(started.elapsed());
        }
        std::thread::sleep(every);
    }
    None
}

/// Whether `condition` holds within `limit` (see [`wait_until`]).
pub fn eventually(limit: Duration, condition: impl FnMut() -> bool) -> bool {
    wait_until(limit, condition).is_some()
}

pub fn sorted(mut values: Vec<String>) -> Vec<String> {
    values.sort();
    values
}
