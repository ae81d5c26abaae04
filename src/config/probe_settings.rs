//! Probe settings as a whole: the timing keys (`interval`, `timeout`, `fast_interval`, `rise`,
//! `fall`, `hold`) of `[probe]` or a pool's `probe = { ... }`, merged over the defaults, with the
//! probe kind from `probe_kind`.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::duration::format_duration;
use super::error::{ConfigError, Source};
use super::file::ProbeSection;
use super::model::ProbeSettings;
use super::probe_kind::{PoolName, probe_kind};
use super::values::{duration_or, integer_or};

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
    let field = |key: &str| format!("{prefix}.{key}");
    let settings = ProbeSettings {
        interval: duration_or(
            source,
            &section.interval,
            &field("interval"),
            defaults.interval,
        )?,
        timeout: duration_or(
            source,
            &section.timeout,
            &field("timeout"),
            defaults.timeout,
        )?,
        fast_interval: duration_or(
            source,
            &section.fast_interval,
            &field("fast_interval"),
            defaults.fast_interval,
        )?,
        rise: integer_or(
            source,
            &section.rise,
            &field("rise"),
            1..=100,
            defaults.rise,
        )?,
        fall: integer_or(
            source,
            &section.fall,
            &field("fall"),
            1..=100,
            defaults.fall,
        )?,
        kind: probe_kind(source, section, &defaults.kind, prefix, pool)?,
        hold: section
            .hold
            .as_ref()
            .map_or(defaults.hold, |hold| *hold.get_ref()),
    };
    check_timing(source, section, &settings, prefix)?;
    Ok(settings)
}

/// One probe ends before the next starts, and the fast interval is no slower than the normal one.
fn check_timing(
    source: &Source<'_>,
    section: &ProbeSection,
    settings: &ProbeSettings,
    prefix: &str,
) -> Result<(), ConfigError> {
    let at = |value: &Option<Spanned<String>>| value.as_ref().map_or(0..0, Spanned::span);
    if settings.interval < Duration::from_millis(10) {
        return Err(source.error(
            at(&section.interval),
            format!("{prefix}.interval"),
            "must be at least 10ms",
        ));
    }
    if settings.timeout.is_zero() || settings.timeout >= settings.interval {
        let span: Range<usize> = section
            .timeout
            .as_ref()
            .or(section.interval.as_ref())
            .map_or(0..0, Spanned::span);
        return Err(source.error(
            span,
            format!("{prefix}.timeout"),
            format!(
                "timeout ({}) must be above zero and shorter than interval ({}), so that one probe ends before the next starts",
                format_duration(settings.timeout),
                format_duration(settings.interval)
            ),
        ));
    }
    if settings.fast_interval.is_zero() || settings.fast_interval > settings.interval {
        return Err(source.error(
            at(&section.fast_interval),
            format!("{prefix}.fast_interval"),
            format!(
                "fast_interval ({}) must be above zero and at most interval ({})",
                format_duration(settings.fast_interval),
                format_duration(settings.interval)
            ),
        ));
    }
    Ok(())
}
