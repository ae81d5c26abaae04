//! Binding the DNS sockets: UDP and TCP on the same address and port, with one UDP socket per
//! worker thread.
//!
//! The worker sockets share the address through SO_REUSEPORT, and the kernel spreads clients
//! over them by a hash of the client's address and port. SO_REUSEPORT would also let another
//! program (running as the same user, with the option set) join the group and silently take a
//! share of the queries, so the address is claimed first: one UDP socket *without* the option
//! is bound, which fails if any socket holds the port, then the TCP listener (which a second
//! apidns would also need, and cannot get while this one listens), and only then is the claim
//! closed and the worker sockets bound. The claim is closed for a few microseconds, and a
//! second apidns that slipped into that gap would still fail on TCP.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

/// UDP sockets (one per worker) and a TCP listener sharing one address.
pub struct BoundAddress {
    pub udp: Vec<std::net::UdpSocket>,
    pub tcp: TcpListener,
    pub address: SocketAddr,
}

/// Attempts to find a port free for both UDP and TCP when the configuration asks for port 0.
const EPHEMERAL_ATTEMPTS: usize = 32;

/// Binds `udp_sockets` UDP sockets (at least one) and a TCP listener on `address`. Port 0
/// picks one free port for both transports, so that a client retrying over TCP after a
/// truncated answer finds the same server. Fails if anything else holds the UDP or TCP port.
pub fn bind(address: SocketAddr, udp_sockets: usize) -> io::Result<BoundAddress> {
    let mut last_error = None;
    for _ in 0..EPHEMERAL_ATTEMPTS {
        match bind_once(address, udp_sockets) {
            Err(error) if address.port() == 0 && error.kind() == io::ErrorKind::AddrInUse => {
                last_error = Some(error);
            }
            result => return result,
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no port free for both UDP and TCP")))
}

fn bind_once(address: SocketAddr, udp_sockets: usize) -> io::Result<BoundAddress> {
    let claim = bind_udp(address, false).map_err(|error| context("udp", error))?;
    let chosen = claim.local_addr()?;
    let tcp = bind_tcp(chosen).map_err(|error| context("tcp", error))?;
    let udp = if udp_sockets <= 1 {
        vec![claim]
    } else {
        drop(claim);
        (0..udp_sockets)
            .map(|_| bind_udp(chosen, true).map_err(|error| context("udp", error)))
            .collect::<io::Result<Vec<_>>>()?
    };
    Ok(BoundAddress {
        udp,
        tcp,
        address: chosen,
    })
}

/// `error` with the transport it happened on, keeping its kind (callers retry on AddrInUse).
fn context(transport: &str, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("{transport}: {error}"))
}

fn socket(address: SocketAddr, kind: Type, protocol: Protocol) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(address), kind, Some(protocol))?;
    if address.is_ipv6() {
        // "[::]:53" then means IPv6 only, so that "0.0.0.0:53" can be listed beside it.
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Receive buffer asked for each UDP socket: room for a few thousand queries, so that a burst
/// waits in the queue instead of being dropped. The kernel caps it at `net.core.rmem_max`.
const UDP_RECEIVE_BUFFER: usize = 4 << 20;

fn bind_udp(address: SocketAddr, shared: bool) -> io::Result<std::net::UdpSocket> {
    let socket = socket(address, Type::DGRAM, Protocol::UDP)?;
    // Best effort: a smaller buffer than asked for is still a working socket.
    let _ = socket.set_recv_buffer_size(UDP_RECEIVE_BUFFER);
    if shared {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&address.into())?;
    Ok(socket.into())
}

fn bind_tcp(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = socket(address, Type::STREAM, Protocol::TCP)?;
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn worker_sockets_share_one_port_and_a_second_bind_fails() {
        let first = bind("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        assert_eq!(first.udp.len(), 3);
        for socket in &first.udp {
            assert_eq!(socket.local_addr().unwrap(), first.address);
        }
        assert_eq!(first.tcp.local_addr().unwrap(), first.address);
        let second = bind(first.address, 3).err().expect("the address is taken");
        assert_eq!(second.kind(), io::ErrorKind::AddrInUse);
    }

    #[tokio::test]
    async fn a_foreign_reuseport_socket_on_the_port_is_not_joined() {
        // Another program's socket with SO_REUSEPORT, same user: the kernel would let a
        // SO_REUSEPORT bind join it, and the claim is what refuses.
        let foreign = bind_udp("127.0.0.1:0".parse().unwrap(), true).unwrap();
        let error = bind(foreign.local_addr().unwrap(), 2)
            .err()
            .expect("the UDP port is taken");
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
        assert!(error.to_string().starts_with("udp: "), "{error}");
    }
}
