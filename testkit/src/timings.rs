//! Summaries of measured durations, as the benches print them.

use std::time::Duration;

/// The median of `samples` (the upper one of an even count), or `None` without samples.
pub fn median(samples: &[Duration]) -> Option<Duration> {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied()
}

/// "median 12ms, max 30ms, min 4ms (n=20)", or "no trials" without samples.
pub fn summary(samples: &[Duration]) -> String {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let (Some(min), Some(max)) = (sorted.first(), sorted.last()) else {
        return "no trials".to_string();
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "median {:.0}ms, max {:.0}ms, min {:.0}ms (n={})",
        ms(sorted[sorted.len() / 2]),
        ms(*max),
        ms(*min),
        sorted.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_sorts_before_it_picks() {
        let samples = [30, 4, 12].map(Duration::from_millis);
        assert_eq!(summary(&samples), "median 12ms, max 30ms, min 4ms (n=3)");
        assert_eq!(median(&samples), Some(Duration::from_millis(12)));
    }

    #[test]
    fn no_samples_are_no_trials() {
        assert_eq!(summary(&[]), "no trials");
        assert_eq!(median(&[]), None);
    }
}
