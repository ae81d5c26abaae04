//! The main file: `[server]` and `[probe]`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::error::{ConfigError, Source};
use hickory_proto::rr::Name;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use toml::Spanned;

use super::file::{MainFile, RrlSection, TsigSection};
use super::model::{DEFAULT_MAX_UDP_PAYLOAD, ProbeSettings, RrlSettings, ServerSettings, TsigKey};
use super::parse_duration;
use super::probe_settings::probe_settings;
use super::values::integer_or;

pub(crate) fn parse(
    path: &Path,
    text: &str,
) -> Result<(ServerSettings, ProbeSettings), ConfigError> {
    let source = Source { path, text };
    let file: MainFile = toml::from_str(text).map_err(|error| source.toml_error(&error))?;
    let server = &file.server;

    if server.listen.get_ref().is_empty() {
        return Err(source.error(
            server.listen.span(),
            "server.listen",
            "needs at least one address, e.g. [\"127.0.0.1:5353\"]",
        ));
    }
    let mut listen = Vec::new();
    let mut seen = HashSet::new();
    for (index, entry) in server.listen.get_ref().iter().enumerate() {
        let field = format!("server.listen[{index}]");
        let address = socket_address(&source, entry, &field)?;
        if !seen.insert(address) {
            return Err(source.error(entry.span(), field, format!("{address} is listed twice")));
        }
        listen.push(address);
    }

    let http = match &server.http {
        Some(entry) => Some(socket_address(&source, entry, "server.http")?),
        None => None,
    };

    let base = path.parent().unwrap_or(Path::new("."));
    let zones_dir = match &server.zones {
        Some(dir) => base.join(dir.get_ref()),
        None => base.join("zones"),
    };

    let tcp_idle_timeout = match &server.tcp_idle_timeout {
        Some(text) => parse_duration(text.get_ref())
            .map_err(|message| source.error(text.span(), "server.tcp_idle_timeout", message))?,
        None => Duration::from_secs(10),
    };
    if tcp_idle_timeout.is_zero() {
        let span = server.tcp_idle_timeout.as_ref().map_or(0..0, |t| t.span());
        return Err(source.error(span, "server.tcp_idle_timeout", "must be above zero"));
    }

    let settings = ServerSettings {
        listen,
        http,
        zones_dir,
        tcp_idle_timeout,
        tcp_max_connections: integer_or(
            &source,
            &server.tcp_max_connections,
            "server.tcp_max_connections",
            1..=1_000_000,
            1024,
        )?,
        max_udp_payload: integer_or(
            &source,
            &server.max_udp_payload,
            "server.max_udp_payload",
            512..=65535,
            DEFAULT_MAX_UDP_PAYLOAD,
        )?,
        admin_token: match &server.admin_token {
            Some(token) if token.get_ref().trim().len() < 16 => {
                return Err(source.error(
                    token.span(),
                    "server.admin_token",
                    "is too short to guess-proof (use 16 characters or more, e.g. from `openssl rand -hex 16`)",
                ));
            }
            Some(token) => Some(token.get_ref().trim().to_string()),
            None => None,
        },
        user: user(&source, &server.user)?,
        rrl: match &server.rrl {
            Some(section) => Some(rrl_settings(&source, section.get_ref())?),
            None => None,
        },
        state_dir: server
            .state_dir
            .as_ref()
            .map(|dir| base.join(dir.get_ref())),
        tsig_keys: tsig_keys(&source, &file.tsig, base)?,
    };
    let probe = probe_settings(
        &source,
        Some(&file.probe),
        &ProbeSettings::default(),
        "probe",
        None,
    )?;
    Ok((settings, probe))
}

/// A TSIG key name as written in the configuration (`ops-key`, `ops-key.`): made absolute and
/// lower case, as it appears on the wire.
pub(crate) fn key_name(text: &str) -> Result<Name, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("a key name cannot be empty".to_string());
    }
    let name = Name::from_ascii(text)
        .map_err(|error| format!("\"{text}\" is not a valid key name: {error}"))?;
    let name = if name.is_fqdn() {
        name
    } else {
        name.append_domain(&Name::root())
            .map_err(|error| format!("\"{text}\" is not a valid key name: {error}"))?
    };
    Ok(name.to_lowercase())
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

fn tsig_keys(
    source: &Source<'_>,
    sections: &[Spanned<TsigSection>],
    base: &Path,
) -> Result<Vec<TsigKey>, ConfigError> {
    let mut keys: Vec<TsigKey> = Vec::with_capacity(sections.len());
    for (index, section) in sections.iter().enumerate() {
        let prefix = format!("tsig[{index}]");
        let tsig = section.get_ref();
        let name = key_name(tsig.name.get_ref())
            .map_err(|message| source.error(tsig.name.span(), format!("{prefix}.name"), message))?;
        if keys.iter().any(|key| key.name == name) {
            return Err(source.error(
                tsig.name.span(),
                format!("{prefix}.name"),
                format!("key {name} is defined twice"),
            ));
        }
        let (file_algorithm, secret_text, secret_span, secret_field) =
            match (&tsig.secret, &tsig.secret_file) {
                (Some(secret), None) => (
                    None,
                    secret.get_ref().clone(),
                    secret.span(),
                    format!("{prefix}.secret"),
                ),
                (None, Some(file)) => {
                    let field = format!("{prefix}.secret_file");
                    let path = base.join(file.get_ref());
                    let text = std::fs::read_to_string(&path).map_err(|error| {
                        source.error(
                            file.span(),
                            &field,
                            format!("cannot read {}: {error}", path.display()),
                        )
                    })?;
                    let (algorithm, secret) = bind_key_file(&text, &name).map_err(|message| {
                        source.error(
                            file.span(),
                            &field,
                            format!("{}: {message}", path.display()),
                        )
                    })?;
                    (Some(algorithm), secret, file.span(), field)
                }
                _ => {
                    return Err(source.error(
                    section.span(),
                    &prefix,
                    "needs exactly one of secret (base64) or secret_file (a tsig-keygen key file)",
                ));
                }
            };
        let algorithm_text = match (&tsig.algorithm, &file_algorithm) {
            (Some(text), _) => text.get_ref().clone(),
            (None, Some(text)) => text.clone(),
            (None, None) => {
                return Err(source.error(
                    section.span(),
                    format!("{prefix}.algorithm"),
                    "is missing (expected \"hmac-sha256\" or \"hmac-sha512\")",
                ));
            }
        };
        let algorithm_span = tsig.algorithm.as_ref().map_or(section.span(), |a| a.span());
        let algorithm = tsig_algorithm(&algorithm_text).ok_or_else(|| {
            source.error(
                algorithm_span.clone(),
                format!("{prefix}.algorithm"),
                format!(
                    "\"{algorithm_text}\" is not a supported algorithm (expected \"hmac-sha256\", \"hmac-sha384\" or \"hmac-sha512\")"
                ),
            )
        })?;
        if let Some(file_algorithm) = &file_algorithm
            && tsig_algorithm(file_algorithm) != Some(algorithm.clone())
        {
            return Err(source.error(
                algorithm_span,
                format!("{prefix}.algorithm"),
                format!("says {algorithm_text} but the key file says {file_algorithm}"),
            ));
        }
        let secret = data_encoding::BASE64
            .decode(secret_text.trim().as_bytes())
            .map_err(|_| {
                source.error(
                    secret_span.clone(),
                    &secret_field,
                    "is not base64 (generate one with `tsig-keygen -a hmac-sha256 NAME` or `openssl rand -base64 32`)",
                )
            })?;
        if secret.len() < 16 {
            return Err(source.error(
                secret_span,
                secret_field,
                format!(
                    "is {} bytes long; use at least 16 random bytes",
                    secret.len()
                ),
            ));
        }
        keys.push(TsigKey {
            name,
            algorithm,
            secret,
        });
    }
    Ok(keys)
}

/// The algorithm and base64 secret of the key `name` in a BIND key file:
/// `key "name" { algorithm hmac-sha256; secret "BASE64"; };`, as `tsig-keygen` writes it.
fn bind_key_file(text: &str, name: &Name) -> Result<(String, String), String> {
    // Comments (`#`, `//`) are dropped, then the text is split into words and punctuation.
    let cleaned: String = text
        .lines()
        .map(|line| {
            let line = line.split('#').next().unwrap_or("");
            line.split("//").next().unwrap_or("")
        })
        .collect::<Vec<_>>()
        .join("\n");
    let spaced = cleaned
        .replace('{', " { ")
        .replace('}', " } ")
        .replace(';', " ; ");
    let words: Vec<&str> = spaced.split_whitespace().collect();
    let mut index = 0;
    while index < words.len() {
        if words[index] != "key" {
            index += 1;
            continue;
        }
        let key = words
            .get(index + 1)
            .map(|word| word.trim_matches('"'))
            .ok_or("a key statement has no name")?;
        let end = words[index..]
            .iter()
            .position(|word| *word == "}")
            .map_or(words.len(), |offset| index + offset);
        let body = &words[index..end];
        index = end;
        if key_name(key).ok().as_ref() != Some(name) {
            continue;
        }
        let value_of = |keyword: &str| {
            body.iter()
                .position(|word| *word == keyword)
                .and_then(|at| body.get(at + 1))
                .map(|word| word.trim_matches('"').to_string())
        };
        let algorithm = value_of("algorithm").ok_or(format!("key \"{key}\" has no algorithm"))?;
        let secret = value_of("secret").ok_or(format!("key \"{key}\" has no secret"))?;
        return Ok((algorithm, secret));
    }
    Err(format!(
        "holds no key named \"{name}\" (expected key \"{name}\" {{ algorithm ...; secret \"...\"; }};)"
    ))
}

fn socket_address(
    source: &Source<'_>,
    entry: &toml::Spanned<String>,
    field: &str,
) -> Result<SocketAddr, ConfigError> {
    entry.get_ref().parse().map_err(|_| {
        source.error(
            entry.span(),
            field,
            format!(
                "\"{}\" is not an address with a port (expected e.g. \"127.0.0.1:5353\" or \"[::1]:5353\")",
                entry.get_ref()
            ),
        )
    })
}

fn user(
    source: &Source<'_>,
    entry: &Option<toml::Spanned<String>>,
) -> Result<Option<String>, ConfigError> {
    let Some(entry) = entry else {
        return Ok(None);
    };
    let name = entry.get_ref();
    if name.is_empty() || name.contains(['\0', ':', '/']) || name.chars().any(char::is_whitespace) {
        return Err(source.error(
            entry.span(),
            "server.user",
            format!("\"{name}\" is not a user name (expected e.g. \"apidns\")"),
        ));
    }
    Ok(Some(name.clone()))
}

fn rrl_settings(source: &Source<'_>, section: &RrlSection) -> Result<RrlSettings, ConfigError> {
    let window = match &section.window {
        Some(text) => parse_duration(text.get_ref())
            .map_err(|message| source.error(text.span(), "server.rrl.window", message))?,
        None => RrlSettings::DEFAULT_WINDOW,
    };
    if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&window) {
        let span = section.window.as_ref().map_or(0..0, |w| w.span());
        return Err(source.error(span, "server.rrl.window", "must be from 1s to 1h"));
    }
    Ok(RrlSettings {
        responses_per_second: super::values::integer(
            source,
            &section.responses_per_second,
            "server.rrl.responses_per_second",
            1..=100_000,
        )?,
        slip: integer_or(
            source,
            &section.slip,
            "server.rrl.slip",
            0..=10,
            RrlSettings::DEFAULT_SLIP,
        )?,
        window,
        ipv4_prefix_length: integer_or(
            source,
            &section.ipv4_prefix_length,
            "server.rrl.ipv4_prefix_length",
            8..=32,
            RrlSettings::DEFAULT_IPV4_PREFIX_LENGTH,
        )?,
        ipv6_prefix_length: integer_or(
            source,
            &section.ipv6_prefix_length,
            "server.rrl.ipv6_prefix_length",
            16..=128,
            RrlSettings::DEFAULT_IPV6_PREFIX_LENGTH,
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<(ServerSettings, ProbeSettings), ConfigError> {
        parse(Path::new("/etc/apidns/apidns.toml"), text)
    }

    #[test]
    fn minimal_file_gets_defaults() {
        let (server, probe) =
            parse_text("[server]\nlisten = [\"127.0.0.1:5353\", \"[::1]:5353\"]\n").expect("valid");
        assert_eq!(server.listen.len(), 2);
        assert_eq!(server.zones_dir, Path::new("/etc/apidns/zones"));
        assert_eq!(server.max_udp_payload, 1232);
        assert_eq!(server.user, None);
        assert_eq!(server.rrl, None);
        assert_eq!(probe, ProbeSettings::default());
    }

    #[test]
    fn rrl_takes_defaults_and_checks_ranges() {
        let (server, _) = parse_text(
            "[server]\nlisten = [\"127.0.0.1:53\"]\nrrl = { responses_per_second = 20 }\n",
        )
        .expect("valid");
        let rrl = server.rrl.expect("rrl set");
        assert_eq!(rrl.responses_per_second, 20);
        assert_eq!(rrl.slip, 2);
        assert_eq!(rrl.window, Duration::from_secs(15));
        assert_eq!((rrl.ipv4_prefix_length, rrl.ipv6_prefix_length), (24, 56));

        let (server, _) = parse_text(
            "[server]\nlisten = [\"127.0.0.1:53\"]\n[server.rrl]\nresponses_per_second = 5\nslip = 0\nwindow = \"2s\"\nipv4_prefix_length = 32\n",
        )
        .expect("valid");
        let rrl = server.rrl.expect("rrl set");
        assert_eq!((rrl.slip, rrl.window), (0, Duration::from_secs(2)));
        assert_eq!(rrl.ipv4_prefix_length, 32);

        let error = parse_text(
            "[server]\nlisten = [\"127.0.0.1:53\"]\nrrl = { responses_per_second = 0 }\n",
        )
        .unwrap_err();
        assert_eq!(
            error.field.as_deref(),
            Some("server.rrl.responses_per_second")
        );
        let error = parse_text(
            "[server]\nlisten = [\"127.0.0.1:53\"]\nrrl = { responses_per_second = 5, window = \"2h\" }\n",
        )
        .unwrap_err();
        assert_eq!(error.field.as_deref(), Some("server.rrl.window"));
        let error =
            parse_text("[server]\nlisten = [\"127.0.0.1:53\"]\nrrl = { slip = 2 }\n").unwrap_err();
        assert!(error.message.contains("responses_per_second"), "{error}");
    }

    #[test]
    fn tsig_keys_inline_and_from_a_key_file() {
        let (server, _) = parse_text(
            "[server]\nlisten = [\"127.0.0.1:53\"]\nstate_dir = \"state\"\n[[tsig]]\nname = \"ops-key\"\nalgorithm = \"hmac-sha512\"\nsecret = \"c2VjcmV0LXNlY3JldC1zZWNyZXQ=\"\n",
        )
        .expect("valid");
        assert_eq!(
            server.state_dir.as_deref(),
            Some(Path::new("/etc/apidns/state"))
        );
        assert_eq!(server.tsig_keys[0].name.to_string(), "ops-key.");
        assert_eq!(server.tsig_keys[0].algorithm, TsigAlgorithm::HmacSha512);

        let error = parse_text(
            "[server]\nlisten = [\"127.0.0.1:53\"]\n[[tsig]]\nname = \"k\"\nalgorithm = \"hmac-md5\"\nsecret = \"c2VjcmV0LXNlY3JldC1zZWNyZXQ=\"\n",
        )
        .unwrap_err();
        assert_eq!(error.field.as_deref(), Some("tsig[0].algorithm"));
        assert_eq!(error.position.map(|p| p.0), Some(5));
        let error = parse_text(
            "[server]\nlisten = [\"127.0.0.1:53\"]\n[[tsig]]\nname = \"k\"\nalgorithm = \"hmac-sha256\"\nsecret = \"not base64!\"\n",
        )
        .unwrap_err();
        assert_eq!(error.field.as_deref(), Some("tsig[0].secret"));

        let file = "key \"ops-key\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0LXNlY3JldC1zZWNyZXQ=\";\n};\n";
        let name = key_name("ops-key").expect("name");
        let (algorithm, secret) = bind_key_file(file, &name).expect("parsed");
        assert_eq!(algorithm, "hmac-sha256");
        assert_eq!(secret, "c2VjcmV0LXNlY3JldC1zZWNyZXQ=");
        assert!(bind_key_file(file, &key_name("other").expect("name")).is_err());
    }

    #[test]
    fn tsig_secret_file_is_read_relative_to_the_main_file() {
        let dir = std::env::temp_dir().join(format!("apidns-keyfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(
            dir.join("ops-key.conf"),
            "key \"ops-key\" {\n\talgorithm hmac-sha512;\n\tsecret \"c2VjcmV0LXNlY3JldC1zZWNyZXQ=\";\n};\n",
        )
        .expect("key file");
        let main = dir.join("apidns.toml");
        let text = "[server]\nlisten = [\"127.0.0.1:53\"]\n[[tsig]]\nname = \"ops-key\"\nsecret_file = \"ops-key.conf\"\n";
        let (server, _) = parse(&main, text).expect("valid");
        assert_eq!(server.tsig_keys[0].algorithm, TsigAlgorithm::HmacSha512);
        assert_eq!(server.tsig_keys[0].secret, b"secret-secret-secret");
        let error = parse(&main, &text.replace("ops-key.conf", "missing.conf")).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("tsig[0].secret_file"));
        assert_eq!(error.position.map(|p| p.0), Some(5));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn user_must_look_like_a_user_name() {
        let (server, _) = parse_text("[server]\nlisten = [\"127.0.0.1:53\"]\nuser = \"apidns\"\n")
            .expect("valid");
        assert_eq!(server.user.as_deref(), Some("apidns"));
        let error = parse_text("[server]\nlisten = [\"127.0.0.1:53\"]\nuser = \"\"\n").unwrap_err();
        assert_eq!(error.field.as_deref(), Some("server.user"));
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let error = parse_text("[server]\nlisten = [\"127.0.0.1:53\"]\nlisen = 1\n").unwrap_err();
        assert_eq!(error.position.map(|p| p.0), Some(3));
        assert!(error.message.contains("unknown field `lisen`"), "{error}");
    }

    #[test]
    fn bad_address_names_field() {
        let error =
            parse_text("[server]\nlisten = [\"127.0.0.1:53\", \"localhost\"]\n").unwrap_err();
        assert_eq!(error.field.as_deref(), Some("server.listen[1]"));
        assert_eq!(error.position, Some((2, 27)));
    }

    #[test]
    fn timeout_must_be_shorter_than_interval() {
        let error = parse_text(
            "[server]\nlisten = [\"127.0.0.1:53\"]\n[probe]\ninterval = \"1s\"\ntimeout = \"1s\"\n",
        )
        .unwrap_err();
        assert_eq!(error.field.as_deref(), Some("probe.timeout"));
        assert_eq!(error.position.map(|p| p.0), Some(5));
    }
}
