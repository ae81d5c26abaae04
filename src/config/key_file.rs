//! BIND key files, as `tsig-keygen` writes them:
//! `key "name" { algorithm hmac-sha256; secret "BASE64"; };`.
//!
//! Only what a `[[tsig]]` table's `secret_file` needs is read: the algorithm and secret of one
//! named key. Checking them (a supported algorithm, valid base64) is left to the caller, which
//! knows where in the main file to point.

use hickory_proto::rr::Name;

use super::key_name::key_name;

/// One key from a key file, as written there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyFileEntry {
    /// The algorithm name, e.g. `hmac-sha256`.
    pub algorithm: String,
    /// The secret in base64.
    pub secret: String,
}

/// Why a key file did not yield the key asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KeyFileError {
    #[error("a key statement has no name")]
    Unnamed,
    #[error("key \"{key}\" has no algorithm")]
    NoAlgorithm { key: String },
    #[error("key \"{key}\" has no secret")]
    NoSecret { key: String },
    #[error(
        "holds no key named \"{name}\" (expected key \"{name}\" {{ algorithm ...; secret \"...\"; }};)"
    )]
    NotFound { name: Name },
}

/// The algorithm and secret of the key `name` in the key file `text`.
pub(crate) fn find_key(text: &str, name: &Name) -> Result<KeyFileEntry, KeyFileError> {
    let words = words(text);
    let mut index = 0;
    while index < words.len() {
        if words[index] != "key" {
            index += 1;
            continue;
        }
        let key = words
            .get(index + 1)
            .map(|word| word.trim_matches('"'))
            .ok_or(KeyFileError::Unnamed)?;
        // A key statement ends at its closing brace (or at the end of the file).
        let end = words[index..]
            .iter()
            .position(|word| word == "}")
            .map_or(words.len(), |offset| index + offset);
        let body = &words[index..end];
        index = end;
        if key_name(key).ok().as_ref() == Some(name) {
            return key_entry(key, body);
        }
    }
    Err(KeyFileError::NotFound { name: name.clone() })
}

/// The text without comments (`#`, `//`), split into words and the punctuation `{`, `}`, `;`.
fn words(text: &str) -> Vec<String> {
    let cleaned: String = text
        .lines()
        .map(|line| {
            let line = line.split('#').next().unwrap_or("");
            line.split("//").next().unwrap_or("")
        })
        .collect::<Vec<_>>()
        .join("\n");
    cleaned
        .replace('{', " { ")
        .replace('}', " } ")
        .replace(';', " ; ")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The `algorithm` and `secret` statements in the body of the key statement for `key`.
fn key_entry(key: &str, body: &[String]) -> Result<KeyFileEntry, KeyFileError> {
    let value_of = |keyword: &str| {
        body.iter()
            .position(|word| word == keyword)
            .and_then(|at| body.get(at + 1))
            .map(|word| word.trim_matches('"').to_string())
    };
    let algorithm = value_of("algorithm").ok_or_else(|| KeyFileError::NoAlgorithm {
        key: key.to_string(),
    })?;
    let secret = value_of("secret").ok_or_else(|| KeyFileError::NoSecret {
        key: key.to_string(),
    })?;
    Ok(KeyFileEntry { algorithm, secret })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPS_KEY: &str = "key \"ops-key\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0LXNlY3JldC1zZWNyZXQ=\";\n};\n";

    fn name(text: &str) -> Name {
        key_name(text).expect("a valid key name")
    }

    #[test]
    fn reads_what_tsig_keygen_writes() {
        let entry = find_key(OPS_KEY, &name("ops-key")).expect("found");
        assert_eq!(entry.algorithm, "hmac-sha256");
        assert_eq!(entry.secret, "c2VjcmV0LXNlY3JldC1zZWNyZXQ=");
        // The name in the file is compared as a key name: absolute, any case.
        assert_eq!(find_key(OPS_KEY, &name("OPS-KEY.")), Ok(entry));
    }

    #[test]
    fn picks_the_named_key_among_several_and_skips_comments() {
        let text = format!(
            "# made by tsig-keygen\nkey \"other\" {{ algorithm hmac-sha512; secret \"b3RoZXI=\"; }};\n// the one we want\n{OPS_KEY}"
        );
        let entry = find_key(&text, &name("ops-key")).expect("found");
        assert_eq!(entry.algorithm, "hmac-sha256");
        let other = find_key(&text, &name("other")).expect("found");
        assert_eq!(other.algorithm, "hmac-sha512");
        assert_eq!(other.secret, "b3RoZXI=");
    }

    #[test]
    fn a_missing_key_is_named_in_the_error() {
        let error = find_key(OPS_KEY, &name("other")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "holds no key named \"other.\" (expected key \"other.\" { algorithm ...; secret \"...\"; };)"
        );
        assert!(matches!(
            find_key("", &name("ops-key")),
            Err(KeyFileError::NotFound { .. })
        ));
    }

    #[test]
    fn incomplete_key_statements_are_refused() {
        assert_eq!(
            find_key(
                "key \"ops-key\" { secret \"c2VjcmV0\"; };",
                &name("ops-key")
            ),
            Err(KeyFileError::NoAlgorithm {
                key: "ops-key".to_string()
            })
        );
        let error = find_key(
            "key \"ops-key\" { algorithm hmac-sha256; };",
            &name("ops-key"),
        )
        .unwrap_err();
        assert_eq!(error.to_string(), "key \"ops-key\" has no secret");
        assert_eq!(
            find_key("key", &name("ops-key")),
            Err(KeyFileError::Unnamed)
        );
    }
}
