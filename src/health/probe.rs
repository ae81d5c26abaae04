//! The TCP connect probe.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

/// Why a probe failed, in words an operator recognises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeFailure {
    /// The host answered with a reset: nothing listens on the port.
    Refused,
    /// No answer within the timeout: a dead or unreachable host, or a firewall dropping packets.
    Timeout(Duration),
    /// Any other error, e.g. "network unreachable".
    Error(String),
}

impl fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeFailure::Refused => write!(f, "connection refused"),
            ProbeFailure::Timeout(after) => write!(f, "timeout after {}ms", after.as_millis()),
            ProbeFailure::Error(message) => write!(f, "{message}"),
        }
    }
}

/// Connects to `target` and closes at once; success means something accepts connections there.
///
/// The connection is closed with a reset (SO_LINGER 0) rather than a FIN: a prober that opens
/// thousands of connections a second would otherwise fill its own TIME_WAIT table, as HAProxy's
/// checks learned long ago.
pub async fn tcp_connect(target: SocketAddr, timeout: Duration) -> Result<Duration, ProbeFailure> {
    let started = Instant::now();
    match tokio::time::timeout(timeout, TcpStream::connect(target)).await {
        Ok(Ok(stream)) => {
            let latency = started.elapsed();
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
            drop(stream);
            Ok(latency)
        }
        Ok(Err(error)) if error.kind() == io::ErrorKind::ConnectionRefused => {
            Err(ProbeFailure::Refused)
        }
        Ok(Err(error)) => Err(ProbeFailure::Error(error.to_string())),
        Err(_) => Err(ProbeFailure::Timeout(timeout)),
    }
}
