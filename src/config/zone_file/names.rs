//! Names in a zone file: the origin, and names that may be relative to it.

use hickory_proto::rr::Name;
use toml::Spanned;

use crate::config::error::{ConfigError, Source};

/// The zone's origin: absolute, lower case, not the root.
pub(super) fn parse_origin(
    source: &Source<'_>,
    origin: &Spanned<String>,
) -> Result<Name, ConfigError> {
    let text = origin.get_ref();
    if !text.ends_with('.') {
        return Err(source.error(
            origin.span(),
            "origin",
            format!("\"{text}\" is not absolute (write it with a trailing dot: \"{text}.\")"),
        ));
    }
    let name = Name::from_ascii(text)
        .map_err(|error| source.error(origin.span(), "origin", format!("\"{text}\": {error}")))?;
    if name.is_root() {
        return Err(source.error(origin.span(), "origin", "the root zone cannot be served"));
    }
    Ok(name.to_lowercase())
}

/// A name from the file: `@` is the origin, a trailing dot makes it absolute, anything else is
/// relative to the origin. The result must lie inside the zone when `in_zone` is set.
pub(super) fn parse_name(
    source: &Source<'_>,
    text: &Spanned<String>,
    origin: &Name,
    field: &str,
    in_zone: bool,
) -> Result<Name, ConfigError> {
    let error = |message: String| source.error(text.span(), field, message);
    let raw = text.get_ref().trim();
    let name = if raw == "@" {
        origin.clone()
    } else if raw.is_empty() {
        return Err(error(
            "a name cannot be empty (use \"@\" for the zone apex)".to_string(),
        ));
    } else if raw.split('.').any(|label| label == "*") {
        return Err(error("wildcard names are not supported".to_string()));
    } else {
        Name::parse(raw, Some(origin))
            .map_err(|reason| error(format!("\"{raw}\" is not a valid name: {reason}")))?
    };
    let name = name.to_lowercase();
    if in_zone && !origin.zone_of(&name) {
        return Err(error(format!("{name} is outside the zone {origin}")));
    }
    Ok(name)
}
