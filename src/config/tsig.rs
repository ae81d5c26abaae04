//! `[[tsig]]` tables of the main file: TSIG keys (RFC 8945), each with its secret inline or in a
//! BIND key file, checked into [`TsigKey`]s.

use std::ops::Range;
use std::path::Path;

use hickory_proto::rr::Name;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use toml::Spanned;

use super::error::{ConfigError, Source};
use super::file::TsigSection;
use super::key_file::find_key;
use super::key_name::key_name;
use super::model::TsigKey;

/// Every `[[tsig]]` table as a key; a name may be defined once. `base` is the main file's
/// directory, which a relative `secret_file` is read from.
pub(crate) fn tsig_keys(
    source: &Source<'_>,
    sections: &[Spanned<TsigSection>],
    base: &Path,
) -> Result<Vec<TsigKey>, ConfigError> {
    let mut keys: Vec<TsigKey> = Vec::with_capacity(sections.len());
    for (index, section) in sections.iter().enumerate() {
        let prefix = format!("tsig[{index}]");
        let tsig = section.get_ref();
        let name = key_name(tsig.name.get_ref())
            .map_err(|error| source.error(tsig.name.span(), format!("{prefix}.name"), error))?;
        if keys.iter().any(|key| key.name == name) {
            return Err(source.error(
                tsig.name.span(),
                format!("{prefix}.name"),
                format!("key {name} is defined twice"),
            ));
        }
        let secret = SecretText::read(source, section, &prefix, base, &name)?;
        let algorithm = algorithm(source, section, &prefix, secret.file_algorithm.as_deref())?;
        keys.push(TsigKey {
            name,
            algorithm,
            secret: secret.decode(source)?,
        });
    }
    Ok(keys)
}

/// A key's secret in base64, from the table or from its key file, and where to point when it is
/// wrong.
struct SecretText {
    /// The algorithm the key file names, if the secret came from one.
    file_algorithm: Option<String>,
    text: String,
    span: Range<usize>,
    field: String,
}

impl SecretText {
    fn read(
        source: &Source<'_>,
        section: &Spanned<TsigSection>,
        prefix: &str,
        base: &Path,
        name: &Name,
    ) -> Result<Self, ConfigError> {
        let tsig = section.get_ref();
        match (&tsig.secret, &tsig.secret_file) {
            (Some(secret), None) => Ok(Self {
                file_algorithm: None,
                text: secret.get_ref().clone(),
                span: secret.span(),
                field: format!("{prefix}.secret"),
            }),
            (None, Some(file)) => Self::read_file(source, file, prefix, base, name),
            _ => Err(source.error(
                section.span(),
                prefix,
                "needs exactly one of secret (base64) or secret_file (a tsig-keygen key file)",
            )),
        }
    }

    fn read_file(
        source: &Source<'_>,
        file: &Spanned<String>,
        prefix: &str,
        base: &Path,
        name: &Name,
    ) -> Result<Self, ConfigError> {
        let field = format!("{prefix}.secret_file");
        let path = base.join(file.get_ref());
        let text = std::fs::read_to_string(&path).map_err(|error| {
            source.error(
                file.span(),
                &field,
                format!("cannot read {}: {error}", path.display()),
            )
        })?;
        let entry = find_key(&text, name).map_err(|error| {
            source.error(file.span(), &field, format!("{}: {error}", path.display()))
        })?;
        Ok(Self {
            file_algorithm: Some(entry.algorithm),
            text: entry.secret,
            span: file.span(),
            field,
        })
    }

    /// The secret's bytes: valid base64, and long enough to resist guessing.
    fn decode(self, source: &Source<'_>) -> Result<Vec<u8>, ConfigError> {
        let secret = data_encoding::BASE64
            .decode(self.text.trim().as_bytes())
            .map_err(|_| {
                source.error(
                    self.span.clone(),
                    &self.field,
                    "is not base64 (generate one with `tsig-keygen -a hmac-sha256 NAME` or `openssl rand -base64 32`)",
                )
            })?;
        if secret.len() < 16 {
            return Err(source.error(
                self.span,
                self.field,
                format!(
                    "is {} bytes long; use at least 16 random bytes",
                    secret.len()
                ),
            ));
        }
        Ok(secret)
    }
}

/// The key's algorithm: from the table, else from its key file; when both name one they agree.
fn algorithm(
    source: &Source<'_>,
    section: &Spanned<TsigSection>,
    prefix: &str,
    file_algorithm: Option<&str>,
) -> Result<TsigAlgorithm, ConfigError> {
    let tsig = section.get_ref();
    let field = format!("{prefix}.algorithm");
    let text = match (&tsig.algorithm, file_algorithm) {
        (Some(text), _) => text.get_ref().as_str(),
        (None, Some(text)) => text,
        (None, None) => {
            return Err(source.error(
                section.span(),
                field,
                "is missing (expected \"hmac-sha256\" or \"hmac-sha512\")",
            ));
        }
    };
    let span = tsig
        .algorithm
        .as_ref()
        .map_or(section.span(), Spanned::span);
    let algorithm = tsig_algorithm(text).ok_or_else(|| {
        source.error(
            span.clone(),
            &field,
            format!(
                "\"{text}\" is not a supported algorithm (expected \"hmac-sha256\", \"hmac-sha384\" or \"hmac-sha512\")"
            ),
        )
    })?;
    if let Some(file_algorithm) = file_algorithm
        && tsig_algorithm(file_algorithm) != Some(algorithm.clone())
    {
        return Err(source.error(
            span,
            field,
            format!("says {text} but the key file says {file_algorithm}"),
        ));
    }
    Ok(algorithm)
}

/// The algorithms accepted for keys. HMAC-MD5 and HMAC-SHA1 are deprecated (RFC 8945 section 6)
/// and the truncated variants are not verified by the TSIG implementation apidns uses.
fn tsig_algorithm(text: &str) -> Option<TsigAlgorithm> {
    match text
        .trim()
        .trim_end_matches('.')
        .to_ascii_lowercase()
        .as_str()
    {
        "hmac-sha256" => Some(TsigAlgorithm::HmacSha256),
        "hmac-sha384" => Some(TsigAlgorithm::HmacSha384),
        "hmac-sha512" => Some(TsigAlgorithm::HmacSha512),
        _ => None,
    }
}
