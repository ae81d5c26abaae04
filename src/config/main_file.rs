//! The main file: `[server]` and `[probe]`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::error::{ConfigError, Source};

use super::file::{MainFile, RrlSection};
use super::model::{DEFAULT_MAX_UDP_PAYLOAD, ProbeSettings, RrlSettings, ServerSettings};
use super::probe_settings::probe_settings;
use super::tsig::tsig_keys;
use super::values::{duration_or, integer, integer_or};

/// Checks the main file's text; `path` names it in errors and anchors relative paths.
pub(crate) fn parse(
    path: &Path,
    text: &str,
) -> Result<(ServerSettings, ProbeSettings), ConfigError> {
    let source = Source { path, text };
    let file: MainFile = toml::from_str(text).map_err(|error| source.toml_error(&error))?;
    let server = server_settings(&source, &file)?;
    let probe = probe_settings(
        &source,
        Some(&file.probe),
        &ProbeSettings::default(),
        "probe",
        None,
    )?;
    Ok((server, probe))
}

/// `[server]` and the `[[tsig]]` keys. Relative paths are relative to the main file.
fn server_settings(source: &Source<'_>, file: &MainFile) -> Result<ServerSettings, ConfigError> {
    let server = &file.server;
    let base = source.path.parent().unwrap_or(Path::new("."));
    Ok(ServerSettings {
        listen: listen(source, &server.listen)?,
        http: match &server.http {
            Some(entry) => Some(socket_address(source, entry, "server.http")?),
            None => None,
        },
        zones_dir: match &server.zones {
            Some(dir) => base.join(dir.get_ref()),
            None => base.join("zones"),
        },
        tcp_idle_timeout: tcp_idle_timeout(source, &server.tcp_idle_timeout)?,
        tcp_max_connections: integer_or(
            source,
            &server.tcp_max_connections,
            "server.tcp_max_connections",
            1..=1_000_000,
            1024,
        )?,
        max_udp_payload: integer_or(
            source,
            &server.max_udp_payload,
            "server.max_udp_payload",
            512..=65535,
            DEFAULT_MAX_UDP_PAYLOAD,
        )?,
        admin_token: admin_token(source, &server.admin_token)?,
        user: user(source, &server.user)?,
        rrl: match &server.rrl {
            Some(section) => Some(rrl_settings(source, section.get_ref())?),
            None => None,
        },
        state_dir: server
            .state_dir
            .as_ref()
            .map(|dir| base.join(dir.get_ref())),
        tsig_keys: tsig_keys(source, &file.tsig, base)?,
        nsid: match &server.nsid {
            Some(value) => Some(nsid(source, value)?),
            None => None,
        },
        cookie_secret: cookie_secret(source, &server.cookie_secret, "server.cookie_secret")?,
        cookie_secret_previous: cookie_secret(
            source,
            &server.cookie_secret_previous,
            "server.cookie_secret_previous",
        )?,
        require_server_cookie: server
            .require_server_cookie
            .as_ref()
            .is_some_and(|value| *value.get_ref()),
    })
}

/// A cookie secret: 16 bytes as 32 hex digits (`openssl rand -hex 16`), as BIND's
/// `cookie-secret` for SipHash-2-4 is written, so that instances can share one.
fn cookie_secret(
    source: &Source<'_>,
    value: &Option<Spanned<String>>,
    field: &str,
) -> Result<Option<[u8; 16]>, ConfigError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let bytes = data_encoding::HEXLOWER_PERMISSIVE
        .decode(value.get_ref().trim().as_bytes())
        .ok()
        .and_then(|bytes| <[u8; 16]>::try_from(bytes).ok());
    match bytes {
        Some(secret) => Ok(Some(secret)),
        None => Err(source.error(
            value.span(),
            field,
            "must be 32 hex digits (16 bytes), e.g. from `openssl rand -hex 16`",
        )),
    }
}

/// The longest NSID accepted: an identifier, not a payload (BIND and Knot send host names).
const MAX_NSID_LEN: usize = 128;

/// `server.nsid`: text as written, or hex after `0x` (`"0x61706964"`), 1 to 128 bytes.
fn nsid(source: &Source<'_>, value: &Spanned<String>) -> Result<Vec<u8>, ConfigError> {
    let field = "server.nsid";
    let text = value.get_ref();
    let bytes = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => data_encoding::HEXLOWER_PERMISSIVE
            .decode(hex.as_bytes())
            .map_err(|_| {
                source.error(
                    value.span(),
                    field,
                    "after 0x must be hex digits, two per byte, e.g. \"0x617069646e73\"",
                )
            })?,
        None => text.as_bytes().to_vec(),
    };
    if bytes.is_empty() || bytes.len() > MAX_NSID_LEN {
        return Err(source.error(
            value.span(),
            field,
            format!(
                "must be 1 to {MAX_NSID_LEN} bytes long, not {}",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

/// `server.listen`: at least one address, none twice.
fn listen(
    source: &Source<'_>,
    entries: &Spanned<Vec<Spanned<String>>>,
) -> Result<Vec<SocketAddr>, ConfigError> {
    if entries.get_ref().is_empty() {
        return Err(source.error(
            entries.span(),
            "server.listen",
            "needs at least one address, e.g. [\"127.0.0.1:5353\"]",
        ));
    }
    let mut listen = Vec::new();
    let mut seen = HashSet::new();
    for (index, entry) in entries.get_ref().iter().enumerate() {
        let field = format!("server.listen[{index}]");
        let address = socket_address(source, entry, &field)?;
        if !seen.insert(address) {
            return Err(source.error(entry.span(), field, format!("{address} is listed twice")));
        }
        listen.push(address);
    }
    Ok(listen)
}

fn tcp_idle_timeout(
    source: &Source<'_>,
    value: &Option<Spanned<String>>,
) -> Result<Duration, ConfigError> {
    let field = "server.tcp_idle_timeout";
    let timeout = duration_or(source, value, field, Duration::from_secs(10))?;
    if timeout.is_zero() {
        let span = value.as_ref().map_or(0..0, Spanned::span);
        return Err(source.error(span, field, "must be above zero"));
    }
    Ok(timeout)
}

fn admin_token(
    source: &Source<'_>,
    value: &Option<Spanned<String>>,
) -> Result<Option<String>, ConfigError> {
    match value {
        Some(token) if token.get_ref().trim().len() < 16 => Err(source.error(
            token.span(),
            "server.admin_token",
            "is too short to guess-proof (use 16 characters or more, e.g. from `openssl rand -hex 16`)",
        )),
        Some(token) => Ok(Some(token.get_ref().trim().to_string())),
        None => Ok(None),
    }
}

fn socket_address(
    source: &Source<'_>,
    entry: &Spanned<String>,
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
    entry: &Option<Spanned<String>>,
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
    let window = duration_or(
        source,
        &section.window,
        "server.rrl.window",
        RrlSettings::DEFAULT_WINDOW,
    )?;
    if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&window) {
        let span = section.window.as_ref().map_or(0..0, |w| w.span());
        return Err(source.error(span, "server.rrl.window", "must be from 1s to 1h"));
    }
    Ok(RrlSettings {
        responses_per_second: integer(
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
    use hickory_proto::rr::rdata::tsig::TsigAlgorithm;

    use super::*;

    fn parse_text(text: &str) -> Result<(ServerSettings, ProbeSettings), ConfigError> {
        parse(Path::new("/etc/apidns/apidns.toml"), text)
    }

    #[test]
    fn nsid_is_text_or_hex_after_0x() {
        let with = |value: &str| {
            parse_text(&format!(
                "[server]\nlisten = [\"127.0.0.1:5353\"]\nnsid = \"{value}\"\n"
            ))
        };
        assert_eq!(
            with("apidns-1").expect("text").0.nsid,
            Some(b"apidns-1".to_vec())
        );
        assert_eq!(with("0x6170").expect("hex").0.nsid, Some(b"ap".to_vec()));
        for bad in ["", "0x", "0x6", "0xzz", &"n".repeat(129)] {
            let error = with(bad).expect_err(bad).to_string();
            assert!(error.contains("server.nsid"), "{bad}: {error}");
        }
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
