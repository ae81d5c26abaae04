//! HTTP and HTTPS probes: connect, the TLS handshake (HTTPS), one `GET`, the response head.
//!
//! A kube-apiserver accepts TCP connections while it starts, while its etcd is unreachable and
//! while it shuts down; only `/readyz` says whether it can serve. The whole exchange runs within
//! the probe timeout, and the connection is closed after the response head (with a reset, like
//! the TCP probe, so that probing never fills the prober's TIME_WAIT table).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use hyper::header::{CONNECTION, HOST, USER_AGENT};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;

use super::http_failure::{http_failure, tls_failure};
use super::tcp::connect;
use crate::config::{HttpCheck, HttpsCheck};
use crate::zone::ProbeFailure;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_brackets_ipv6() {
        assert_eq!(host_header("api.example", 6443), "api.example:6443");
        assert_eq!(host_header("2001:db8::1", 6443), "[2001:db8::1]:6443");
        assert_eq!(host_header("192.0.2.1", 443), "192.0.2.1:443");
    }
}
