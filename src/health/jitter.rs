//! Probe scheduling shared by every watch loop.

use std::time::Duration;

/// Spreads probes so that they do not march in step: the first wait after start-up is anywhere
/// in the interval, later ones vary by ±10%.
pub(crate) fn jittered(delay: Duration, first: bool) -> Duration {
    let factor = if first {
        rand::random_range(0.0..1.0)
    } else {
        rand::random_range(0.9..1.1)
    };
    delay.mul_f64(factor)
}
