//! Stand-in API servers that speak HTTP or HTTPS: a certificate authority made here with rcgen,
//! and small tokio-rustls servers on loopback addresses that answer per a mode, name themselves
//! on `/version`, record what they saw, and can be killed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A certificate authority that issues server and client certificates.
pub struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, PEM.
pub struct Identity {
    pub cert: String,
    pub key: String,
}

impl Authority {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        Self {
            issuer: CertifiedIssuer::self_signed(params, key).unwrap(),
        }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for `names`: DNS names, or IP addresses.
    pub fn issue(&self, names: &[&str]) -> Identity {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(ToString::to_string).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        Identity {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS server configuration presenting `identity`; with `client_ca`, it requires a client
/// certificate issued by that CA.
pub fn server_tls(identity: &Identity, client_ca: Option<&Authority>) -> TlsAcceptor {
    let chain = vec![CertificateDer::from_pem_slice(identity.cert.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(identity.key.as_bytes()).unwrap();
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots.add(ca.issuer.der().clone()).unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    TlsAcceptor::from(Arc::new(builder.with_single_cert(chain, key).unwrap()))
}

/// How a stand-in API server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 200: `ok`, or on `/version` a version document that names the server.
    Ready = 0,
    /// 500, as `/readyz` answers while etcd is unreachable or the server shuts down.
    NotReady = 1,
    /// Reads the request and never answers.
    Hang = 2,
}

/// What a stand-in server saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The TLS server name the client sent (SNI).
    pub sni: Option<String>,
    /// The request line and headers.
    pub head: String,
}

/// A stand-in API server: HTTP or HTTPS on a loopback address, answering any path per its
/// mode. Its own small tokio runtime stops when it is dropped or killed.
pub struct ApiServer {
    pub address: SocketAddr,
    /// What it calls itself in `/version` answers.
    pub name: String,
    mode: Arc<AtomicU8>,
    seen: Arc<Mutex<Vec<Seen>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl ApiServer {
    /// HTTPS on `ip` with a free port, named after its address.
    pub fn https(ip: &str, identity: &Identity) -> Self {
        Self::start(ip, Some(server_tls(identity, None)))
    }

    /// Plain HTTP on `ip` with a free port.
    pub fn http(ip: &str) -> Self {
        Self::start(ip, None)
    }

    pub fn start(ip: &str, tls: Option<TlsAcceptor>) -> Self {
        let ip: std::net::IpAddr = ip.parse().expect("an IP address");
        Self::bind(SocketAddr::new(ip, 0), None, tls).expect("bind the stand-in API server")
    }

    /// HTTPS on `address` (port 0: a free one), calling itself `name`; an error when the
    /// address is taken.
    pub fn https_named(
        address: SocketAddr,
        name: &str,
        identity: &Identity,
    ) -> std::io::Result<Self> {
        Self::bind(address, Some(name), Some(server_tls(identity, None)))
    }

    fn bind(
        address: SocketAddr,
        name: Option<&str>,
        tls: Option<TlsAcceptor>,
    ) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(TcpListener::bind(address))?;
        let address = listener.local_addr()?;
        let name = name.map_or_else(|| address.to_string(), str::to_string);
        let mode = Arc::new(AtomicU8::new(Mode::Ready as u8));
        let seen = Arc::new(Mutex::new(Vec::new()));
        runtime.spawn(accept(
            listener,
            tls,
            name.clone(),
            mode.clone(),
            seen.clone(),
        ));
        Ok(Self {
            address,
            name,
            mode,
            seen,
            runtime: Some(runtime),
        })
    }

    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    pub fn member(&self) -> String {
        self.address.to_string()
    }

    pub fn ip(&self) -> String {
        self.address.ip().to_string()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// How many `GET path` requests it has answered or is answering.
    pub fn requests(&self, path: &str) -> usize {
        let line = format!("GET {path} HTTP/");
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|seen| seen.head.starts_with(&line))
            .count()
    }

    /// Stops the server, as a crash would: the listener and every open connection are closed
    /// when this returns, so new connections are refused.
    pub fn kill(mut self) -> SocketAddr {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
        self.address
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn accept(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    name: String,
    mode: Arc<AtomicU8>,
    seen: Arc<Mutex<Vec<Seen>>>,
) {
    let name: Arc<str> = name.into();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (tls, name, mode, seen) = (tls.clone(), name.clone(), mode.clone(), seen.clone());
        tokio::spawn(async move {
            match tls {
                None => answer(stream, None, &name, &mode, &seen).await,
                Some(acceptor) => {
                    // A client that rejects the certificate aborts here.
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let sni = stream.get_ref().1.server_name().map(str::to_string);
                    answer(stream, sni, &name, &mode, &seen).await;
                }
            }
        });
    }
}

async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    sni: Option<String>,
    name: &str,
    mode: &AtomicU8,
    seen: &Mutex<Vec<Seen>>,
) {
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(length) => head.extend_from_slice(&buffer[..length]),
        }
        if head.len() > 16 * 1024 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let version = head.starts_with("GET /version ") || head.starts_with("GET /version?");
    seen.lock().unwrap().push(Seen { sni, head });
    let (status, content_type, body) = match mode.load(Ordering::SeqCst) {
        0 if version => (
            "200 OK",
            "application/json",
            format!(
                "{{\"major\":\"1\",\"minor\":\"31\",\"gitVersion\":\"v1.31.0-standin\",\"server\":\"{name}\"}}"
            ),
        ),
        0 => ("200 OK", "text/plain", "ok".to_string()),
        1 => (
            "500 Internal Server Error",
            "text/plain",
            "[-]etcd failed: reason withheld\nreadyz check failed\n".to_string(),
        ),
        _ => {
            // Hold the connection and say nothing, until the client gives up.
            while matches!(stream.read(&mut buffer).await, Ok(length) if length > 0) {}
            return;
        }
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
