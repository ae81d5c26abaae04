//! The UDP listener: one task per socket, answering each datagram in place. Answering is a
//! few microseconds of CPU with no I/O, so a task per query would cost more than it saves.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::dns::{Transport, respond};
use crate::zone::Snapshot;

/// Serves `socket` until `shutdown` is cancelled.
pub async fn serve(
    socket: UdpSocket,
    snapshot: Arc<ArcSwap<Snapshot>>,
    max_udp_payload: u16,
    shutdown: CancellationToken,
) {
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
        let Some(reply) = respond(
            &snapshot.load(),
            &buffer[..length],
            Transport::Udp,
            max_udp_payload,
        ) else {
            continue;
        };
        if let Err(error) = socket.send_to(&reply, peer).await {
            warn!(%peer, %error, "udp send failed");
        }
    }
}
