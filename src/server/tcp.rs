//! The TCP listener: length-prefixed messages (RFC 1035 4.2.2, RFC 7766), several per
//! connection, with a shared cap on connections and three deadlines that bound what a slow or
//! hostile client can hold:
//!
//! - **idle**: a connection waits at most `idle_timeout` for the first byte of its next query;
//! - **read**: once that byte is in, the whole message must arrive within `io_timeout`. The
//!   deadline is fixed when the message starts, so a client that trickles one byte at a time
//!   (slowloris) cannot extend it;
//! - **write**: an answer must be written within `io_timeout`, so a client that sends queries
//!   but never reads its answers is dropped once its socket buffers are full.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::answerer::Answerer;
use super::connections::{ConnectionTable, Phase};
use super::framing::{Framer, frame};

#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    /// Time a connection may wait for the first byte of its next query.
    pub idle_timeout: Duration,
    /// Time allowed to receive one whole query once it has started, and to write one answer.
    pub io_timeout: Duration,
    /// Open connections across every listener; at the limit the longest-idle one is closed.
    pub max_connections: usize,
}

impl TcpLimits {
    /// The longest `io_timeout`: a query is a few hundred bytes and arrives in one segment, so a
    /// client that needs longer than this for one is not a DNS client worth waiting for. An
    /// idle timeout below it shortens it too.
    pub const MAX_IO_TIMEOUT: Duration = Duration::from_secs(2);

    pub fn new(idle_timeout: Duration, max_connections: usize) -> Self {
        Self {
            idle_timeout,
            io_timeout: idle_timeout.min(Self::MAX_IO_TIMEOUT),
            max_connections,
        }
    }
}

/// Bytes asked of the socket per read: a whole typical query, or a few pipelined ones.
const READ_SIZE: usize = 4096;

/// Serves `listener` until `shutdown` is cancelled, then lets open connections finish the
/// query they are answering. `connections` is shared by every listener.
pub async fn serve(
    listener: TcpListener,
    answerer: Answerer,
    limits: TcpLimits,
    connections: Arc<ConnectionTable>,
    shutdown: CancellationToken,
) {
    let mut tasks = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Usually out of file descriptors: back off instead of spinning.
                warn!(%error, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(admission) = connections.admit() else {
            debug!(%peer, "tcp connection limit reached and every connection is answering; closing");
            continue;
        };
        if admission.evicted {
            debug!(%peer, "tcp connection limit reached; closed the longest-idle connection");
        }
        let answerer = answerer.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            serve_connection(stream, peer, &answerer, limits, &admission, &shutdown).await;
            drop(admission);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    answerer: &Answerer,
    limits: TcpLimits,
    admission: &super::connections::Admission,
    shutdown: &CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let connection = &admission.connection;
    let mut framer = Framer::new();
    let mut chunk = vec![0u8; READ_SIZE];
    // When the message being received must be complete; `None` between messages.
    let mut message_deadline: Option<Instant> = None;
    loop {
        // Answer every message already received before reading more.
        loop {
            let message = match framer.next_message() {
                Ok(Some(message)) => message,
                Ok(None) => break,
                // A zero-length message: the stream is not DNS.
                Err(_) => return,
            };
            message_deadline = None;
            connection.set_phase(Phase::Writing);
            // An UPDATE awaits the writer here, on this connection's task only. A zone transfer
            // is several messages, each written within the deadline.
            let replies = answerer.answer_tcp(message, peer).await;
            if replies.is_empty() {
                // Not a query (a response, or too short for a header): the stream is not DNS.
                return;
            }
            for reply in replies {
                let Some(framed) = frame(&reply) else {
                    return;
                };
                if !matches!(
                    timeout(limits.io_timeout, stream.write_all(&framed)).await,
                    Ok(Ok(()))
                ) {
                    debug!("tcp client did not take its answer in time; closing");
                    return;
                }
            }
        }

        let read = if framer.has_partial_message() {
            connection.set_phase(Phase::Reading);
            let deadline =
                *message_deadline.get_or_insert_with(|| Instant::now() + limits.io_timeout);
            // Mid-message, shutdown waits for the message: the query on the way is answered.
            tokio::select! {
                read = timeout_at(deadline, stream.read(&mut chunk)) => read,
                () = connection.evicted().cancelled() => return,
            }
        } else {
            connection.set_phase(Phase::Idle);
            tokio::select! {
                read = timeout(limits.idle_timeout, stream.read(&mut chunk)) => read,
                () = connection.evicted().cancelled() => return,
                () = shutdown.cancelled() => return,
            }
        };
        let length = match read {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(length)) => length,
            Err(_elapsed) => {
                if framer.has_partial_message() {
                    debug!("tcp client did not finish its query in time; closing");
                }
                return;
            }
        };
        if message_deadline.is_none() {
            // The first bytes of a message start its clock.
            message_deadline = Some(Instant::now() + limits.io_timeout);
        }
        framer.extend(chunk.get(..length).unwrap_or_default());
    }
}
