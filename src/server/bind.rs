//! Binding the DNS sockets: UDP and TCP on the same address and port.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, UdpSocket};

/// A bound UDP socket and TCP listener sharing one address.
pub struct BoundAddress {
    pub udp: UdpSocket,
    pub tcp: TcpListener,
    pub address: SocketAddr,
}

/// Attempts to find a port free for both UDP and TCP when the configuration asks for port 0.
const EPHEMERAL_ATTEMPTS: usize = 32;

/// Binds UDP and TCP on `address`. Port 0 picks one free port for both transports, so that a
/// client retrying over TCP after a truncated answer finds the same server.
pub fn bind(address: SocketAddr) -> io::Result<BoundAddress> {
    if address.port() != 0 {
        let udp = bind_udp(address)?;
        let tcp = bind_tcp(address)?;
        return Ok(BoundAddress { udp, tcp, address });
    }
    let mut last_error = None;
    for _ in 0..EPHEMERAL_ATTEMPTS {
        let udp = bind_udp(address)?;
        let chosen = udp.local_addr()?;
        match bind_tcp(chosen) {
            Ok(tcp) => {
                return Ok(BoundAddress {
                    udp,
                    tcp,
                    address: chosen,
                });
            }
            Err(error) if error.kind() == io::ErrorKind::AddrInUse => last_error = Some(error),
            Err(error) => return Err(error),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no port free for both UDP and TCP")))
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

fn bind_udp(address: SocketAddr) -> io::Result<UdpSocket> {
    let socket = socket(address, Type::DGRAM, Protocol::UDP)?;
    // Best effort: a smaller buffer than asked for is still a working socket.
    let _ = socket.set_recv_buffer_size(UDP_RECEIVE_BUFFER);
    socket.bind(&address.into())?;
    UdpSocket::from_std(socket.into())
}

fn bind_tcp(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = socket(address, Type::STREAM, Protocol::TCP)?;
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}
