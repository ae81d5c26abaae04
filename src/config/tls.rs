//! TLS material for HTTPS probes, loaded once when the configuration is loaded: the trust anchors
//! (a CA file, the system trust store, or none at all), the optional client certificate and key,
//! and the rustls client configuration built from them.
//!
//! Loading here rather than in the prober means that a bad PEM file is a configuration error
//! with a file and line, that a prober never reads a file while probing, and that every prober
//! of a pool shares one `Arc<ClientConfig>`.

use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Where the certificates that a server's chain must lead to come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Trust {
    /// The operating system's trust store (`rustls-native-certs`: on Linux the bundle that
    /// `update-ca-certificates` maintains, or the files named by `SSL_CERT_FILE`/`SSL_CERT_DIR`).
    System,
    /// The CAs in this PEM file, and no others.
    CaFile(PathBuf),
    /// No verification at all (`insecure_skip_verify = true`).
    Insecure,
}

/// A client certificate chain and its key, both PEM files.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientIdentity {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Which key a loading problem belongs to, so that the error can point at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsKey {
    CaFile,
    ClientCert,
    ClientKey,
}

impl TlsKey {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TlsKey::CaFile => "ca_file",
            TlsKey::ClientCert => "client_cert",
            TlsKey::ClientKey => "client_key",
        }
    }
}

/// Why TLS material could not be loaded, and which key to blame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct TlsLoadError {
    pub key: TlsKey,
    pub message: String,
}

/// The TLS side of an HTTPS probe, ready to use.
///
/// Two values are equal when they name the same files and those files held the same bytes when
/// they were loaded: a reload after a CA rotation therefore counts as a change of the probe
/// settings and restarts the probers with the new trust anchors.
#[derive(Clone)]
pub struct TlsClient {
    trust: Trust,
    identity: Option<ClientIdentity>,
    /// A digest of every certificate and key that went into `config`.
    material: u64,
    config: Arc<ClientConfig>,
}

impl TlsClient {
    /// Reads the files and builds the rustls client configuration (ring provider, TLS 1.2 and
    /// 1.3, ALPN `http/1.1`, no session resumption so that every probe sees the certificate).
    pub(crate) fn load(
        trust: Trust,
        identity: Option<ClientIdentity>,
    ) -> Result<Self, TlsLoadError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut material = DefaultHasher::new();
        trust.hash(&mut material);
        identity.hash(&mut material);

        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|error| TlsLoadError {
                key: TlsKey::CaFile,
                message: format!("cannot set up TLS: {error}"),
            })?;
        let builder = match &trust {
            Trust::Insecure => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
                    algorithms: provider.signature_verification_algorithms,
                })),
            Trust::CaFile(path) => {
                let roots = ca_file_roots(path, &mut material)?;
                builder.with_root_certificates(roots)
            }
            Trust::System => builder.with_root_certificates(system_roots(&mut material)?),
        };
        let mut config = match &identity {
            None => builder.with_no_client_auth(),
            Some(identity) => {
                let chain = certificates(&identity.cert, TlsKey::ClientCert)?;
                for certificate in &chain {
                    certificate.as_ref().hash(&mut material);
                }
                let key = private_key(&identity.key)?;
                key.secret_der().hash(&mut material);
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|error| TlsLoadError {
                        key: TlsKey::ClientKey,
                        message: match error {
                            rustls::Error::InconsistentKeys(_) => format!(
                                "{} is not the key of the certificate in {}",
                                identity.key.display(),
                                identity.cert.display()
                            ),
                            other => format!("{}: {other}", identity.key.display()),
                        },
                    })?
            }
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        // A resumed TLS 1.3 session skips the certificate; a probe that is meant to prove the
        // certificate still carries the right name must see it every time.
        config.resumption = Resumption::disabled();
        Ok(Self {
            trust,
            identity,
            material: material.finish(),
            config: Arc::new(config),
        })
    }

    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    pub fn identity(&self) -> Option<&ClientIdentity> {
        self.identity.as_ref()
    }

    /// Whether certificates are accepted without verification.
    pub fn skips_verification(&self) -> bool {
        self.trust == Trust::Insecure
    }

    /// The rustls configuration that a connector uses.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.config.clone()
    }
}

impl PartialEq for TlsClient {
    fn eq(&self, other: &Self) -> bool {
        self.trust == other.trust
            && self.identity == other.identity
            && self.material == other.material
    }
}

impl Eq for TlsClient {}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClient")
            .field("trust", &self.trust)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

fn ca_file_roots(path: &Path, material: &mut DefaultHasher) -> Result<RootCertStore, TlsLoadError> {
    let mut roots = RootCertStore::empty();
    for (index, certificate) in certificates(path, TlsKey::CaFile)?.into_iter().enumerate() {
        certificate.as_ref().hash(material);
        roots.add(certificate).map_err(|error| TlsLoadError {
            key: TlsKey::CaFile,
            message: format!(
                "{}: certificate {} is not usable as a trust anchor: {error}",
                path.display(),
                index + 1
            ),
        })?;
    }
    Ok(roots)
}

fn system_roots(material: &mut DefaultHasher) -> Result<RootCertStore, TlsLoadError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    for certificate in &found.certs {
        certificate.as_ref().hash(material);
    }
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        return Err(TlsLoadError {
            key: TlsKey::CaFile,
            message: format!(
                "no ca_file is set and the system trust store holds no usable certificate{}; set ca_file to the cluster's CA (kubeadm: \"/etc/kubernetes/pki/ca.crt\")",
                if errors.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", errors.join("; "))
                }
            ),
        });
    }
    Ok(roots)
}

fn read(path: &Path, key: TlsKey) -> Result<Vec<u8>, TlsLoadError> {
    std::fs::read(path).map_err(|error| TlsLoadError {
        key,
        message: format!("cannot read {}: {error}", path.display()),
    })
}

/// Every certificate in a PEM file; at least one.
fn certificates(path: &Path, key: TlsKey) -> Result<Vec<CertificateDer<'static>>, TlsLoadError> {
    let bytes = read(path, key)?;
    let invalid = |detail: String| TlsLoadError {
        key,
        message: format!("{} is not a valid PEM file: {detail}", path.display()),
    };
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, pem::Error>>()
        .map_err(|error| invalid(error.to_string()))?;
    if chain.is_empty() {
        return Err(TlsLoadError {
            key,
            message: format!(
                "{} holds no certificate (expected PEM blocks starting with -----BEGIN CERTIFICATE-----)",
                path.display()
            ),
        });
    }
    Ok(chain)
}

/// The first private key in a PEM file (PKCS#8, PKCS#1 RSA or SEC1 EC).
fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsLoadError> {
    let bytes = read(path, TlsKey::ClientKey)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| TlsLoadError {
        key: TlsKey::ClientKey,
        message: match error {
            pem::Error::NoItemsFound => format!(
                "{} holds no private key (expected a PEM block starting with -----BEGIN PRIVATE KEY-----, -----BEGIN RSA PRIVATE KEY----- or -----BEGIN EC PRIVATE KEY-----)",
                path.display()
            ),
            other => format!("{} is not a valid PEM file: {other}", path.display()),
        },
    })
}

/// `insecure_skip_verify`: accepts any certificate for any name. The handshake signatures are
/// still checked, so the server at least holds the key of the certificate it sent.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
