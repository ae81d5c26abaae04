//! TSIG key names as the configuration writes them (`ops-key`, `ops-key.`), shared by the
//! `[[tsig]]` tables, BIND key files and a zone's `update.keys`.

use hickory_proto::ProtoError;
use hickory_proto::rr::Name;

/// Why a key name was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyNameError {
    #[error("a key name cannot be empty")]
    Empty,
    #[error("\"{text}\" is not a valid key name: {error}")]
    Invalid { text: String, error: ProtoError },
}

/// A TSIG key name made absolute and lower case, as it appears on the wire.
pub(crate) fn key_name(text: &str) -> Result<Name, KeyNameError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(KeyNameError::Empty);
    }
    let invalid = |error| KeyNameError::Invalid {
        text: text.to_string(),
        error,
    };
    let name = Name::from_ascii(text).map_err(invalid)?;
    let name = if name.is_fqdn() {
        name
    } else {
        name.append_domain(&Name::root()).map_err(invalid)?
    };
    Ok(name.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_absolute_and_lower_case() {
        let name = key_name(" Ops-Key ").expect("valid");
        assert_eq!(name.to_string(), "ops-key.");
        assert_eq!(key_name("ops-key.").expect("valid"), name);
    }

    #[test]
    fn empty_and_invalid_names_are_refused() {
        assert_eq!(
            key_name("  ").unwrap_err().to_string(),
            "a key name cannot be empty"
        );
        let error = key_name("a..b").unwrap_err().to_string();
        assert!(
            error.starts_with("\"a..b\" is not a valid key name: "),
            "{error}"
        );
    }
}
