//! The TCP listener: length-prefixed messages (RFC 1035 4.2.2, RFC 7766), several per
//! connection, with a cap on connections and timeouts on idle and slow clients.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::Answerer;
use crate::dns::Transport;

#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    /// Time a connection may wait for its next query, and for the rest of a started one.
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// Serves `listener` until `shutdown` is cancelled, then lets open connections finish the
/// query they are answering.
pub async fn serve(
    listener: TcpListener,
    answerer: Answerer,
    limits: TcpLimits,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = JoinSet::new();
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
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            debug!(%peer, "tcp connection limit reached; closing");
            continue;
        };
        let answerer = answerer.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let _slot = slot;
            serve_connection(stream, peer, answerer, limits, shutdown).await;
        });
        while connections.try_join_next().is_some() {}
    }
    while connections.join_next().await.is_some() {}
}

async fn serve_connection(
    mut stream: TcpStream,
    peer: std::net::SocketAddr,
    answerer: Answerer,
    limits: TcpLimits,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let mut length = [0u8; 2];
    let mut query = Vec::new();
    loop {
        let next = tokio::select! {
            next = timeout(limits.idle_timeout, stream.read_exact(&mut length)) => next,
            () = shutdown.cancelled() => return,
        };
        if !matches!(next, Ok(Ok(_))) {
            return;
        }
        query.resize(usize::from(u16::from_be_bytes(length)), 0);
        if !matches!(
            timeout(limits.idle_timeout, stream.read_exact(&mut query)).await,
            Ok(Ok(_))
        ) {
            return;
        }
        let Some(reply) = answerer.answer(&query, Transport::Tcp, peer) else {
            // Not a query (a response, or too short for a header): the stream is not DNS.
            return;
        };
        let Ok(reply_length) = u16::try_from(reply.len()) else {
            return;
        };
        let mut framed = Vec::with_capacity(reply.len() + 2);
        framed.extend_from_slice(&reply_length.to_be_bytes());
        framed.extend_from_slice(&reply);
        if !matches!(
            timeout(limits.idle_timeout, stream.write_all(&framed)).await,
            Ok(Ok(()))
        ) {
            return;
        }
    }
}
