//! Durations written as `"500ms"`, `"1s"`, `"1.5s"`, `"2m"`.

use std::time::Duration;

/// Why a duration was refused; each names the text as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("\"{0}\" has no unit (expected e.g. \"500ms\", \"1s\", \"2m\")")]
    NoUnit(String),
    #[error("\"{0}\" does not start with a number (expected e.g. \"500ms\")")]
    NoNumber(String),
    #[error("\"{text}\" has an unknown unit \"{unit}\" (expected ms, s, m or h)")]
    UnknownUnit { text: String, unit: String },
    #[error("\"{0}\" is too long")]
    TooLong(String),
}

/// Parses a human duration. Units: `ms`, `s`, `m`, `h` (a unit is required, so that `"5"` is never
/// silently five seconds when five milliseconds were meant).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| DurationError::NoUnit(text.to_string()))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| DurationError::NoNumber(text.to_string()))?;
    let seconds_per_unit = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(DurationError::UnknownUnit {
                text: text.to_string(),
                unit: unit.to_string(),
            });
        }
    };
    let seconds = value * seconds_per_unit;
    if !seconds.is_finite() || seconds > 86_400.0 * 365.0 {
        return Err(DurationError::TooLong(text.to_string()));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Formats a duration the way the configuration writes it.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{millis}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn rejects_missing_or_unknown_units() {
        let message = |text: &str| parse_duration(text).unwrap_err().to_string();
        assert_eq!(
            message("5"),
            "\"5\" has no unit (expected e.g. \"500ms\", \"1s\", \"2m\")"
        );
        assert_eq!(
            message("5d"),
            "\"5d\" has an unknown unit \"d\" (expected ms, s, m or h)"
        );
        assert!(message("ms").contains("number"));
        assert!(parse_duration("1e400s").is_err());
    }

    #[test]
    fn formats_round_trip() {
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(2)), "2s");
    }
}
