//! HTTP and HTTPS probes: connect, the TLS handshake (HTTPS), one `GET`, the response head.
//!
//! A kube-apiserver accepts TCP connections while it starts, while its etcd is unreachable and
//! while it shuts down; only `/readyz` says whether it can serve. The whole exchange runs within
//! the probe timeout, and the connection is closed after the response head (with a reset, like
//! the TCP probe, so that probing never fills the prober's TIME_WAIT table).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use hyper::header::{CONNECTION, HOST, USER_AGENT};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::{AlertDescription, CertificateError};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;

use super::probe::{ProbeFailure, connect};
use crate::config::{HttpCheck, HttpsCheck, Trust};

/// How far a probe got, so that a timeout can say what it was waiting for.
const CONNECTING: u8 = 0;
const HANDSHAKING: u8 = 1;
const AWAITING_RESPONSE: u8 = 2;

pub(super) const USER_AGENT_VALUE: &str = concat!("apidns/", env!("CARGO_PKG_VERSION"));

/// One HTTP probe (HTTPS when `https` is set) of `target`, within `timeout`.
pub(super) async fn check(
    target: SocketAddr,
    timeout: Duration,
    http: &HttpCheck,
    https: Option<&HttpsCheck>,
) -> Result<Duration, ProbeFailure> {
    let started = Instant::now();
    let stage = AtomicU8::new(CONNECTING);
    match tokio::time::timeout(timeout, exchange(target, http, https, &stage)).await {
        Ok(Ok(status)) if status.as_u16() == http.expect_status => Ok(started.elapsed()),
        Ok(Ok(status)) => Err(ProbeFailure::HttpStatus {
            status: status.as_u16(),
            expected: http.expect_status,
        }),
        Ok(Err(failure)) => Err(failure),
        Err(_) => Err(match stage.load(Ordering::Relaxed) {
            CONNECTING => ProbeFailure::Timeout(timeout),
            HANDSHAKING => ProbeFailure::Stalled {
                after: timeout,
                waiting_for: "the TLS handshake",
            },
            _ => ProbeFailure::Stalled {
                after: timeout,
                waiting_for: "the HTTP response",
            },
        }),
    }
}

async fn exchange(
    target: SocketAddr,
    http: &HttpCheck,
    https: Option<&HttpsCheck>,
    stage: &AtomicU8,
) -> Result<StatusCode, ProbeFailure> {
    let stream = connect(target).await?;
    let Some(https) = https else {
        stage.store(AWAITING_RESPONSE, Ordering::Relaxed);
        return request(stream, http, target.to_string(), None).await;
    };

    stage.store(HANDSHAKING, Ordering::Relaxed);
    // Every pool's settings carry a server name; only the `[probe]` defaults may lack one, and
    // those are never probed. The member's address is the only sensible stand-in.
    let name = https
        .server_name
        .clone()
        .unwrap_or_else(|| target.ip().to_string());
    let server_name = ServerName::try_from(name.clone())
        .map_err(|_| ProbeFailure::Error(format!("{name} is not a TLS server name")))?;
    let connector = TlsConnector::from(https.tls.client_config());
    let stream = connector
        .connect(server_name, stream)
        .await
        .map_err(|error| tls_failure(&error, &name, https))?;

    stage.store(AWAITING_RESPONSE, Ordering::Relaxed);
    let host = host_header(&name, target.port());
    request(stream, http, host, Some((&name, https))).await
}

/// Sends `GET path` and returns the status of the response head. The body is never read: the
/// connection is dropped as soon as the status is known.
async fn request<S>(
    stream: S,
    http: &HttpCheck,
    host: String,
    tls: Option<(&str, &HttpsCheck)>,
) -> Result<StatusCode, ProbeFailure>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let failure = |error: hyper::Error| http_failure(&error, tls);
    let request = Request::get(http.path.as_str())
        .header(HOST, host)
        .header(USER_AGENT, USER_AGENT_VALUE)
        .header(CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|error| ProbeFailure::Error(format!("cannot build the request: {error}")))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(failure)?;
    // The connection future does the I/O; it is polled here, beside the request, rather than
    // spawned, so that nothing outlives the probe.
    let mut connection = Box::pin(connection);
    let mut response = std::pin::pin!(sender.send_request(request));
    let ended = tokio::select! {
        biased;
        response = &mut response => {
            return response.map(|response| response.status()).map_err(failure);
        }
        ended = &mut connection => ended,
    };
    // A short answer with `Connection: close` ends the connection in the same poll that
    // delivers the response, which is then waiting. Dropping the connection settles the
    // request either way: delivered, or cancelled because no response came.
    drop(connection);
    match (response.await, ended) {
        (Ok(response), _) => Ok(response.status()),
        (Err(_), Err(error)) => Err(failure(error)),
        (Err(error), Ok(())) => Err(failure(error)),
    }
}

/// `name:port`, with brackets around an IPv6 address.
pub(super) fn host_header(name: &str, port: u16) -> String {
    match name.parse::<IpAddr>() {
        Ok(IpAddr::V6(address)) => format!("[{address}]:{port}"),
        _ => format!("{name}:{port}"),
    }
}

pub(super) fn http_failure(error: &hyper::Error, tls: Option<(&str, &HttpsCheck)>) -> ProbeFailure {
    // A TLS 1.3 server reports a rejected client certificate after the client has finished
    // its handshake, so TLS alerts can surface here, as an I/O error inside hyper's error.
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(inner) = source {
        if let Some(io_error) = inner.downcast_ref::<io::Error>() {
            if let Some((name, https)) = tls
                && rustls_error(io_error).is_some()
            {
                return tls_failure(io_error, name, https);
            }
            return match io_error.kind() {
                io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof => {
                    ProbeFailure::Http("connection closed before the HTTP response".into())
                }
                _ => ProbeFailure::Http(format!("HTTP request failed: {io_error}")),
            };
        }
        source = inner.source();
    }
    if error.is_incomplete_message() || error.is_closed() || error.is_canceled() {
        ProbeFailure::Http("connection closed before the HTTP response".into())
    } else if error.is_parse() {
        ProbeFailure::Http(format!("not an HTTP response: {error}"))
    } else {
        ProbeFailure::Http(format!("HTTP request failed: {error}"))
    }
}

fn rustls_error(error: &io::Error) -> Option<&rustls::Error> {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

pub(super) fn tls_failure(
    error: &io::Error,
    server_name: &str,
    https: &HttpsCheck,
) -> ProbeFailure {
    let Some(tls_error) = rustls_error(error) else {
        return match error.kind() {
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted => ProbeFailure::Tls(
                "the server closed the connection during the handshake (does the port serve TLS?)"
                    .into(),
            ),
            _ => ProbeFailure::Tls(error.to_string()),
        };
    };
    match tls_error {
        rustls::Error::InvalidCertificate(certificate) => {
            certificate_failure(certificate, server_name, https.tls.trust())
        }
        rustls::Error::AlertReceived(AlertDescription::CertificateRequired) => ProbeFailure::Tls(
            "the server requires a client certificate (set client_cert and client_key)".into(),
        ),
        rustls::Error::AlertReceived(alert) if https.tls.identity().is_some() => ProbeFailure::Tls(
            format!("the server sent the alert {alert:?} (does it accept client_cert?)"),
        ),
        rustls::Error::AlertReceived(alert) => {
            ProbeFailure::Tls(format!("the server sent the alert {alert:?}"))
        }
        rustls::Error::InvalidMessage(_) => {
            ProbeFailure::Tls(format!("{tls_error} (does the port serve TLS?)"))
        }
        other => ProbeFailure::Tls(other.to_string()),
    }
}

fn certificate_failure(error: &CertificateError, server_name: &str, trust: &Trust) -> ProbeFailure {
    let untrusted = |detail: &str| ProbeFailure::UntrustedCertificate(detail.to_string());
    match error {
        CertificateError::NotValidForName => ProbeFailure::NameMismatch {
            server_name: server_name.to_string(),
            presented: Vec::new(),
        },
        CertificateError::NotValidForNameContext { presented, .. } => ProbeFailure::NameMismatch {
            server_name: server_name.to_string(),
            presented: presented.iter().map(|name| presented_name(name)).collect(),
        },
        CertificateError::UnknownIssuer => match trust {
            Trust::CaFile(path) => {
                untrusted(&format!("it is not signed by the CA in {}", path.display()))
            }
            Trust::System => untrusted("it is not signed by a CA in the system trust store"),
            Trust::Insecure => untrusted("unknown issuer"),
        },
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => untrusted("expired"),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            untrusted("not valid yet")
        }
        CertificateError::Revoked => untrusted("revoked"),
        CertificateError::BadSignature => untrusted("bad signature"),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            untrusted("not issued for TLS servers (extended key usage)")
        }
        other => untrusted(&other.to_string()),
    }
}

/// webpki describes the names a certificate carries as `DnsName("a.example")` and
/// `IpAddress(192.0.2.1)`; operators want the names.
fn presented_name(text: &str) -> String {
    text.strip_prefix("DnsName(\"")
        .and_then(|rest| rest.strip_suffix("\")"))
        .or_else(|| {
            text.strip_prefix("IpAddress(")
                .and_then(|rest| rest.strip_suffix(')'))
        })
        .unwrap_or(text)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presented_names_lose_their_wrapping() {
        assert_eq!(presented_name("DnsName(\"a.example\")"), "a.example");
        assert_eq!(presented_name("IpAddress(192.0.2.1)"), "192.0.2.1");
        assert_eq!(presented_name("DirectoryName"), "DirectoryName");
    }

    #[test]
    fn host_header_brackets_ipv6() {
        assert_eq!(host_header("api.example", 6443), "api.example:6443");
        assert_eq!(host_header("2001:db8::1", 6443), "[2001:db8::1]:6443");
        assert_eq!(host_header("192.0.2.1", 443), "192.0.2.1:443");
    }
}
