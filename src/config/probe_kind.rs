//! The probe-kind keys of `[probe]` and of a pool's `probe = { ... }`: `kind`, the HTTP request
//! (`path`, `expect_status`) and the TLS keys of HTTPS probes, each merged over what the
//! defaults say.
//!
//! A key that the probe's kind does not use is an error rather than a setting silently ignored:
//! `ca_file` on a TCP probe means the operator believes the certificate is being checked.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hickory_proto::rr::Name;
use rustls::pki_types::ServerName;
use toml::Spanned;

use super::error::{ConfigError, Source};
use super::file::ProbeSection;
use super::model::{HttpCheck, HttpsCheck, ProbeKind};
use super::tls::{ClientIdentity, TlsClient, TlsKey, Trust};
use super::values::integer_or;

/// The pool that probe settings are for. Its name is the default TLS server name of an HTTPS
/// probe, and an error about that name points at the pool's key.
pub(crate) struct PoolName<'a> {
    pub name: &'a Name,
    pub span: Range<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tcp,
    Http,
    Https,
}

impl Kind {
    fn of(kind: &ProbeKind) -> Self {
        match kind {
            ProbeKind::Tcp => Kind::Tcp,
            ProbeKind::Http(_) => Kind::Http,
            ProbeKind::Https(_) => Kind::Https,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Kind::Tcp => "tcp",
            Kind::Http => "http",
            Kind::Https => "https",
        }
    }
}

/// The probe kind that `section` describes on top of `inherited`.
pub(crate) fn probe_kind(
    source: &Source<'_>,
    section: &ProbeSection,
    inherited: &ProbeKind,
    prefix: &str,
    pool: Option<&PoolName<'_>>,
) -> Result<ProbeKind, ConfigError> {
    let field = |key: &str| format!("{prefix}.{key}");
    let kind = match &section.kind {
        None => Kind::of(inherited),
        Some(kind) => match kind.get_ref().as_str() {
            "tcp" => Kind::Tcp,
            "http" => Kind::Http,
            "https" => Kind::Https,
            other => {
                return Err(source.error(
                    kind.span(),
                    field("kind"),
                    format!(
                        "\"{other}\" is not a probe kind (expected \"tcp\", \"http\" or \"https\")"
                    ),
                ));
            }
        },
    };
    reject_unused_keys(source, section, kind, prefix)?;
    if kind == Kind::Tcp {
        return Ok(ProbeKind::Tcp);
    }

    let http = http_check(source, section, inherited, prefix)?;
    if kind == Kind::Http {
        return Ok(ProbeKind::Http(http));
    }
    https_check(source, section, inherited, prefix, pool, http)
}

/// The request of an HTTP(S) probe: `path` and `expect_status` over what `inherited` says.
fn http_check(
    source: &Source<'_>,
    section: &ProbeSection,
    inherited: &ProbeKind,
    prefix: &str,
) -> Result<HttpCheck, ConfigError> {
    let inherited = inherited.http().cloned().unwrap_or_default();
    Ok(HttpCheck {
        path: match &section.path {
            Some(path) => request_path(source, path, &format!("{prefix}.path"))?,
            None => inherited.path,
        },
        expect_status: integer_or(
            source,
            &section.expect_status,
            &format!("{prefix}.expect_status"),
            100..=599,
            inherited.expect_status,
        )?,
    })
}

/// An HTTPS probe: `http`, the server name the certificate must carry, and the TLS material.
fn https_check(
    source: &Source<'_>,
    section: &ProbeSection,
    inherited: &ProbeKind,
    prefix: &str,
    pool: Option<&PoolName<'_>>,
    http: HttpCheck,
) -> Result<ProbeKind, ConfigError> {
    let field = format!("{prefix}.server_name");
    let base = inherited.https();
    let server_name = match (
        &section.server_name,
        base.and_then(|b| b.server_name.as_ref()),
    ) {
        (Some(name), _) => Some(server_name(source, name, &field)?),
        (None, Some(inherited)) => Some(inherited.clone()),
        (None, None) => match pool {
            Some(pool) => Some(pool_server_name(source, pool, &field)?),
            None => None,
        },
    };
    // Probes that inherit the TLS keys share the defaults' material: one CA file read, one
    // rustls configuration, however many pools use it.
    let tls = match base {
        Some(base) if !sets_tls_keys(section) => base.tls.clone(),
        _ => {
            let fallback = span(&section.kind)
                .or_else(|| pool.map(|pool| pool.span.clone()))
                .unwrap_or(0..0);
            Arc::new(load_tls(
                source,
                section,
                base.map(|base| base.tls.as_ref()),
                prefix,
                fallback,
            )?)
        }
    };
    Ok(ProbeKind::Https(HttpsCheck {
        http,
        server_name,
        tls,
    }))
}

fn span<T>(value: &Option<Spanned<T>>) -> Option<Range<usize>> {
    value.as_ref().map(Spanned::span)
}

fn sets_tls_keys(section: &ProbeSection) -> bool {
    section.ca_file.is_some()
        || section.insecure_skip_verify.is_some()
        || section.client_cert.is_some()
        || section.client_key.is_some()
}

fn reject_unused_keys(
    source: &Source<'_>,
    section: &ProbeSection,
    kind: Kind,
    prefix: &str,
) -> Result<(), ConfigError> {
    // (key, where it is, whether only HTTPS uses it)
    let keys = [
        ("path", span(&section.path), false),
        ("expect_status", span(&section.expect_status), false),
        ("server_name", span(&section.server_name), true),
        ("ca_file", span(&section.ca_file), true),
        (
            "insecure_skip_verify",
            span(&section.insecure_skip_verify),
            true,
        ),
        ("client_cert", span(&section.client_cert), true),
        ("client_key", span(&section.client_key), true),
    ];
    let unused = keys.into_iter().find(|(_, at, tls_only)| {
        at.is_some()
            && match kind {
                Kind::Tcp => true,
                Kind::Http => *tls_only,
                Kind::Https => false,
            }
    });
    let Some((key, Some(at), tls_only)) = unused else {
        return Ok(());
    };
    let applies_to = if tls_only {
        "kind = \"https\""
    } else {
        "kind = \"http\" or \"https\""
    };
    let hint = if section.kind.is_none() {
        " (set kind in the same table)"
    } else {
        ""
    };
    Err(source.error(
        at,
        format!("{prefix}.{key}"),
        format!(
            "{key} applies only to {applies_to}, and this probe's kind is \"{}\"{hint}",
            kind.as_str()
        ),
    ))
}

/// A request path in origin form, e.g. `/readyz` or `/readyz?verbose`.
fn request_path(
    source: &Source<'_>,
    path: &Spanned<String>,
    field: &str,
) -> Result<String, ConfigError> {
    let text = path.get_ref();
    let origin_form = text.starts_with('/')
        && text
            .parse::<hyper::Uri>()
            .is_ok_and(|uri| uri.scheme().is_none() && uri.authority().is_none());
    if !origin_form {
        return Err(source.error(
            path.span(),
            field,
            format!(
                "\"{text}\" is not a request path (expected a path starting with /, e.g. \"/readyz\")"
            ),
        ));
    }
    Ok(text.clone())
}

/// A name the certificate must carry: a DNS name (a trailing dot is dropped) or an IP address.
fn server_name(
    source: &Source<'_>,
    name: &Spanned<String>,
    field: &str,
) -> Result<String, ConfigError> {
    let text = name.get_ref().trim().trim_end_matches('.');
    match ServerName::try_from(text.to_string()) {
        Ok(_) if !text.is_empty() => Ok(text.to_string()),
        _ => Err(source.error(
            name.span(),
            field,
            format!(
                "\"{}\" is not a TLS server name (expected a DNS name such as \"api.k8s.example.com\" or an IP address)",
                name.get_ref()
            ),
        )),
    }
}

/// The pool's own name without the trailing dot: the name clients use, so the probe also proves
/// that the certificate carries it.
fn pool_server_name(
    source: &Source<'_>,
    pool: &PoolName<'_>,
    field: &str,
) -> Result<String, ConfigError> {
    let ascii = pool.name.to_ascii();
    let text = ascii.trim_end_matches('.');
    match ServerName::try_from(text.to_string()) {
        Ok(_) => Ok(text.to_string()),
        Err(_) => Err(source.error(
            pool.span.clone(),
            field,
            format!(
                "the pool name {ascii} is not usable as a TLS server name; set server_name to the name in the API server's certificate"
            ),
        )),
    }
}

/// The TLS keys of one probe table, resolved against the file that holds them.
struct TlsKeys<'a> {
    source: &'a Source<'a>,
    section: &'a ProbeSection,
    prefix: &'a str,
    /// Where an error points when the key it is about is not in this table (it was inherited).
    fallback: Range<usize>,
}

impl TlsKeys<'_> {
    fn field(&self, key: &str) -> String {
        format!("{}.{key}", self.prefix)
    }

    /// A file path, relative to the file that names it: the main file for `[probe]`, the zone
    /// file for a pool.
    fn path(&self, value: &Spanned<String>, key: &str) -> Result<PathBuf, ConfigError> {
        let text = value.get_ref().trim();
        if text.is_empty() {
            return Err(self
                .source
                .error(value.span(), self.field(key), "the path is empty"));
        }
        let directory = self.source.path.parent().unwrap_or(Path::new("."));
        Ok(directory.join(text))
    }

    fn trust(&self, base: Option<&TlsClient>) -> Result<Trust, ConfigError> {
        let section = self.section;
        if let (Some(_), Some(insecure)) = (&section.ca_file, &section.insecure_skip_verify)
            && *insecure.get_ref()
        {
            return Err(self.source.error(
                insecure.span(),
                self.field("insecure_skip_verify"),
                "insecure_skip_verify = true would ignore ca_file; remove one of them",
            ));
        }
        let ca_file = match &section.ca_file {
            Some(value) => Some(self.path(value, "ca_file")?),
            None => base.and_then(|base| match base.trust() {
                Trust::CaFile(path) => Some(path.clone()),
                Trust::System | Trust::Insecure => None,
            }),
        };
        let insecure = match &section.insecure_skip_verify {
            Some(value) => *value.get_ref(),
            // A pool that names its own CA wants verification, whatever the defaults say.
            None => section.ca_file.is_none() && base.is_some_and(TlsClient::skips_verification),
        };
        Ok(match (insecure, ca_file) {
            (true, _) => Trust::Insecure,
            (false, Some(path)) => Trust::CaFile(path),
            (false, None) => Trust::System,
        })
    }

    fn identity(&self, base: Option<&TlsClient>) -> Result<Option<ClientIdentity>, ConfigError> {
        let section = self.section;
        let inherited = base.and_then(TlsClient::identity);
        let cert = match &section.client_cert {
            Some(value) => Some(self.path(value, "client_cert")?),
            None => inherited.map(|identity| identity.cert.clone()),
        };
        let key = match &section.client_key {
            Some(value) => Some(self.path(value, "client_key")?),
            None => inherited.map(|identity| identity.key.clone()),
        };
        match (cert, key) {
            (Some(cert), Some(key)) => Ok(Some(ClientIdentity { cert, key })),
            (None, None) => Ok(None),
            (None, Some(_)) => Err(self.source.error(
                span(&section.client_key).unwrap_or(self.fallback.clone()),
                self.field("client_key"),
                "client_key is set without client_cert; set both (the certificate and its key) or neither",
            )),
            (Some(_), None) => Err(self.source.error(
                span(&section.client_cert).unwrap_or(self.fallback.clone()),
                self.field("client_cert"),
                "client_cert is set without client_key; set both (the certificate and its key) or neither",
            )),
        }
    }
}

fn load_tls(
    source: &Source<'_>,
    section: &ProbeSection,
    base: Option<&TlsClient>,
    prefix: &str,
    fallback: Range<usize>,
) -> Result<TlsClient, ConfigError> {
    let keys = TlsKeys {
        source,
        section,
        prefix,
        fallback,
    };
    let trust = keys.trust(base)?;
    let identity = keys.identity(base)?;
    TlsClient::load(trust, identity).map_err(|error| {
        let at = match error.key {
            TlsKey::CaFile => span(&section.ca_file),
            TlsKey::ClientCert => span(&section.client_cert),
            TlsKey::ClientKey => span(&section.client_key),
        };
        source.error(
            at.unwrap_or_else(|| keys.fallback.clone()),
            keys.field(error.key.as_str()),
            error.message,
        )
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::{ConfigError, ProbeSettings, ZoneConfig, main_file, zone_file};

    const ZONE_HEAD: &str = r#"
origin = "k8s.example.com."
records = [{ name = "@", type = "NS", value = "ns1" }, { name = "ns1", type = "A", value = "192.0.2.53" }]
[soa]
mname = "ns1"
rname = "hostmaster.example.com."
"#;

    /// A scratch directory with a CA, a client certificate and key, and a file that is no PEM.
    struct Files(PathBuf);

    impl Files {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "apidns-unit-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("zones")).unwrap();
            let ca_key = rcgen::KeyPair::generate().unwrap();
            let mut ca_params = rcgen::CertificateParams::new(Vec::new()).unwrap();
            ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
            let client_key = rcgen::KeyPair::generate().unwrap();
            let client = rcgen::CertificateParams::new(vec!["client".to_string()])
                .unwrap()
                .signed_by(&client_key, &ca)
                .unwrap();
            let other_key = rcgen::KeyPair::generate().unwrap();
            std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
            std::fs::write(dir.join("zones/pool-ca.crt"), ca.pem()).unwrap();
            std::fs::write(dir.join("client.crt"), client.pem()).unwrap();
            std::fs::write(dir.join("client.key"), client_key.serialize_pem()).unwrap();
            std::fs::write(dir.join("other.key"), other_key.serialize_pem()).unwrap();
            std::fs::write(dir.join("garbage.pem"), "not a certificate\n").unwrap();
            Self(dir)
        }

        fn main(&self, probe: &str) -> Result<ProbeSettings, ConfigError> {
            let text = format!("[server]\nlisten = [\"127.0.0.1:53\"]\n[probe]\n{probe}\n");
            main_file::parse(&self.0.join("apidns.toml"), &text).map(|(_, probe)| probe)
        }

        fn zone(&self, defaults: &ProbeSettings, pool: &str) -> Result<ZoneConfig, ConfigError> {
            let text = format!("{ZONE_HEAD}\n[pool.api]\nmembers = [\"192.0.2.10\"]\n{pool}\n");
            zone_file::parse(&self.0.join("zones/k8s.toml"), &text, defaults, 1)
        }

        fn pool_probe(&self, defaults: &str, pool: &str) -> Result<ProbeSettings, ConfigError> {
            let defaults = self.main(defaults)?;
            Ok(self.zone(&defaults, pool)?.pools[0].probe.clone())
        }
    }

    impl Drop for Files {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn https(settings: &ProbeSettings) -> &HttpsCheck {
        settings.kind.https().expect("an https probe")
    }

    #[test]
    fn https_defaults_and_relative_paths() {
        let files = Files::new("defaults");
        let probe = files
            .pool_probe("kind = \"https\"\nca_file = \"ca.crt\"", "")
            .unwrap();
        let check = https(&probe);
        assert_eq!(check.http, HttpCheck::default());
        assert_eq!(check.http.path, "/readyz");
        assert_eq!(check.http.expect_status, 200);
        assert_eq!(check.server_name.as_deref(), Some("api.k8s.example.com"));
        // Relative to the main file, which names it.
        assert_eq!(check.tls.trust(), &Trust::CaFile(files.0.join("ca.crt")));
        assert!(check.tls.identity().is_none());

        // A pool's own ca_file is relative to the zone file.
        let probe = files
            .pool_probe(
                "",
                "probe = { kind = \"https\", ca_file = \"pool-ca.crt\", path = \"/livez\", expect_status = 204, server_name = \"kubernetes.\" }",
            )
            .unwrap();
        let check = https(&probe);
        assert_eq!(
            check.tls.trust(),
            &Trust::CaFile(files.0.join("zones/pool-ca.crt"))
        );
        assert_eq!(
            (check.http.path.as_str(), check.http.expect_status),
            ("/livez", 204)
        );
        assert_eq!(check.server_name.as_deref(), Some("kubernetes"));
    }

    #[test]
    fn pools_inherit_and_override_the_defaults() {
        let files = Files::new("inherit");
        let defaults = files
            .main("kind = \"https\"\nca_file = \"ca.crt\"\npath = \"/readyz?verbose\"")
            .unwrap();
        assert_eq!(https(&defaults).server_name, None);

        // Inherited TLS material is shared, not loaded again.
        let zone = files
            .zone(&defaults, "probe = { timeout = \"300ms\" }")
            .unwrap();
        let pool = &zone.pools[0].probe;
        assert!(Arc::ptr_eq(&https(pool).tls, &https(&defaults).tls));
        assert_eq!(https(pool).http.path, "/readyz?verbose");

        let zone = files.zone(&defaults, "probe = { kind = \"tcp\" }").unwrap();
        assert_eq!(zone.pools[0].probe.kind, ProbeKind::Tcp);
        let zone = files
            .zone(&defaults, "probe = { kind = \"http\" }")
            .unwrap();
        assert_eq!(
            zone.pools[0]
                .probe
                .kind
                .http()
                .map(|http| http.path.as_str()),
            Some("/readyz?verbose")
        );

        // A pool's own client certificate keeps the inherited CA.
        let zone = files
            .zone(
                &defaults,
                "probe = { client_cert = \"../client.crt\", client_key = \"../client.key\" }",
            )
            .unwrap();
        let check = https(&zone.pools[0].probe);
        assert_eq!(check.tls.trust(), &Trust::CaFile(files.0.join("ca.crt")));
        assert_eq!(
            check.tls.identity().map(|identity| identity.key.clone()),
            Some(files.0.join("zones/../client.key"))
        );

        let insecure = files
            .main("kind = \"https\"\ninsecure_skip_verify = true")
            .unwrap();
        assert!(https(&insecure).tls.skips_verification());
        // A pool that names its own CA verifies against it.
        let zone = files
            .zone(&insecure, "probe = { ca_file = \"pool-ca.crt\" }")
            .unwrap();
        assert!(!https(&zone.pools[0].probe).tls.skips_verification());
    }

    #[test]
    fn hold_is_on_by_default_and_inherited() {
        let files = Files::new("hold");
        let tcp = files.pool_probe("", "").unwrap();
        assert!(tcp.hold && tcp.holds());
        let off = files.pool_probe("hold = false", "").unwrap();
        assert!(!off.holds());
        let on_again = files
            .pool_probe("hold = false", "probe = { hold = true }")
            .unwrap();
        assert!(on_again.holds());
        let https = files
            .pool_probe(
                "",
                "probe = { kind = \"https\", ca_file = \"pool-ca.crt\" }",
            )
            .unwrap();
        assert!(https.holds(), "HTTPS probes hold by default too");
        let periodic = files
            .pool_probe("kind = \"https\"\nca_file = \"ca.crt\"\nhold = false", "")
            .unwrap();
        assert!(!periodic.holds());
        let http = files
            .pool_probe("hold = false", "probe = { kind = \"http\", hold = true }")
            .unwrap();
        assert!(http.holds());
    }

    #[test]
    fn settings_compare_by_file_contents() {
        let files = Files::new("equality");
        let first = files
            .pool_probe("kind = \"https\"\nca_file = \"ca.crt\"", "")
            .unwrap();
        let again = files
            .pool_probe("kind = \"https\"\nca_file = \"ca.crt\"", "")
            .unwrap();
        assert_eq!(
            first, again,
            "loading the same files twice gives equal settings"
        );
        std::fs::copy(files.0.join("client.crt"), files.0.join("ca.crt")).unwrap();
        let rotated = files
            .pool_probe("kind = \"https\"\nca_file = \"ca.crt\"", "")
            .unwrap();
        assert_ne!(first, rotated, "a changed CA file is a change of settings");
    }

    /// (defaults, pool probe table, the field the error names, part of its message)
    const FIELD_ERRORS: [(&str, &str, &str, &str); 12] = [
        ("kind = \"grpc\"", "", "probe.kind", "not a probe kind"),
        (
            "",
            "probe = { kind = \"https\", ca_file = \"missing.crt\" }",
            "pool.api.probe.ca_file",
            "cannot read",
        ),
        (
            "",
            "probe = { kind = \"https\", ca_file = \"../garbage.pem\" }",
            "pool.api.probe.ca_file",
            "holds no certificate",
        ),
        (
            "",
            "probe = { kind = \"https\", ca_file = \"../client.key\" }",
            "pool.api.probe.ca_file",
            "holds no certificate",
        ),
        (
            "",
            "probe = { kind = \"https\", client_key = \"../client.key\" }",
            "pool.api.probe.client_key",
            "without client_cert",
        ),
        (
            "kind = \"https\"\nca_file = \"ca.crt\"\nclient_cert = \"client.crt\"",
            "",
            "probe.client_cert",
            "without client_key",
        ),
        (
            "kind = \"https\"\nca_file = \"ca.crt\"\nclient_cert = \"client.crt\"\nclient_key = \"other.key\"",
            "",
            "probe.client_key",
            "is not the key of the certificate",
        ),
        (
            "kind = \"https\"\nca_file = \"ca.crt\"\nclient_cert = \"client.crt\"\nclient_key = \"ca.crt\"",
            "",
            "probe.client_key",
            "holds no private key",
        ),
        (
            "",
            "probe = { ca_file = \"pool-ca.crt\" }",
            "pool.api.probe.ca_file",
            "applies only to kind = \"https\", and this probe's kind is \"tcp\"",
        ),
        (
            "",
            "probe = { kind = \"http\", insecure_skip_verify = true }",
            "pool.api.probe.insecure_skip_verify",
            "applies only to kind = \"https\"",
        ),
        (
            "path = \"/readyz\"",
            "",
            "probe.path",
            "applies only to kind = \"http\" or \"https\"",
        ),
        (
            "kind = \"http\"\npath = \"readyz\"",
            "",
            "probe.path",
            "not a request path",
        ),
    ];

    #[test]
    fn errors_name_the_field() {
        let files = Files::new("errors");
        for (defaults, pool, field, message) in FIELD_ERRORS {
            let error = files.pool_probe(defaults, pool).unwrap_err();
            assert_eq!(error.field.as_deref(), Some(field), "{error}");
            assert!(error.message.contains(message), "{error}");
            let (line, column) = error.position.expect("a position");
            assert!(line > 1 && column > 1, "{error}");
        }

        let error = files
            .pool_probe(
                "",
                "probe = { kind = \"https\", ca_file = \"pool-ca.crt\", insecure_skip_verify = true }",
            )
            .unwrap_err();
        assert!(error.message.contains("would ignore ca_file"), "{error}");
        let error = files
            .pool_probe(
                "kind = \"https\"\nca_file = \"ca.crt\"\nexpect_status = 42",
                "",
            )
            .unwrap_err();
        assert_eq!(error.field.as_deref(), Some("probe.expect_status"));
        let error = files
            .pool_probe(
                "kind = \"https\"\nca_file = \"ca.crt\"\nserver_name = \"not a name\"",
                "",
            )
            .unwrap_err();
        assert_eq!(error.field.as_deref(), Some("probe.server_name"));
    }
}
