//! The network side of a fetch: a transfer over TCP (each message behind its two-byte length,
//! RFC 1035 section 4.2.2) fed message by message to a [`Reception`], and the SOA query over
//! UDP, or TCP when the answer is truncated. The caller bounds the whole of it with a timeout.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::error::FetchError;
use super::stream::{Progress, Reception};
use crate::dns::tsig;

/// How long to wait for a UDP answer before sending the query again: a primary on the same
/// network answers in milliseconds, and a datagram can be lost.
const UDP_RESEND: Duration = Duration::from_secs(1);

/// Sends `request` to `primary` over TCP and feeds each message of the answer to `reception`
/// until it is complete. A connection that ends before that is `Incomplete`.
pub async fn transfer(
    primary: SocketAddr,
    request: &[u8],
    reception: &mut Reception,
) -> Result<(), FetchError> {
    let mut stream = connect(primary, request).await?;
    loop {
        let message = read_message(&mut stream)
            .await
            .map_err(|_| FetchError::Incomplete)?
            .ok_or(FetchError::Incomplete)?;
        if reception.receive(&message, tsig::now())? == Progress::Done {
            return Ok(());
        }
    }
}

/// Sends `request` to `primary` over TCP and reads one message of the answer.
pub async fn query_tcp(primary: SocketAddr, request: &[u8]) -> Result<Vec<u8>, FetchError> {
    let mut stream = connect(primary, request).await?;
    read_message(&mut stream)
        .await
        .map_err(|_| FetchError::Incomplete)?
        .ok_or(FetchError::Incomplete)
}

/// Sends `request` (ID `id`) to `primary` over UDP, again every [`UDP_RESEND`], until a
/// datagram with that ID comes back from it.
pub async fn query_udp(
    primary: SocketAddr,
    request: &[u8],
    id: u16,
) -> Result<Vec<u8>, FetchError> {
    let local: SocketAddr = if primary.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(FetchError::Unreachable)?;
    // Connected: the kernel drops datagrams from anyone but the primary.
    socket
        .connect(primary)
        .await
        .map_err(FetchError::Unreachable)?;
    let mut buffer = vec![0u8; usize::from(u16::MAX)];
    loop {
        socket
            .send(request)
            .await
            .map_err(FetchError::Unreachable)?;
        let deadline = tokio::time::Instant::now() + UDP_RESEND;
        while let Ok(received) = tokio::time::timeout_at(deadline, socket.recv(&mut buffer)).await {
            // An ICMP refusal of an earlier datagram shows here; the primary may be starting.
            let Ok(length) = received else { continue };
            let Some(answer) = buffer.get(..length) else {
                continue;
            };
            if answer.get(..2) == Some(&id.to_be_bytes()[..]) {
                return Ok(answer.to_vec());
            }
        }
    }
}

async fn connect(primary: SocketAddr, request: &[u8]) -> Result<TcpStream, FetchError> {
    let mut stream = TcpStream::connect(primary)
        .await
        .map_err(FetchError::Unreachable)?;
    let length = u16::try_from(request.len()).map_err(|_| {
        FetchError::Malformed("the request is longer than a TCP message".to_string())
    })?;
    let mut framed = Vec::with_capacity(2 + request.len());
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(request);
    stream
        .write_all(&framed)
        .await
        .map_err(FetchError::Unreachable)?;
    Ok(stream)
}

/// The next message on `stream`; `None` when the primary closed it between messages.
async fn read_message(stream: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let mut length = [0u8; 2];
    match stream.read_exact(&mut length).await {
        Ok(_) => {}
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error),
    }
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut message).await?;
    Ok(Some(message))
}
