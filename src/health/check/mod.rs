//! One probe of one member: the entry point that probers and `apidns probe` call, the TCP
//! connect probe, and the reasons a probe fails.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use hickory_proto::rr::Name;
use tokio::net::TcpStream;
use tracing::warn;

use super::connect::{self, Started};
use super::http_probe;
use crate::config::{ProbeKind, ProbeSettings};

/// Why a probe failed, in words an operator recognises. The text is what transition logs show
/// as `reason=` and what `apidns probe` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeFailure {
    /// The host answered with a reset: nothing listens on the port.
    Refused,
    /// No connection within the timeout: a dead or unreachable host, or a firewall dropping
    /// packets.
    Timeout(Duration),
    /// Connected, but the probe did not finish within the timeout: an API server that accepts
    /// connections and then hangs (overloaded, or stopping).
    Stalled {
        after: Duration,
        /// What the probe was waiting for, e.g. "the HTTP response".
        waiting_for: &'static str,
    },
    /// The certificate chain does not lead to a trusted CA, or is not valid now.
    UntrustedCertificate(String),
    /// The certificate is valid but does not carry the name the probe asked for.
    NameMismatch {
        server_name: String,
        /// The names the certificate does carry, when known.
        presented: Vec<String>,
    },
    /// Any other TLS failure: the server refused the handshake, or does not speak TLS.
    Tls(String),
    /// The server answered with another status than the one expected.
    HttpStatus { status: u16, expected: u16 },
    /// The answer was not an HTTP response, or the connection closed before it.
    Http(String),
    /// Any other error, e.g. "network unreachable".
    Error(String),
    /// Held TCP probes: the held connection ended (`lost`: "closed" for a FIN, "reset" for an
    /// RST, "timed out" when keepalive or TCP_USER_TIMEOUT gave up) and the reconnect made at
    /// once failed. Two independent signals, so the member goes down at once.
    HeldLost {
        lost: String,
        reconnect: Box<ProbeFailure>,
    },
}

impl fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeFailure::Refused => write!(f, "connection refused"),
            ProbeFailure::Timeout(after) => write!(f, "timeout after {}ms", after.as_millis()),
            ProbeFailure::Stalled { after, waiting_for } => {
                write!(
                    f,
                    "timeout after {}ms waiting for {waiting_for}",
                    after.as_millis()
                )
            }
            ProbeFailure::UntrustedCertificate(detail) => {
                write!(f, "certificate not trusted: {detail}")
            }
            ProbeFailure::NameMismatch {
                server_name,
                presented,
            } => {
                write!(f, "certificate does not match server name {server_name}")?;
                if presented.is_empty() {
                    Ok(())
                } else {
                    write!(f, " (it is valid for {})", presented.join(", "))
                }
            }
            ProbeFailure::Tls(detail) => write!(f, "TLS handshake failed: {detail}"),
            ProbeFailure::HttpStatus { status, expected } => {
                write!(f, "HTTP status {status} (expected {expected})")
            }
            ProbeFailure::Http(detail) => write!(f, "{detail}"),
            ProbeFailure::Error(message) => write!(f, "{message}"),
            ProbeFailure::HeldLost { lost, reconnect } => {
                write!(f, "held connection {lost}, reconnect ")?;
                match reconnect.as_ref() {
                    ProbeFailure::Refused => write!(f, "refused"),
                    ProbeFailure::Timeout(after) => {
                        write!(f, "timeout after {}ms", after.as_millis())
                    }
                    other => write!(f, "failed: {other}"),
                }
            }
        }
    }
}

/// Probes `target` once as `settings` say, within `settings.timeout`: the one function that
/// probers and `apidns probe` call. Success carries the time the probe took.
pub async fn check(settings: &ProbeSettings, target: SocketAddr) -> Result<Duration, ProbeFailure> {
    match &settings.kind {
        ProbeKind::Tcp => tcp_connect(target, settings.timeout).await,
        // Boxed: the HTTP client's state is large, and inline it would size every prober task
        // (ten thousand of them for a large pool set) for the biggest probe kind.
        ProbeKind::Http(http) => {
            Box::pin(http_probe::check(target, settings.timeout, http, None)).await
        }
        ProbeKind::Https(https) => {
            Box::pin(http_probe::check(
                target,
                settings.timeout,
                &https.http,
                Some(https),
            ))
            .await
        }
    }
}

/// What a successful probe says in a transition log: `connected in 0.3ms`, `HTTP 200 in 2.1ms`.
pub fn success_reason(settings: &ProbeSettings, latency: Duration) -> String {
    let milliseconds = latency.as_secs_f64() * 1000.0;
    match settings.kind.http() {
        None => format!("connected in {milliseconds:.1}ms"),
        Some(http) => format!("HTTP {} in {milliseconds:.1}ms", http.expect_status),
    }
}

/// Warns, once per pool for the life of the process, that the pool's HTTPS probes accept any
/// certificate. Every prober of the pool calls this when it starts.
pub fn warn_if_insecure(pool: &Name, settings: &ProbeSettings) {
    static WARNED: Mutex<Vec<Name>> = Mutex::new(Vec::new());
    if !settings
        .kind
        .https()
        .is_some_and(|https| https.tls.skips_verification())
    {
        return;
    }
    let mut warned = WARNED.lock().unwrap_or_else(PoisonError::into_inner);
    if warned.contains(pool) {
        return;
    }
    warned.push(pool.clone());
    warn!(
        pool = %pool,
        "insecure_skip_verify is on: HTTPS probes accept any certificate for any name, so they cannot tell this pool's API servers from anything else that speaks TLS on the port"
    );
}

/// Connects to `target` and closes at once; success means something accepts connections there.
///
/// The connection is closed with a reset (SO_LINGER 0) rather than a FIN: a prober that opens
/// thousands of connections a second would otherwise fill its own TIME_WAIT table, as HAProxy's
/// checks learned long ago. A connect answered at once (see [`super::connect`]) never touches
/// the reactor or the timer wheel.
pub async fn tcp_connect(target: SocketAddr, timeout: Duration) -> Result<Duration, ProbeFailure> {
    let started = Instant::now();
    let socket = match connect::start(target).map_err(connect_failure)? {
        Started::Connected(socket) => socket,
        Started::InProgress(socket) => {
            let stream = finish_within(socket, timeout).await?;
            let latency = started.elapsed();
            close_with_reset(&stream);
            return Ok(latency);
        }
    };
    let latency = started.elapsed();
    close_with_reset(&socket);
    Ok(latency)
}

/// A TCP connection to `target` that closes with a reset when dropped (see [`tcp_connect`]).
/// The caller bounds the wait with its timeout.
pub(super) async fn connect(target: SocketAddr) -> Result<TcpStream, ProbeFailure> {
    let stream = match connect::start(target).map_err(connect_failure)? {
        Started::Connected(socket) => TcpStream::from_std(socket.into()),
        Started::InProgress(socket) => connect::finish(socket).await,
    }
    .map_err(connect_failure)?;
    close_with_reset(&stream);
    Ok(stream)
}

async fn finish_within(
    socket: socket2::Socket,
    timeout: Duration,
) -> Result<TcpStream, ProbeFailure> {
    match tokio::time::timeout(timeout, connect::finish(socket)).await {
        Ok(result) => result.map_err(connect_failure),
        Err(_) => Err(ProbeFailure::Timeout(timeout)),
    }
}

/// Makes the socket close with a reset when dropped. Only an established connection needs it: a
/// refused socket has no connection to end.
fn close_with_reset<'a>(socket: impl Into<socket2::SockRef<'a>>) {
    let _ = socket.into().set_linger(Some(Duration::ZERO));
}

fn connect_failure(error: io::Error) -> ProbeFailure {
    if error.kind() == io::ErrorKind::ConnectionRefused {
        ProbeFailure::Refused
    } else {
        ProbeFailure::Error(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_sentences() {
        let cases = [
            (ProbeFailure::Refused, "connection refused"),
            (
                ProbeFailure::Timeout(Duration::from_millis(500)),
                "timeout after 500ms",
            ),
            (
                ProbeFailure::Stalled {
                    after: Duration::from_millis(200),
                    waiting_for: "the HTTP response",
                },
                "timeout after 200ms waiting for the HTTP response",
            ),
            (
                ProbeFailure::HttpStatus {
                    status: 500,
                    expected: 200,
                },
                "HTTP status 500 (expected 200)",
            ),
            (
                ProbeFailure::NameMismatch {
                    server_name: "api.k8s.example.com".into(),
                    presented: vec!["other.example.com".into(), "10.0.0.1".into()],
                },
                "certificate does not match server name api.k8s.example.com (it is valid for other.example.com, 10.0.0.1)",
            ),
            (
                ProbeFailure::HeldLost {
                    lost: "closed".into(),
                    reconnect: Box::new(ProbeFailure::Refused),
                },
                "held connection closed, reconnect refused",
            ),
            (
                ProbeFailure::HeldLost {
                    lost: "reset".into(),
                    reconnect: Box::new(ProbeFailure::Timeout(Duration::from_millis(500))),
                },
                "held connection reset, reconnect timeout after 500ms",
            ),
            (
                ProbeFailure::UntrustedCertificate("unknown issuer".into()),
                "certificate not trusted: unknown issuer",
            ),
        ];
        for (failure, text) in cases {
            assert_eq!(failure.to_string(), text);
        }
    }

    #[test]
    fn success_reason_names_the_kind() {
        let tcp = ProbeSettings::default();
        assert_eq!(
            success_reason(&tcp, Duration::from_micros(300)),
            "connected in 0.3ms"
        );
        let http = ProbeSettings {
            kind: ProbeKind::Http(crate::config::HttpCheck::default()),
            ..ProbeSettings::default()
        };
        assert_eq!(
            success_reason(&http, Duration::from_micros(2100)),
            "HTTP 200 in 2.1ms"
        );
    }
}
