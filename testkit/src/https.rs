//! Stand-in API servers that speak HTTP or HTTPS: a certificate authority made here with rcgen,
//! and small hyper servers (HTTP/1.1 keep-alive, and HTTP/2 when offered by ALPN) on loopback
//! addresses that answer per a mode, name themselves on `/version`, record what they saw and
//! how many connections they accepted, and can be killed, shut down gracefully as
//! kube-apiserver does, frozen, or told to send GOAWAY or close idle connections.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
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

/// A TLS server configuration presenting `identity` and speaking HTTP/1.1 only (no ALPN); with
/// `client_ca`, it requires a client certificate issued by that CA.
pub fn server_tls(identity: &Identity, client_ca: Option<&Authority>) -> TlsAcceptor {
    tls_config(identity, client_ca, false)
}

/// A TLS server configuration presenting `identity` that offers HTTP/2 by ALPN, as
/// kube-apiserver does.
pub fn server_tls_h2(identity: &Identity) -> TlsAcceptor {
    tls_config(identity, None, true)
}

fn tls_config(identity: &Identity, client_ca: Option<&Authority>, http2: bool) -> TlsAcceptor {
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
    let mut config = builder.with_single_cert(chain, key).unwrap();
    if http2 {
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    }
    TlsAcceptor::from(Arc::new(config))
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
    /// The request line (`GET /readyz HTTP/1.1`, or `HTTP/2.0`) and headers, lower-case names;
    /// an HTTP/2 request's authority shows as `host`.
    pub head: String,
}

/// The state a server's tasks share with the test.
struct Shared {
    name: String,
    mode: AtomicU8,
    seen: Mutex<Vec<Seen>>,
    accepted: AtomicUsize,
    open: AtomicUsize,
    /// Close connections with a reset (SO_LINGER 0) rather than a FIN.
    reset: AtomicBool,
    /// Send GOAWAY (HTTP/1.1: close once idle) on each connection this long after it opened.
    goaway_after: Mutex<Option<Duration>>,
    /// Close connections that carried no request for this long; PINGs do not count, as in
    /// kube-apiserver (Go's `IdleTimeout`).
    idle_close: Mutex<Option<Duration>>,
    /// While true, nothing is accepted or answered (not even PINGs), as in a stopped process.
    frozen: watch::Sender<bool>,
    /// Set to stop accepting: the listener is closed, and `closed` is set.
    listening: watch::Sender<bool>,
    closed: watch::Sender<bool>,
    /// Set to send GOAWAY on every connection (HTTP/1.1: close once idle).
    draining: watch::Sender<bool>,
}

/// A stand-in API server: HTTP or HTTPS on a loopback address, answering any path per its
/// mode. Its own small tokio runtime stops when it is dropped or killed.
pub struct ApiServer {
    pub address: SocketAddr,
    /// What it calls itself in `/version` answers.
    pub name: String,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl ApiServer {
    /// HTTPS (HTTP/1.1 only) on `ip` with a free port, named after its address.
    pub fn https(ip: &str, identity: &Identity) -> Self {
        Self::start(ip, Some(server_tls(identity, None)))
    }

    /// HTTPS offering HTTP/2 by ALPN, as kube-apiserver does, on `ip` with a free port.
    pub fn https_h2(ip: &str, identity: &Identity) -> Self {
        Self::start(ip, Some(server_tls_h2(identity)))
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

    /// A server on `address` (a restart at the same address) with `tls`.
    pub fn start_at(address: SocketAddr, tls: Option<TlsAcceptor>) -> Self {
        Self::bind(address, None, tls).expect("bind the stand-in API server")
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
        let shared = Arc::new(Shared {
            name: name.clone(),
            mode: AtomicU8::new(Mode::Ready as u8),
            seen: Mutex::new(Vec::new()),
            accepted: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            reset: AtomicBool::new(false),
            goaway_after: Mutex::new(None),
            idle_close: Mutex::new(None),
            frozen: watch::Sender::new(false),
            listening: watch::Sender::new(true),
            closed: watch::Sender::new(false),
            draining: watch::Sender::new(false),
        });
        runtime.spawn(accept(listener, tls, shared.clone()));
        Ok(Self {
            address,
            name,
            shared,
            runtime: Some(runtime),
        })
    }

    pub fn set(&self, mode: Mode) {
        self.shared.mode.store(mode as u8, Ordering::SeqCst);
    }

    pub fn member(&self) -> String {
        self.address.to_string()
    }

    pub fn ip(&self) -> String {
        self.address.ip().to_string()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// How many `GET path` requests it has answered or is answering.
    pub fn requests(&self, path: &str) -> usize {
        let line = format!("GET {path} HTTP/");
        self.shared
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|seen| seen.head.starts_with(&line))
            .count()
    }

    /// TCP connections accepted since the start.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// TCP connections accepted and not yet closed.
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// Sends GOAWAY on every connection `after` it opened (`None`: never), as
    /// `--goaway-chance` does at random; the server keeps listening.
    pub fn goaway_after(&self, after: Option<Duration>) {
        *self.shared.goaway_after.lock().unwrap() = after;
    }

    /// Closes connections that carried no request for `idle` (`None`: never).
    pub fn close_idle_after(&self, idle: Option<Duration>) {
        *self.shared.idle_close.lock().unwrap() = idle;
    }

    /// Stops (or resumes) accepting and answering anything, PINGs included, while every
    /// connection stays open: a stopped process, or a host that froze.
    pub fn freeze(&self, frozen: bool) {
        self.shared.frozen.send_replace(frozen);
    }

    /// kube-apiserver's graceful shutdown: `/readyz` answers 500 at once; `delay` later (its
    /// `--shutdown-delay-duration`) it stops listening, sends GOAWAY on every connection and
    /// closes them once their requests are answered.
    pub fn shut_down_gracefully(&self, delay: Duration) {
        self.set(Mode::NotReady);
        let shared = self.shared.clone();
        if let Some(runtime) = &self.runtime {
            runtime.spawn(async move {
                tokio::time::sleep(delay).await;
                stop_listening(&shared).await;
                shared.draining.send_replace(true);
            });
        }
    }

    /// Stops the server, as a crash would: the listener and every open connection are closed
    /// (with a FIN) when this returns, so new connections are refused.
    pub fn kill(mut self) -> SocketAddr {
        self.stop();
        self.address
    }

    /// Like [`ApiServer::kill`], but the open connections are reset.
    pub fn kill_with_reset(mut self) -> SocketAddr {
        self.shared.reset.store(true, Ordering::SeqCst);
        self.stop();
        self.address
    }

    fn stop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // The listener goes first, so that a client reconnecting on the close of its
            // connection is refused, as with a dying process.
            runtime.block_on(stop_listening(&self.shared));
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn stop_listening(shared: &Shared) {
    shared.listening.send_replace(false);
    let mut closed = shared.closed.subscribe();
    let _ = closed.wait_for(|closed| *closed).await;
}

async fn accept(listener: TcpListener, tls: Option<TlsAcceptor>, shared: Arc<Shared>) {
    let mut listening = shared.listening.subscribe();
    let mut frozen = shared.frozen.subscribe();
    loop {
        // A frozen process accepts nothing; the kernel still completes handshakes into the
        // backlog.
        if *frozen.borrow_and_update() {
            tokio::select! {
                _ = listening.wait_for(|listening| !*listening) => break,
                _ = frozen.wait_for(|frozen| !*frozen) => continue,
            }
        }
        let accepted = tokio::select! {
            _ = listening.wait_for(|listening| !*listening) => break,
            _ = frozen.changed() => continue,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        shared.open.fetch_add(1, Ordering::SeqCst);
        let stream = Counted {
            stream,
            shared: shared.clone(),
        };
        let (tls, shared) = (tls.clone(), shared.clone());
        tokio::spawn(async move {
            match tls {
                None => serve(stream, None, false, shared).await,
                Some(acceptor) => {
                    // A client that rejects the certificate aborts here.
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let sni = stream.get_ref().1.server_name().map(str::to_string);
                    let http2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                    serve(stream, sni, http2, shared).await;
                }
            }
        });
    }
    drop(listener);
    shared.closed.send_replace(true);
}

async fn serve<S>(stream: S, sni: Option<String>, http2: bool, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let last_request = Arc::new(Mutex::new(Instant::now()));
    let service = {
        let (shared, last_request) = (shared.clone(), last_request.clone());
        service_fn(move |request| {
            *last_request.lock().unwrap() = Instant::now();
            answer(request, sni.clone(), shared.clone())
        })
    };
    let io = TokioIo::new(stream);
    if http2 {
        let connection = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .serve_connection(io, service);
        drive(
            connection,
            |c| c.graceful_shutdown(),
            &shared,
            &last_request,
        )
        .await;
    } else {
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .serve_connection(io, service);
        drive(
            connection,
            |c| c.graceful_shutdown(),
            &shared,
            &last_request,
        )
        .await;
    }
}

/// Polls `connection` until it ends, sending GOAWAY (`goaway`) when the server drains, when the
/// connection is old enough (`goaway_after`) or idle for long enough, and not polling it at all
/// while the server is frozen.
async fn drive<C: Future>(
    connection: C,
    goaway: impl Fn(Pin<&mut C>),
    shared: &Shared,
    last_request: &Mutex<Instant>,
) {
    let mut connection = std::pin::pin!(connection);
    let opened = Instant::now();
    let mut frozen = shared.frozen.subscribe();
    let mut draining = shared.draining.subscribe();
    let mut goaway_sent = false;
    loop {
        if *frozen.borrow_and_update() {
            let _ = frozen.wait_for(|frozen| !*frozen).await;
            continue;
        }
        let goaway_at = shared
            .goaway_after
            .lock()
            .unwrap()
            .map(|after| opened + after);
        let idle_at = shared
            .idle_close
            .lock()
            .unwrap()
            .map(|idle| *last_request.lock().unwrap() + idle);
        let wake_at = match (goaway_at, idle_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        tokio::select! {
            _ = connection.as_mut() => return,
            _ = frozen.changed() => {}
            _ = draining.wait_for(|draining| *draining), if !goaway_sent => {
                goaway(connection.as_mut());
                goaway_sent = true;
            }
            () = sleep_until_some(wake_at), if !goaway_sent => {
                let now = Instant::now();
                if goaway_at.is_some_and(|at| at <= now) || idle_at.is_some_and(|at| at <= now) {
                    goaway(connection.as_mut());
                    goaway_sent = true;
                }
            }
            // Settings may change while a connection is open.
            () = tokio::time::sleep(Duration::from_millis(50)), if wake_at.is_none() && !goaway_sent => {}
        }
    }
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn answer(
    request: Request<Incoming>,
    sni: Option<String>,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str())
        .to_string();
    let mut head = format!("{} {path} {:?}\r\n", request.method(), request.version());
    if request.version() == hyper::Version::HTTP_2
        && let Some(authority) = request.uri().authority()
    {
        head.push_str(&format!("host: {authority}\r\n"));
    }
    for (name, value) in request.headers() {
        head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap_or("?")));
    }
    head.push_str("\r\n");
    shared.seen.lock().unwrap().push(Seen { sni, head });
    let version = path == "/version" || path.starts_with("/version?");
    let (status, content_type, body) = match shared.mode.load(Ordering::SeqCst) {
        0 if version => (
            200,
            "application/json",
            format!(
                "{{\"major\":\"1\",\"minor\":\"31\",\"gitVersion\":\"v1.31.0-standin\",\"server\":\"{}\"}}",
                shared.name
            ),
        ),
        0 => (200, "text/plain", "ok".to_string()),
        1 => (
            500,
            "text/plain",
            "[-]etcd failed: reason withheld\nreadyz check failed\n".to_string(),
        ),
        // Hold the request and say nothing, until the client gives up.
        _ => std::future::pending().await,
    };
    Ok(Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .unwrap())
}

/// An accepted connection, counted while open, closed with a reset when the server is killed
/// so.
struct Counted {
    stream: TcpStream,
    shared: Arc<Shared>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        if self.shared.reset.load(Ordering::SeqCst) {
            let _ = socket2::SockRef::from(&self.stream).set_linger(Some(Duration::ZERO));
        }
        self.shared.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
