//! The connection a held TCP probe holds: connected within the probe timeout, tuned for
//! keepalive, and watched until it ends.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::tcp::connect;
use crate::health::keepalive;
use crate::zone::ProbeFailure;

/// Connects within `timeout` and tunes the socket for holding (see [`keepalive::tune`]).
pub(crate) async fn connect_held(
    target: SocketAddr,
    timeout: Duration,
) -> Result<(TcpStream, Duration), ProbeFailure> {
    let started = Instant::now();
    let stream = match tokio::time::timeout(timeout, connect(target)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(failure)) => return Err(failure),
        Err(_) => return Err(ProbeFailure::Timeout(timeout)),
    };
    let latency = started.elapsed();
    keepalive::tune(&stream);
    Ok((stream, latency))
}

/// Waits until the held connection ends and says how: "closed" (FIN), "reset" (RST), "timed
/// out" (keepalive or TCP_USER_TIMEOUT). Data the server sends is read and ignored. Without a
/// held connection it waits for ever.
pub(crate) async fn held_lost(stream: Option<&TcpStream>) -> String {
    let Some(stream) = stream else {
        return std::future::pending().await;
    };
    let mut buffer = [0u8; 512];
    loop {
        if let Err(error) = stream.readable().await {
            return describe(&error);
        }
        match stream.try_read(&mut buffer) {
            Ok(0) => return "closed".to_string(),
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(error) => return describe(&error),
        }
    }
}

fn describe(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionReset => "reset".to_string(),
        io::ErrorKind::TimedOut => "timed out".to_string(),
        _ => format!("failed ({error})"),
    }
}
