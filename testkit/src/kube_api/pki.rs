//! The stand-in cluster's credentials: a certificate authority, a serving certificate per
//! address, the client certificate (CN=apidns-discover) and bearer token that it accepts, and
//! the kubeconfig that carries them, as kubeadm would write one.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;

/// The common name of the client certificate: the user RBAC would bind.
pub const CLIENT_NAME: &str = "apidns-discover";

/// How a kubeconfig authenticates its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <token>`, as a ServiceAccount token is sent.
    Token,
    /// A client certificate signed by the cluster CA, as `kubeadm kubeconfig user` makes.
    ClientCert,
}

pub(super) struct Pki {
    server_name: String,
    ca: CertifiedIssuer<'static, KeyPair>,
    client_cert: String,
    client_key: String,
    token: String,
}

impl Pki {
    pub fn new(server_name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::new()).expect("no names");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-standin-ca");
        let key = KeyPair::generate().expect("a CA key");
        let ca = CertifiedIssuer::self_signed(params, key).expect("a CA certificate");
        let (client_cert, client_key) = issue(
            &ca,
            Vec::new(),
            CLIENT_NAME,
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        Self {
            server_name: server_name.to_string(),
            ca,
            client_cert,
            client_key,
            token: new_token(),
        }
    }

    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn client_cert_pem(&self) -> &str {
        &self.client_cert
    }

    pub fn client_key_pem(&self) -> &str {
        &self.client_key
    }

    /// TLS for a server on `ip`: a certificate for the cluster's server name and `ip` (so that
    /// clients may verify either), offering HTTP/2 by ALPN as kube-apiserver does, and asking
    /// for a client certificate that, when one is presented, must be signed by the cluster CA
    /// (a client without one goes on to bearer-token authentication).
    pub fn acceptor(&self, ip: IpAddr) -> TlsAcceptor {
        let names = vec![self.server_name.clone(), ip.to_string()];
        let (cert, key) = issue(
            &self.ca,
            names,
            "kube-apiserver",
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let chain = vec![CertificateDer::from_pem_slice(cert.as_bytes()).expect("PEM we made")];
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("PEM we made");
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).expect("our CA");
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .allow_unauthenticated()
            .build()
            .expect("a client verifier");
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .expect("a serving certificate");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        TlsAcceptor::from(Arc::new(config))
    }

    /// A kubeconfig for `server_url` (`https://host:port`; with `tls_server_name`, the name
    /// the certificate is checked for) with the CA and the credentials of `auth`, its
    /// context's namespace `default`.
    pub fn kubeconfig(
        &self,
        server_url: &str,
        tls_server_name: Option<&str>,
        auth: Auth,
    ) -> String {
        let user = match auth {
            Auth::Token => format!("    token: {}\n", self.token),
            Auth::ClientCert => format!(
                "    client-certificate-data: {}\n    client-key-data: {}\n",
                base64(self.client_cert.as_bytes()),
                base64(self.client_key.as_bytes())
            ),
        };
        let tls_server_name = tls_server_name
            .map(|name| format!("    tls-server-name: {name}\n"))
            .unwrap_or_default();
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: standin\n  cluster:\n    server: {server_url}\n{tls_server_name}    certificate-authority-data: {ca}\nusers:\n- name: {CLIENT_NAME}\n  user:\n{user}contexts:\n- name: standin\n  context:\n    cluster: standin\n    namespace: default\n    user: {CLIENT_NAME}\ncurrent-context: standin\n",
            ca = base64(self.ca.pem().as_bytes()),
        )
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate (PEM) and its key (PEM) for `names` (DNS names or IP addresses), signed by `ca`.
fn issue(
    ca: &CertifiedIssuer<'static, KeyPair>,
    names: Vec<String>,
    common_name: &str,
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let key = KeyPair::generate().expect("a key");
    let mut params = CertificateParams::new(names).expect("valid names");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, ca).expect("signed by our CA");
    (cert.pem(), key.serialize_pem())
}

/// A token no test could guess by accident; the stand-in only compares it.
fn new_token() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    format!("standin.{nanos:x}{:x}", std::process::id())
}

/// Standard base64 with padding, as kubeconfig `*-data` fields are.
pub(super) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_pads_as_the_standard_does() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
