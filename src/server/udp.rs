//! The UDP listener: one task per socket, answering each datagram in place. Answering is a
//! few microseconds of CPU with no I/O, so a task per query would cost more than it saves.

use std::time::Duration;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::Answerer;
use crate::dns::Transport;

/// Serves `socket` until `shutdown` is cancelled.
pub async fn serve(socket: UdpSocket, answerer: Answerer, shutdown: CancellationToken) {
    // The largest datagram IP can carry: a larger query would be cut short by the kernel.
    let mut buffer = vec![0u8; 65_535];
    loop {
        let received = tokio::select! {
            received = socket.recv_from(&mut buffer) => received,
            () = shutdown.cancelled() => return,
        };
        let (length, peer) = match received {
            Ok(received) => received,
            Err(error) => {
                // ICMP errors from earlier sends surface here on Linux; none is fatal.
                debug!(%error, "udp receive error");
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        if peer.port() == 0 {
            continue;
        }
        let Some(reply) = answerer.answer(&buffer[..length], Transport::Udp, peer) else {
            continue;
        };
        if let Err(error) = socket.send_to(&reply, peer).await {
            warn!(%peer, %error, "udp send failed");
        }
    }
}
