//! A zone file's `update` table: which TSIG keys may send RFC 2136 updates, and what they may
//! change.

use crate::config::error::{ConfigError, Source};
use crate::config::file::UpdateSection;
use crate::config::key_name::key_name;
use crate::config::model::UpdatePolicy;

/// The `update` table. That its keys exist is checked against the main file by `config::load`.
pub(super) fn parse_update(
    source: &Source<'_>,
    section: &UpdateSection,
) -> Result<UpdatePolicy, ConfigError> {
    if section.allow.get_ref() != "pool-members" {
        return Err(source.error(
            section.allow.span(),
            "update.allow",
            format!(
                "\"{}\" is not an update policy (expected \"pool-members\": A/AAAA records at pool names add and remove members)",
                section.allow.get_ref()
            ),
        ));
    }
    if section.keys.get_ref().is_empty() {
        return Err(source.error(
            section.keys.span(),
            "update.keys",
            "needs at least one TSIG key name; without keys nobody could update the zone (remove the update table instead)",
        ));
    }
    let mut keys = Vec::new();
    for (index, key) in section.keys.get_ref().iter().enumerate() {
        let name = key_name(key.get_ref())
            .map_err(|error| source.error(key.span(), format!("update.keys[{index}]"), error))?;
        keys.push(name);
    }
    Ok(UpdatePolicy { keys })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{HEAD, parse_text};

    #[test]
    fn keys_are_absolute_names() {
        let zone = parse_text(&format!(
            "{HEAD}[update]\nkeys = [\"Ops-Key\", \"ci.\"]\nallow = \"pool-members\"\n"
        ))
        .expect("valid");
        let keys: Vec<String> = zone
            .update
            .expect("an update policy")
            .keys
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(keys, ["ops-key.", "ci."]);
    }

    #[test]
    fn errors_point_at_the_field() {
        let cases = [
            (
                "keys = [\"k\"]\nallow = \"anything\"",
                "update.allow",
                "not an update policy",
            ),
            (
                "keys = []\nallow = \"pool-members\"",
                "update.keys",
                "at least one TSIG key",
            ),
            (
                "keys = [\"\"]\nallow = \"pool-members\"",
                "update.keys[0]",
                "cannot be empty",
            ),
        ];
        for (table, field, message) in cases {
            let error = parse_text(&format!("{HEAD}[update]\n{table}\n")).unwrap_err();
            assert_eq!(error.field.as_deref(), Some(field), "{error}");
            assert!(error.message.contains(message), "{error}");
        }
    }
}
