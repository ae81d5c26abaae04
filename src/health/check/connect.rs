//! The TCP connect behind every TCP probe and every probe connection, made cheap for answers that
//! come back at once.
//!
//! A non-blocking `connect()` to a nearby host often has its answer before the call returns: on
//! loopback the kernel handles the SYN and the reset (or the SYN-ACK) within the same system
//! call, and the socket only learns of it when the call releases it. Asking the socket once more
//! (a second `connect()`: refused, connected, or still in progress) settles those cases without
//! tokio's reactor, whose registration costs two `epoll_ctl` calls, a wake-up and a timer per
//! probe: about a third of the CPU of probing ten thousand refused members a second. Only a
//! connect still in progress is handed to the reactor.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::TcpStream;

/// A connect that did not fail at once.
pub(super) enum Started {
    /// Connected already: nothing to wait for.
    Connected(Socket),
    /// Still in progress: [`finish`] waits for it.
    InProgress(Socket),
}

/// Opens a non-blocking TCP socket and starts connecting it to `target`. An error is the connect's
/// own answer (refused, unreachable), or the system's refusal to open a socket.
pub(super) fn start(target: SocketAddr) -> io::Result<Started> {
    let socket = Socket::new(
        Domain::for_address(target),
        non_blocking_stream(),
        Some(Protocol::TCP),
    )?;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    socket.set_nonblocking(true)?;
    let address = SockAddr::from(target);
    match socket.connect(&address) {
        Ok(()) => return Ok(Started::Connected(socket)),
        Err(error) if is_in_progress(&error) => {}
        Err(error) => return Err(error),
    }
    settle_at_once(socket, &address)
}

/// Asks a socket whose connect is in progress whether it has its answer already. On Linux a
/// second `connect()` reports the state without starting anything: success or EISCONN when
/// established, EALREADY while the SYN is out, and the pending error (refused) when the attempt
/// has ended, consuming it as SO_ERROR would. Elsewhere the reactor finds out.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn settle_at_once(socket: Socket, address: &SockAddr) -> io::Result<Started> {
    match socket.connect(address) {
        Ok(()) => Ok(Started::Connected(socket)),
        Err(error) if error.raw_os_error() == Some(libc::EISCONN) => Ok(Started::Connected(socket)),
        Err(error) if is_in_progress(&error) => Ok(Started::InProgress(socket)),
        Err(error) => Err(error),
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn settle_at_once(socket: Socket, _address: &SockAddr) -> io::Result<Started> {
    Ok(Started::InProgress(socket))
}

/// Waits for a connect in progress to end; the caller bounds the wait with its timeout.
pub(super) async fn finish(socket: Socket) -> io::Result<TcpStream> {
    let stream = TcpStream::from_std(socket.into())?;
    stream.writable().await?;
    match stream.take_error()? {
        Some(error) => Err(error),
        None => Ok(stream),
    }
}

fn is_in_progress(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EINPROGRESS | libc::EALREADY)
    )
}

/// A stream socket created non-blocking, saving the `fcntl` calls where the system allows.
fn non_blocking_stream() -> Type {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    return Type::STREAM.nonblocking();
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    return Type::STREAM;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port on loopback that nothing listens on: bound and then closed.
    fn closed_port() -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    }

    /// Loopback handles the SYN and its answer within the connect() call, so nearly every
    /// attempt settles at once (a machine swamped with softirq work may defer a few); the ones
    /// that do not must still end the same way through the reactor.
    const ATTEMPTS: usize = 20;

    #[tokio::test]
    async fn refused_loopback_connects_fail_at_once() {
        let target = closed_port();
        let mut at_once = 0;
        for _ in 0..ATTEMPTS {
            let error = match start(target) {
                Err(error) => {
                    at_once += 1;
                    error
                }
                Ok(Started::Connected(_)) => panic!("connected to a closed port"),
                Ok(Started::InProgress(socket)) => finish(socket).await.unwrap_err(),
            };
            assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
        }
        #[cfg(target_os = "linux")]
        assert!(
            at_once > ATTEMPTS / 2,
            "{at_once} of {ATTEMPTS} settled at once"
        );
    }

    #[tokio::test]
    async fn loopback_listeners_are_connected_at_once_and_the_socket_is_usable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target = listener.local_addr().unwrap();
        let mut at_once = 0;
        for _ in 0..ATTEMPTS {
            let stream = match start(target).unwrap() {
                Started::Connected(socket) => {
                    at_once += 1;
                    TcpStream::from_std(socket.into()).unwrap()
                }
                Started::InProgress(socket) => finish(socket).await.unwrap(),
            };
            let (accepted, peer) = listener.accept().unwrap();
            assert_eq!(peer, stream.local_addr().unwrap());
            assert_eq!(stream.peer_addr().unwrap(), target);
            drop(accepted);
        }
        #[cfg(target_os = "linux")]
        assert!(
            at_once > ATTEMPTS / 2,
            "{at_once} of {ATTEMPTS} settled at once"
        );
    }

    #[tokio::test]
    async fn ipv6_loopback_works_too() {
        let Ok(listener) = std::net::TcpListener::bind("[::1]:0") else {
            return; // no IPv6 on this host
        };
        let target = listener.local_addr().unwrap();
        let connected = match start(target).unwrap() {
            Started::Connected(_) => true,
            Started::InProgress(socket) => finish(socket).await.is_ok(),
        };
        assert!(connected);
    }
}
