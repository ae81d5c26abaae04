//! Checks shared by the main and zone files: integers in range and durations.

use std::ops::RangeInclusive;
use std::time::Duration;

use toml::Spanned;

use super::duration::parse_duration;
use super::error::{ConfigError, Source};

/// An integer that must lie in `range`.
pub(crate) fn integer<T>(
    source: &Source<'_>,
    value: &Spanned<i64>,
    field: &str,
    range: RangeInclusive<i64>,
) -> Result<T, ConfigError>
where
    T: TryFrom<i64>,
{
    let number = *value.get_ref();
    if !range.contains(&number) {
        return Err(source.error(
            value.span(),
            field,
            format!(
                "{number} is out of range (expected {} to {})",
                range.start(),
                range.end()
            ),
        ));
    }
    T::try_from(number).map_err(|_| source.error(value.span(), field, "value out of range"))
}

/// An optional integer in `range`, or `default`.
pub(crate) fn integer_or<T>(
    source: &Source<'_>,
    value: &Option<Spanned<i64>>,
    field: &str,
    range: RangeInclusive<i64>,
    default: T,
) -> Result<T, ConfigError>
where
    T: TryFrom<i64>,
{
    match value {
        Some(value) => integer(source, value, field, range),
        None => Ok(default),
    }
}

/// An optional duration such as `"500ms"`, or `default`.
pub(crate) fn duration_or(
    source: &Source<'_>,
    value: &Option<Spanned<String>>,
    field: &str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match value {
        Some(text) => {
            parse_duration(text.get_ref()).map_err(|error| source.error(text.span(), field, error))
        }
        None => Ok(default),
    }
}
