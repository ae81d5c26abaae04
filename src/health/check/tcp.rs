//! The TCP connect check (`kind = "tcp"`), and the connection every other check starts from.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::connect::{self, Started};
use crate::zone::ProbeFailure;

/// Connects to `target` and closes at once; success means something accepts connections there.
///
/// The connection is closed with a reset (SO_LINGER 0) rather than a FIN: a prober that opens
/// thousands of connections a second would otherwise fill its own TIME_WAIT table, as HAProxy's
/// checks learned long ago. A connect answered at once (see `check/connect.rs`) never touches
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
pub(crate) async fn connect(target: SocketAddr) -> Result<TcpStream, ProbeFailure> {
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
