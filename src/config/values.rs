//! Checks shared by the main and zone files: integers in range, durations, probe settings.

use std::ops::{Range, RangeInclusive};

use hickory_proto::rr::Name;
use toml::Spanned;

use super::error::{ConfigError, Source};
use super::file::ProbeSection;
use super::model::ProbeSettings;
use super::parse_duration;
use super::probe::probe_kind;

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

/// The pool that probe settings are for. Its name is the default TLS server name of an HTTPS
/// probe, and an error about that name points at the pool's key.
pub(crate) struct PoolName<'a> {
    pub name: &'a Name,
    pub span: Range<usize>,
}

/// Probe settings from `section` (a pool without a `probe` table passes `None`) on top of
/// `defaults`, checked for consistency. `pool` is `None` for the `[probe]` defaults themselves.
pub(crate) fn probe_settings(
    source: &Source<'_>,
    section: Option<&ProbeSection>,
    defaults: &ProbeSettings,
    prefix: &str,
    pool: Option<&PoolName<'_>>,
) -> Result<ProbeSettings, ConfigError> {
    let empty = ProbeSection::default();
    let section = section.unwrap_or(&empty);
    let duration = |value: &Option<Spanned<String>>, name: &str, default| match value {
        Some(text) => parse_duration(text.get_ref())
            .map_err(|message| source.error(text.span(), format!("{prefix}.{name}"), message)),
        None => Ok(default),
    };
    let settings = ProbeSettings {
        interval: duration(&section.interval, "interval", defaults.interval)?,
        timeout: duration(&section.timeout, "timeout", defaults.timeout)?,
        fast_interval: duration(
            &section.fast_interval,
            "fast_interval",
            defaults.fast_interval,
        )?,
        rise: integer_or(
            source,
            &section.rise,
            &format!("{prefix}.rise"),
            1..=100,
            defaults.rise,
        )?,
        fall: integer_or(
            source,
            &section.fall,
            &format!("{prefix}.fall"),
            1..=100,
            defaults.fall,
        )?,
        kind: probe_kind(source, section, &defaults.kind, prefix, pool)?,
        hold: section
            .hold
            .as_ref()
            .map_or(defaults.hold, |hold| *hold.get_ref()),
    };
    let at = |value: &Option<Spanned<String>>| value.as_ref().map_or(0..0, |v| v.span());
    if settings.interval < std::time::Duration::from_millis(10) {
        return Err(source.error(
            at(&section.interval),
            format!("{prefix}.interval"),
            "must be at least 10ms",
        ));
    }
    if settings.timeout.is_zero() || settings.timeout >= settings.interval {
        return Err(source.error(
            section
                .timeout
                .as_ref()
                .or(section.interval.as_ref())
                .map_or(0..0, |v| v.span()),
            format!("{prefix}.timeout"),
            format!(
                "timeout ({}) must be above zero and shorter than interval ({}), so that one probe ends before the next starts",
                super::format_duration(settings.timeout),
                super::format_duration(settings.interval)
            ),
        ));
    }
    if settings.fast_interval.is_zero() || settings.fast_interval > settings.interval {
        return Err(source.error(
            at(&section.fast_interval),
            format!("{prefix}.fast_interval"),
            format!(
                "fast_interval ({}) must be above zero and at most interval ({})",
                super::format_duration(settings.fast_interval),
                super::format_duration(settings.interval)
            ),
        ));
    }
    Ok(settings)
}
