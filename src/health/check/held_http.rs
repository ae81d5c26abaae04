//! One held HTTP(S) connection to a member: TCP, TLS verified exactly as the periodic HTTPS
//! probe verifies it (the same rustls configuration, with ALPN `h2` added), then HTTP/2 when the
//! server offers it, HTTP/1.1 keep-alive otherwise. Requests go one at a time on it.
//!
//! HTTP/2 connections send a PING whenever they have been idle for the ping interval and end
//! when its ack does not come within the ping timeout: a frozen server is noticed between
//! requests. `TCP_USER_TIMEOUT` ends a connection whose data goes unacknowledged.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::client::conn::{http1, http2};
use hyper::header::{HOST, USER_AGENT};
use hyper::{Request, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use super::http::{USER_AGENT_VALUE, host_header};
use super::http_failure::{http_failure, tls_failure};
use super::tcp::connect;
use crate::config::{HttpCheck, HttpsCheck, ProbeKind, ProbeSettings};
use crate::zone::ProbeFailure;

/// The most of a response body that is read (and thrown away) so that the connection can carry
/// the next request; `/readyz?verbose` is a few kilobytes.
const BODY_LIMIT: usize = 64 * 1024;
/// The longest time between PINGs on an idle HTTP/2 connection.
const PING_INTERVAL_MAX: Duration = Duration::from_millis(250);
/// The shortest `TCP_USER_TIMEOUT`: shorter ones would end connections on a lossy but working
/// network, where a few retransmissions are normal.
const USER_TIMEOUT_MIN: Duration = Duration::from_secs(1);

/// Where and what a held probe asks, worked out once per prober.
pub(crate) struct Endpoint {
    target: SocketAddr,
    http: HttpCheck,
    /// The `Host` header of HTTP/1.1 requests.
    authority: String,
    /// The request URI of HTTP/2 requests, which carry the authority in it.
    absolute: Uri,
    tls: Option<Tls>,
    timeout: Duration,
    /// PING an HTTP/2 connection idle this long; an ack must come within `ping_timeout`.
    ping_interval: Duration,
    /// Half the probe timeout: a server that answers requests within `timeout` acks a PING
    /// (answered by its connection loop, not a handler) in far less. A missed ack only ends the
    /// connection; the reconnect decides, so a slow ack never takes a member down by itself.
    ping_timeout: Duration,
}

struct Tls {
    connector: TlsConnector,
    server_name: ServerName<'static>,
    name: String,
    check: HttpsCheck,
}

impl Endpoint {
    pub(crate) fn new(settings: &ProbeSettings, target: SocketAddr) -> Result<Self, ProbeFailure> {
        let (http, https) = match &settings.kind {
            ProbeKind::Http(http) => (http.clone(), None),
            ProbeKind::Https(https) => (https.http.clone(), Some(https)),
            ProbeKind::Tcp => {
                return Err(ProbeFailure::Error(
                    "held HTTP probes need kind = \"http\" or \"https\"".into(),
                ));
            }
        };
        let (authority, tls) = match https {
            None => (target.to_string(), None),
            Some(https) => {
                // As in the periodic probe: only the `[probe]` defaults lack a server name.
                let name = https
                    .server_name
                    .clone()
                    .unwrap_or_else(|| target.ip().to_string());
                let server_name = ServerName::try_from(name.clone())
                    .map_err(|_| ProbeFailure::Error(format!("{name} is not a TLS server name")))?;
                let mut config = (*https.tls.client_config()).clone();
                config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
                let tls = Tls {
                    connector: TlsConnector::from(Arc::new(config)),
                    server_name,
                    name: name.clone(),
                    check: https.clone(),
                };
                (host_header(&name, target.port()), Some(tls))
            }
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let absolute = format!("{scheme}://{authority}{}", http.path)
            .parse()
            .map_err(|error| ProbeFailure::Error(format!("cannot build the request: {error}")))?;
        Ok(Self {
            target,
            http,
            authority,
            absolute,
            tls,
            timeout: settings.timeout,
            ping_interval: (settings.interval / 4).min(PING_INTERVAL_MAX),
            ping_timeout: settings.timeout / 2,
        })
    }

    fn request(&self, http2: bool) -> Result<Request<Empty<Bytes>>, ProbeFailure> {
        let builder = if http2 {
            Request::get(self.absolute.clone())
        } else {
            Request::get(self.http.path.as_str()).header(HOST, self.authority.as_str())
        };
        builder
            .header(USER_AGENT, USER_AGENT_VALUE)
            .body(Empty::new())
            .map_err(|error| ProbeFailure::Error(format!("cannot build the request: {error}")))
    }

    fn tls_context(&self) -> Option<(&str, &HttpsCheck)> {
        self.tls.as_ref().map(|tls| (tls.name.as_str(), &tls.check))
    }
}

enum Sender {
    Http1(http1::SendRequest<Empty<Bytes>>),
    Http2(http2::SendRequest<Empty<Bytes>>),
}

/// An open connection, ready for requests.
pub(crate) struct HeldConnection {
    sender: Sender,
    /// Polls the connection (HTTP/1.1) or dispatches requests to it (HTTP/2, whose I/O runs in
    /// a task of its own); finishes when the connection is gone. Boxed: ten thousand members
    /// hold ten thousand of these.
    driver: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// Set once `driver` has finished; it must not be polled again.
    ended: bool,
    watch: Arc<Watch>,
    http2: bool,
    pub(crate) opened: Instant,
}

impl HeldConnection {
    /// Connects, shakes hands (TLS, then HTTP/2 when offered) within the probe timeout.
    pub(crate) async fn open(endpoint: &Endpoint) -> Result<Self, ProbeFailure> {
        let timeout = endpoint.timeout;
        let deadline = Instant::now() + timeout;
        let stalled = |waiting_for| ProbeFailure::Stalled {
            after: timeout,
            waiting_for,
        };
        let stream = tokio::time::timeout_at(deadline, connect(endpoint.target))
            .await
            .map_err(|_| ProbeFailure::Timeout(timeout))??;
        tune(&stream, timeout);
        let watch = Arc::new(Watch::new());
        let stream = Watched {
            stream,
            watch: watch.clone(),
        };
        let opened = Instant::now();
        let Some(tls) = &endpoint.tls else {
            let (sender, driver) = tokio::time::timeout_at(deadline, http1_handshake(stream))
                .await
                .map_err(|_| stalled("the HTTP handshake"))?
                .map_err(|error| http_failure(&error, None))?;
            return Ok(Self::new(sender, driver, watch, opened));
        };

        let handshake = tls.connector.connect(tls.server_name.clone(), stream);
        let stream = tokio::time::timeout_at(deadline, handshake)
            .await
            .map_err(|_| stalled("the TLS handshake"))?
            .map_err(|error| tls_failure(&error, &tls.name, &tls.check))?;
        let http2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        let handshake = async {
            if http2 {
                let (sender, connection) = http2::Builder::new(TokioExecutor::new())
                    .timer(TokioTimer::new())
                    .keep_alive_interval(endpoint.ping_interval)
                    .keep_alive_timeout(endpoint.ping_timeout)
                    .keep_alive_while_idle(true)
                    .handshake(TokioIo::new(stream))
                    .await?;
                let driver: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
                    let _ = connection.await;
                });
                Ok((Sender::Http2(sender), driver))
            } else {
                http1_handshake(stream).await
            }
        };
        let (sender, driver) = tokio::time::timeout_at(deadline, handshake)
            .await
            .map_err(|_| stalled("the HTTP handshake"))?
            .map_err(|error| http_failure(&error, endpoint.tls_context()))?;
        Ok(Self::new(sender, driver, watch, opened))
    }

    fn new(
        sender: Sender,
        driver: Pin<Box<dyn Future<Output = ()> + Send>>,
        watch: Arc<Watch>,
        opened: Instant,
    ) -> Self {
        Self {
            http2: matches!(sender, Sender::Http2(_)),
            sender,
            driver,
            ended: false,
            watch,
            opened,
        }
    }

    /// Sends `GET path` and reads the response within the probe timeout; success means the
    /// expected status.
    pub(crate) async fn get(&mut self, endpoint: &Endpoint) -> Result<(), ProbeFailure> {
        let Self {
            sender,
            driver,
            ended,
            ..
        } = self;
        let request = endpoint.request(matches!(sender, Sender::Http2(_)))?;
        let exchange = async move {
            let response = match sender {
                Sender::Http1(sender) => {
                    sender.ready().await?;
                    sender.send_request(request).await?
                }
                Sender::Http2(sender) => {
                    sender.ready().await?;
                    sender.send_request(request).await?
                }
            };
            let status = response.status();
            // Read to the end, so that HTTP/1.1 can send the next request on this connection
            // (a body left unread closes it). What it says does not matter.
            let _ = Limited::new(response.into_body(), BODY_LIMIT)
                .collect()
                .await;
            Ok::<_, hyper::Error>(status)
        };
        let exchange = async {
            let mut exchange = std::pin::pin!(exchange);
            if !*ended {
                tokio::select! {
                    biased;
                    result = &mut exchange => return result,
                    () = driver.as_mut() => *ended = true,
                }
            }
            // The connection ended: a response it delivered on the way is waiting, or the
            // request was cancelled.
            exchange.await
        };
        match tokio::time::timeout(endpoint.timeout, exchange).await {
            Err(_) => Err(ProbeFailure::Stalled {
                after: endpoint.timeout,
                waiting_for: "the HTTP response",
            }),
            Ok(Err(error)) => Err(http_failure(&error, endpoint.tls_context())),
            Ok(Ok(status)) if status.as_u16() == endpoint.http.expect_status => Ok(()),
            Ok(Ok(status)) => Err(ProbeFailure::HttpStatus {
                status: status.as_u16(),
                expected: endpoint.http.expect_status,
            }),
        }
    }

    /// Waits until the connection ends and says how: "closed", "reset", "timed out" (by
    /// `TCP_USER_TIMEOUT`), or "stopped answering PINGs". Cancel-safe.
    pub(crate) async fn lost(&mut self, endpoint: &Endpoint) -> String {
        if !self.ended {
            self.driver.as_mut().await;
            self.ended = true;
        }
        self.watch
            .describe(self.http2.then_some(endpoint.ping_timeout))
    }
}

async fn http1_handshake<S>(
    stream: S,
) -> Result<(Sender, Pin<Box<dyn Future<Output = ()> + Send>>), hyper::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    let driver: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
        let _ = connection.await;
    });
    Ok((Sender::Http1(sender), driver))
}

/// No Nagle delay (a request or PING ack waiting on it would look late), and a bound on
/// unacknowledged data: twice the probe timeout, at least a second.
fn tune(stream: &TcpStream, timeout: Duration) {
    let _ = stream.set_nodelay(true);
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = socket2::SockRef::from(stream)
        .set_tcp_user_timeout(Some(timeout.saturating_mul(2).max(USER_TIMEOUT_MIN)));
}

const OPEN: u8 = 0;
const EOF: u8 = 1;
const RESET: u8 = 2;
const TIMED_OUT: u8 = 3;
const FAILED: u8 = 4;

/// What the TCP stream under TLS saw: how it ended, and when it last received anything.
struct Watch {
    started: std::time::Instant,
    last_read_ms: AtomicU64,
    end: AtomicU8,
}

impl Watch {
    fn new() -> Self {
        Self {
            started: std::time::Instant::now(),
            last_read_ms: AtomicU64::new(0),
            end: AtomicU8::new(OPEN),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn ended_with(&self, error: &io::Error) {
        let end = match error.kind() {
            io::ErrorKind::ConnectionReset => RESET,
            io::ErrorKind::TimedOut => TIMED_OUT,
            _ => FAILED,
        };
        let _ = self
            .end
            .compare_exchange(OPEN, end, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// How the connection ended. Without a FIN, a reset or an error, the client closed it: on
    /// an HTTP/2 GOAWAY, or when a PING went unanswered for `ping_timeout` (then nothing was
    /// received for at least that long).
    fn describe(&self, ping_timeout: Option<Duration>) -> String {
        match self.end.load(Ordering::Relaxed) {
            EOF => "closed".into(),
            RESET => "reset".into(),
            TIMED_OUT => "timed out".into(),
            FAILED => "failed".into(),
            _ => {
                let silent = self
                    .now_ms()
                    .saturating_sub(self.last_read_ms.load(Ordering::Relaxed));
                if ping_timeout.is_some_and(|limit| Duration::from_millis(silent) >= limit) {
                    "stopped answering PINGs".into()
                } else {
                    "closed".into()
                }
            }
        }
    }
}

/// The TCP stream, reporting to a [`Watch`].
struct Watched {
    stream: TcpStream,
    watch: Arc<Watch>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        match &polled {
            Poll::Ready(Ok(())) if buf.filled().len() == before => {
                let _ = self.watch.end.compare_exchange(
                    OPEN,
                    EOF,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
            Poll::Ready(Ok(())) => {
                let now = self.watch.now_ms();
                self.watch.last_read_ms.store(now, Ordering::Relaxed);
            }
            Poll::Ready(Err(error)) => self.watch.ended_with(error),
            Poll::Pending => {}
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if let Poll::Ready(Err(error)) = &polled {
            self.watch.ended_with(error);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_connection_says_how_it_ended() {
        let ping_timeout = Some(Duration::from_millis(500));
        let watch = Watch::new();
        assert_eq!(watch.describe(None), "closed", "the client closed it");
        watch.ended_with(&io::Error::from(io::ErrorKind::ConnectionReset));
        watch.ended_with(&io::Error::from(io::ErrorKind::TimedOut));
        assert_eq!(
            watch.describe(ping_timeout),
            "reset",
            "the first end counts"
        );

        let timed_out = Watch::new();
        timed_out.ended_with(&io::Error::from(io::ErrorKind::TimedOut));
        assert_eq!(timed_out.describe(None), "timed out");

        // Nothing received for longer than the PING timeout: the PING went unanswered.
        let silent = Watch {
            started: std::time::Instant::now() - Duration::from_secs(2),
            last_read_ms: AtomicU64::new(0),
            end: AtomicU8::new(OPEN),
        };
        assert_eq!(silent.describe(ping_timeout), "stopped answering PINGs");
        assert_eq!(silent.describe(None), "closed", "HTTP/1.1 has no PING");
    }
}
