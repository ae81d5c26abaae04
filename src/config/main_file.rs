//! The main file: `[server]` and `[probe]`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::error::{ConfigError, Source};
use super::file::MainFile;
use super::model::{DEFAULT_MAX_UDP_PAYLOAD, ProbeSettings, ServerSettings};
use super::parse_duration;
use super::values::{integer_or, probe_settings};

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
    };
    let probe = probe_settings(&source, &file.probe, &ProbeSettings::default(), "probe")?;
    Ok((settings, probe))
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
        assert_eq!(probe, ProbeSettings::default());
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
