//! A pool's `discover` table: the kubeconfig to watch the cluster with, read and checked here
//! (its current context, the cluster's server URL and CA, the user's token or client
//! certificate), and the networks the cluster may propose members from.
//!
//! kube's own `Kubeconfig` type parses the YAML, so that what passes here is what kube-rs and
//! kubectl read the same way; the checks after it are apidns's: discovery cannot work without a
//! CA (apidns connects by address and must verify the name) or without credentials.

use std::path::{Path, PathBuf};

use data_encoding::BASE64;
use kube::config::{AuthInfo, Cluster, Kubeconfig};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use secrecy::ExposeSecret;
use toml::Spanned;

use crate::config::error::{ConfigError, Source};
use crate::config::file::{DiscoverSection, PoolSection};
use crate::config::model::{Cidr, ClusterAccess, Credentials, Discover};

/// The pool's `discover` table, if it has one. `prefix` is `pool.<name>`.
pub(super) fn parse_discover(
    source: &Source<'_>,
    pool: &PoolSection,
    prefix: &str,
) -> Result<Option<Discover>, ConfigError> {
    let Some(section) = &pool.discover else {
        return Ok(None);
    };
    let field = format!("{prefix}.discover");
    if pool
        .members
        .as_ref()
        .is_none_or(|members| members.get_ref().is_empty())
    {
        return Err(source.error(
            section.span(),
            &field,
            "discover needs at least one bootstrap member in members: apidns reaches the cluster through the pool's own members",
        ));
    }
    let section = section.get_ref();
    let allow = parse_allow(source, section, &field)?;
    let kubeconfig = kubeconfig_path(source, &section.kubeconfig, &field)?;
    let access = read_kubeconfig(&kubeconfig).map_err(|message| {
        source.error(
            section.kubeconfig.span(),
            format!("{field}.kubeconfig"),
            format!("{}: {message}", kubeconfig.display()),
        )
    })?;
    Ok(Some(Discover {
        kubeconfig,
        allow,
        access,
    }))
}

/// The networks proposed members must be in; at least one, each in CIDR notation.
fn parse_allow(
    source: &Source<'_>,
    section: &DiscoverSection,
    field: &str,
) -> Result<Vec<Cidr>, ConfigError> {
    if section.allow.get_ref().is_empty() {
        return Err(source.error(
            section.allow.span(),
            format!("{field}.allow"),
            "allow needs at least one network: only addresses inside it may become members",
        ));
    }
    section
        .allow
        .get_ref()
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            entry.get_ref().parse::<Cidr>().map_err(|error| {
                source.error(entry.span(), format!("{field}.allow[{index}]"), error)
            })
        })
        .collect()
}

/// The kubeconfig's path, relative to the zone file.
fn kubeconfig_path(
    source: &Source<'_>,
    value: &Spanned<String>,
    field: &str,
) -> Result<PathBuf, ConfigError> {
    let text = value.get_ref().trim();
    if text.is_empty() {
        return Err(source.error(
            value.span(),
            format!("{field}.kubeconfig"),
            "the path is empty",
        ));
    }
    Ok(source.path.parent().unwrap_or(Path::new(".")).join(text))
}

/// Reads the kubeconfig and takes from its current context what discovery needs. The error is
/// a sentence about the kubeconfig, without its path.
pub(crate) fn read_kubeconfig(path: &Path) -> Result<ClusterAccess, String> {
    let kubeconfig = Kubeconfig::read_from(path).map_err(|error| error.to_string())?;
    let context_name = kubeconfig
        .current_context
        .clone()
        .filter(|name| !name.is_empty())
        .ok_or("the kubeconfig has no current-context")?;
    let context = kubeconfig
        .contexts
        .iter()
        .find(|context| context.name == context_name)
        .and_then(|context| context.context.clone())
        .ok_or_else(|| {
            format!("the current-context \"{context_name}\" is not among its contexts")
        })?;
    let cluster = kubeconfig
        .clusters
        .iter()
        .find(|cluster| cluster.name == context.cluster)
        .and_then(|cluster| cluster.cluster.clone())
        .ok_or_else(|| {
            format!(
                "the cluster \"{}\" of context \"{context_name}\" is not among its clusters",
                context.cluster
            )
        })?;
    let user_name = context
        .user
        .clone()
        .ok_or_else(|| format!("the context \"{context_name}\" names no user"))?;
    let user = kubeconfig
        .auth_infos
        .iter()
        .find(|user| user.name == user_name)
        // A user entry with nothing under it has no credentials, which is said below.
        .map(|user| user.auth_info.clone().unwrap_or_default())
        .ok_or_else(|| {
            format!("the user \"{user_name}\" of context \"{context_name}\" is not among its users")
        })?;
    let server = cluster
        .server
        .clone()
        .ok_or_else(|| format!("the cluster \"{}\" has no server URL", context.cluster))?;
    let (host, port) = server_host_port(&server)?;
    Ok(ClusterAccess {
        server_name: cluster.tls_server_name.clone().unwrap_or(host),
        port,
        ca_pem: cluster_ca(&cluster, &context.cluster)?,
        credentials: credentials(&user, &user_name)?,
        server,
    })
}

/// The host and port of an `https://host[:port][/path]` URL; the port defaults to 443.
fn server_host_port(url: &str) -> Result<(String, u16), String> {
    let wrong = |why: &str| format!("the server URL \"{url}\" {why}");
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| wrong("is not an https:// URL"))?;
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| wrong("has an unclosed [IPv6 address]"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(wrong("has no host"));
    }
    let port = match port {
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|port| *port != 0)
            .ok_or_else(|| wrong("has a port that is not a number from 1 to 65535"))?,
        None => 443,
    };
    Ok((host.to_string(), port))
}

/// The cluster's CA certificates, PEM, from `certificate-authority-data` or the
/// `certificate-authority` file; at least one certificate.
fn cluster_ca(cluster: &Cluster, name: &str) -> Result<Vec<u8>, String> {
    if cluster.insecure_skip_tls_verify == Some(true) {
        return Err(format!(
            "the cluster \"{name}\" sets insecure-skip-tls-verify; discovery verifies the API servers with the cluster's CA"
        ));
    }
    let pem = if let Some(data) = &cluster.certificate_authority_data {
        BASE64.decode(data.trim().as_bytes()).map_err(|error| {
            format!(
                "the cluster \"{name}\" has certificate-authority-data that is not base64: {error}"
            )
        })?
    } else if let Some(file) = &cluster.certificate_authority {
        std::fs::read(file).map_err(|error| {
            format!(
                "cannot read the certificate-authority file {file} of cluster \"{name}\": {error}"
            )
        })?
    } else {
        return Err(format!(
            "the cluster \"{name}\" has no CA (certificate-authority-data or certificate-authority); discovery verifies the API servers with it"
        ));
    };
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| {
            format!("the CA of cluster \"{name}\" is not PEM certificates: {error}")
        })?;
    if certificates.is_empty() {
        return Err(format!("the CA of cluster \"{name}\" holds no certificate"));
    }
    Ok(pem)
}

/// A bearer token (inline or from a file) or a client certificate and key, in that order of
/// preference (kubectl's).
fn credentials(user: &AuthInfo, name: &str) -> Result<Credentials, String> {
    if let Some(token) = &user.token {
        return Ok(Credentials::Token(token.expose_secret().trim().to_string()));
    }
    if let Some(file) = &user.token_file {
        std::fs::metadata(file).map_err(|error| {
            format!("cannot read the tokenFile {file} of user \"{name}\": {error}")
        })?;
        return Ok(Credentials::TokenFile(PathBuf::from(file)));
    }
    let cert = pem_data(
        user.client_certificate_data.as_deref(),
        user.client_certificate.as_deref(),
        "client-certificate",
        name,
    )?;
    let key_data = user
        .client_key_data
        .as_ref()
        .map(|key| key.expose_secret().to_string());
    let key = pem_data(
        key_data.as_deref(),
        user.client_key.as_deref(),
        "client-key",
        name,
    )?;
    match (cert, key) {
        (Some(cert_pem), Some(key_pem)) => Ok(Credentials::ClientCertificate { cert_pem, key_pem }),
        (Some(_), None) => Err(format!(
            "the user \"{name}\" has a client certificate but no client key"
        )),
        (None, Some(_)) => Err(format!(
            "the user \"{name}\" has a client key but no client certificate"
        )),
        (None, None) => Err(format!(
            "the user \"{name}\" has neither a token nor a client certificate; discovery needs one of them"
        )),
    }
}

/// PEM from `<key>-data` (base64) or the `<key>` file, if either is set.
fn pem_data(
    data: Option<&str>,
    file: Option<&str>,
    key: &str,
    user: &str,
) -> Result<Option<Vec<u8>>, String> {
    if let Some(data) = data {
        return BASE64
            .decode(data.trim().as_bytes())
            .map(Some)
            .map_err(|error| format!("the {key}-data of user \"{user}\" is not base64: {error}"));
    }
    match file {
        Some(file) => std::fs::read(file).map(Some).map_err(|error| {
            format!("cannot read the {key} file {file} of user \"{user}\": {error}")
        }),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_give_their_host_and_port() {
        assert_eq!(
            server_host_port("https://api.k8s.example.com:6443"),
            Ok(("api.k8s.example.com".into(), 6443))
        );
        assert_eq!(
            server_host_port("https://api.k8s.example.com"),
            Ok(("api.k8s.example.com".into(), 443))
        );
        assert_eq!(
            server_host_port("https://[2001:db8::1]:6443/prefix"),
            Ok(("2001:db8::1".into(), 6443))
        );
        assert_eq!(
            server_host_port("https://192.0.2.10:6443/"),
            Ok(("192.0.2.10".into(), 6443))
        );
        for wrong in [
            "http://api:6443",
            "https://:6443",
            "https://api:0",
            "https://api:x",
            "https://[::1",
        ] {
            assert!(server_host_port(wrong).is_err(), "{wrong}");
        }
    }
}
