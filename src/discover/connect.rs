//! A kube client that reaches the cluster through one pool member, by address: the URL is
//! `https://<member>:<the kubeconfig server's port>`, and the certificate is verified with the
//! kubeconfig's CA for the kubeconfig's server name (kube's `tls_server_name`), so that
//! discovery needs no other DNS server or load balancer.

use std::net::IpAddr;
use std::time::Duration;

use data_encoding::BASE64;
use kube::config::AuthInfo;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use secrecy::SecretString;

use crate::config::{ClusterAccess, Credentials};

/// A member that does not accept the connection in this long is skipped for the next one.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A client for the cluster through `member`; an error is a sentence for the log and /status.
pub(super) fn client_through(
    access: &ClusterAccess,
    member: IpAddr,
) -> Result<kube::Client, String> {
    let host = match member {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    let url: http::Uri = format!("https://{host}:{}", access.port)
        .parse()
        .map_err(|error| format!("no URL for {member}: {error}"))?;
    let mut config = kube::Config::new(url);
    config.root_cert = Some(
        CertificateDer::pem_slice_iter(&access.ca_pem)
            .map(|certificate| certificate.map(|der| der.to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| format!("the cluster CA: {error}"))?,
    );
    config.tls_server_name = Some(access.server_name.clone());
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.auth_info = auth_info(&access.credentials);
    kube::Client::try_from(config).map_err(|error| error.to_string())
}

fn auth_info(credentials: &Credentials) -> AuthInfo {
    let mut auth = AuthInfo::default();
    match credentials {
        Credentials::Token(token) => auth.token = Some(SecretString::from(token.clone())),
        Credentials::TokenFile(path) => auth.token_file = Some(path.display().to_string()),
        Credentials::ClientCertificate { cert_pem, key_pem } => {
            auth.client_certificate_data = Some(BASE64.encode(cert_pem));
            auth.client_key_data = Some(SecretString::from(BASE64.encode(key_pem)));
        }
    }
    auth
}
