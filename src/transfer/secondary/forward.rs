//! UPDATE forwarding (RFC 2136 section 6): an UPDATE for a secondary zone goes on to the zone's
//! primary unchanged, over TCP, and the primary's answer comes back to the client as it is. The
//! message keeps its ID, so the client's TSIG signature (which covers the ID) still verifies at
//! the primary, and the primary's signed answer still verifies at the client; the secondary needs
//! no key of its own for it. The primary decides; the change comes back by NOTIFY and IXFR.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the primary may take to answer a forwarded update (it may probe a new member first).
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a forwarded update got no answer from the primary.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("cannot reach the primary: {0}")]
    Unreachable(#[from] std::io::Error),
    #[error("the primary did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the primary's answer is not the answer to this update")]
    Mismatch,
}

/// Sends `update` (the whole message as the client sent it) to `primary` and returns its answer.
pub async fn forward(primary: SocketAddr, update: &[u8]) -> Result<Vec<u8>, ForwardError> {
    tokio::time::timeout(FORWARD_TIMEOUT, exchange(primary, update))
        .await
        .unwrap_or(Err(ForwardError::Timeout(FORWARD_TIMEOUT)))
}

async fn exchange(primary: SocketAddr, update: &[u8]) -> Result<Vec<u8>, ForwardError> {
    let length = u16::try_from(update.len()).map_err(|_| ForwardError::Mismatch)?;
    let mut stream = TcpStream::connect(primary).await?;
    let mut framed = Vec::with_capacity(update.len() + 2);
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(update);
    stream.write_all(&framed).await?;
    let answer_length = stream.read_u16().await?;
    let mut answer = vec![0u8; usize::from(answer_length)];
    stream.read_exact(&mut answer).await?;
    // The same ID, a response: the answer to this message, not a stray one.
    let is_response = answer.get(2).is_some_and(|flags| flags & 0x80 != 0);
    if answer.get(..2) != update.get(..2) || !is_response {
        return Err(ForwardError::Mismatch);
    }
    Ok(answer)
}

/// SERVFAIL to `update`, unsigned: what the client gets when the primary cannot be asked.
pub fn failure(update: &[u8]) -> Option<Vec<u8>> {
    let request = Message::from_vec(update).ok()?;
    let mut message = Message::new(request.id, MessageType::Response, OpCode::Update);
    message.metadata.response_code = ResponseCode::ServFail;
    message.queries = request.queries.clone();
    message.to_vec().ok()
}
