//! The UDP listener: worker threads that receive a batch of queries with one system call,
//! answer each in place (a few microseconds of CPU, no I/O, so no task per query), and send the
//! batch of answers with one more. See `batch` for why batching matters.
//!
//! Each worker has its own socket (SO_REUSEPORT, see `bind`): the kernel spreads the clients
//! over the sockets, and workers never wait on each other's socket lock.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::answerer::Answerer;
use super::batch::{self, Received, Replies};
use super::dispatch::{Route, route};
use super::rrl::ResponseRateLimiter;
use crate::dns::Transport;

/// How often an idle worker looks at the shutdown token.
const SHUTDOWN_POLL: Duration = Duration::from_millis(100);

/// Most worker threads (and sockets) per address: beyond a few, the kernel's UDP path, not
/// answering, is the limit.
const MAX_WORKERS: usize = 4;

/// Worker threads per address: one per CPU the process may run on (its affinity mask, which
/// `taskset` and cgroup cpusets narrow), up to [`MAX_WORKERS`]. More threads than CPUs would
/// only take turns, and each turn costs a context switch and a smaller batch.
pub fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS))
}

/// Updates waiting for their worker's updater thread; more are dropped (clients retry).
const UPDATE_QUEUE: usize = 8;

/// Serves `socket` on the calling (blocking) thread until `shutdown` is cancelled. With `rrl`,
/// answers past the rate limit are dropped or sent truncated. UPDATE messages go to a thread
/// of their own (see [`Updater`]): this loop never waits for the writer.
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
    let updater = Updater::start(&socket, &answerer, rrl.clone());
    let mut received = Received::new();
    let mut replies = Replies::new();
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
            if route(query) == Route::Update {
                updater.hand_off(query, peer);
                continue;
            }
            // A batch never holds more answers than queries, so a buffer is always free.
            let Some(out) = replies.next_buffer() else {
                break;
            };
            if answerer
                .answer_query_into(query, Transport::Udp, peer, out, rrl.as_deref())
                .is_some()
            {
                replies.commit(peer);
            }
        }
        batch::send(&socket, &replies);
    }
}

/// Answers a worker's UPDATE messages on a thread of its own. An update waits for the writer,
/// which probes new members first (up to the probe timeout): on the worker, that wait would
/// stall every query the kernel steers to the worker's socket. The thread drives the wait with
/// the runtime's handle (`Handle::block_on`), which works the same on either runtime flavour:
/// it is not one of the runtime's workers, and the writer runs on the runtime.
struct Updater {
    queue: Option<SyncSender<(Vec<u8>, SocketAddr)>>,
}

impl Updater {
    fn start(
        socket: &std::net::UdpSocket,
        answerer: &Answerer,
        rrl: Option<Arc<ResponseRateLimiter>>,
    ) -> Self {
        let (queue, updates) = std::sync::mpsc::sync_channel(UPDATE_QUEUE);
        // The workers run on the runtime's blocking pool, so its handle is at hand.
        let runtime = tokio::runtime::Handle::try_current().map_err(std::io::Error::other);
        let started = runtime.and_then(|runtime| {
            let socket = socket.try_clone()?;
            let answerer = answerer.clone();
            std::thread::Builder::new()
                .name("apidns-update".to_string())
                .spawn(move || {
                    answer_updates(&runtime, &socket, &answerer, rrl.as_deref(), &updates);
                })
        });
        match started {
            Ok(_) => Self { queue: Some(queue) },
            Err(error) => {
                tracing::error!(%error, "cannot start the UDP update thread; updates over UDP are not answered");
                Self { queue: None }
            }
        }
    }

    fn hand_off(&self, query: &[u8], peer: SocketAddr) {
        let Some(queue) = &self.queue else {
            return;
        };
        if let Err(TrySendError::Full(_)) = queue.try_send((query.to_vec(), peer)) {
            debug!(%peer, "update queue full: update dropped");
        }
    }
}

/// The update thread's loop; it ends when its worker drops the queue's sender.
fn answer_updates(
    runtime: &tokio::runtime::Handle,
    socket: &std::net::UdpSocket,
    answerer: &Answerer,
    rrl: Option<&ResponseRateLimiter>,
    updates: &Receiver<(Vec<u8>, SocketAddr)>,
) {
    let mut out = Vec::with_capacity(512);
    for (query, peer) in updates {
        let answered = runtime.block_on(answerer.answer_update_into(
            &query,
            Transport::Udp,
            peer,
            &mut out,
            rrl,
        ));
        if answered.is_some()
            && let Err(error) = socket.send_to(&out, peer)
        {
            debug!(%error, %peer, "cannot send an update's answer");
        }
    }
}
