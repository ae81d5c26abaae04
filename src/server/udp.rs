//! The UDP listener: worker threads that receive a batch of queries with one system call,
//! answer each in place (a few microseconds of CPU, no I/O, so no task per query), and send the
//! batch of answers with one more. See `batch` for why batching matters.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::Answerer;
use super::batch::{self, Received};
use super::rrl::{ResponseRateLimiter, Verdict};
use crate::dns::{Transport, truncated};

/// How often an idle worker looks at the shutdown token.
const SHUTDOWN_POLL: Duration = Duration::from_millis(100);

/// Worker threads per UDP socket: one per CPU the process may run on, up to four (beyond that
/// the socket's own lock is the limit; SO_REUSEPORT sockets would be the next step).
pub fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// Serves `socket` on the calling (blocking) thread until `shutdown` is cancelled. With `rrl`,
/// answers past the rate limit are dropped or sent truncated.
pub fn serve(
    socket: std::net::UdpSocket,
    answerer: Answerer,
    rrl: Option<Arc<ResponseRateLimiter>>,
    shutdown: CancellationToken,
) {
    if let Err(error) = socket
        .set_nonblocking(false)
        .and_then(|()| socket.set_read_timeout(Some(SHUTDOWN_POLL)))
    {
        tracing::error!(%error, "cannot set up the UDP socket; UDP is not served on it");
        return;
    }
    let mut received = Received::new();
    let mut replies: Vec<(Vec<u8>, SocketAddr)> = Vec::with_capacity(batch::BATCH);
    while !shutdown.is_cancelled() {
        if let Err(error) = batch::receive(&socket, &mut received) {
            if !matches!(
                error.kind(),
                std::io::ErrorKind::WouldBlock
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::Interrupted
            ) {
                // ICMP errors from earlier sends surface here on Linux; none is fatal.
                debug!(%error, "udp receive error");
                std::thread::sleep(Duration::from_millis(1));
            }
            continue;
        }
        replies.clear();
        for (query, peer) in received.datagrams() {
            if let Some(bytes) = answer_one(&answerer, rrl.as_deref(), query, peer) {
                replies.push((bytes, peer));
            }
        }
        batch::send(&socket, &replies);
    }
}

/// The bytes to send back for one datagram, after rate limiting; `None` sends nothing.
fn answer_one(
    answerer: &Answerer,
    rrl: Option<&ResponseRateLimiter>,
    query: &[u8],
    peer: SocketAddr,
) -> Option<Vec<u8>> {
    let reply = answerer.answer_reply(query, Transport::Udp, peer)?;
    match rrl.map(|rrl| rrl.check(peer.ip(), query, &reply)) {
        None | Some(Verdict::Send) => Some(reply.bytes),
        Some(Verdict::Slip) => truncated(&reply.bytes),
        Some(Verdict::Drop) => None,
    }
}
