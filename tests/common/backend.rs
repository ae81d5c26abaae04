//! Stand-in API servers for probing tests: listeners that tests start, kill and restart.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// A stand-in API server: a TCP listener that accepts and closes connections.
pub struct Backend {
    pub address: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Backend {
    /// Listens on `ip` with a free port.
    pub fn start(ip: &str) -> Self {
        let ip: std::net::IpAddr = ip.parse().unwrap();
        Self::start_at(SocketAddr::new(ip, 0))
    }

    pub fn start_at(address: SocketAddr) -> Self {
        let listener = TcpListener::bind(address).expect("bind backend");
        let address = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => drop(stream),
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Self {
            address,
            stop,
            thread: Some(thread),
        }
    }

    /// Closes the listener: connections are refused from now on.
    pub fn kill(mut self) -> SocketAddr {
        self.shutdown();
        self.address
    }

    pub fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    pub fn member(&self) -> String {
        self.address.to_string()
    }

    pub fn ip(&self) -> String {
        self.address.ip().to_string()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A listener that never accepts, with its queue filled: new connections get no SYN-ACK and
/// time out, like a host that silently drops packets.
pub struct BlackHole {
    pub address: SocketAddr,
    _listener: socket2::Socket,
    _queued: Vec<TcpStream>,
}

impl BlackHole {
    pub fn start(ip: &str) -> Self {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let bind: SocketAddr = format!("{ip}:0").parse().unwrap();
        socket.bind(&bind.into()).unwrap();
        socket.listen(0).unwrap();
        let address = socket.local_addr().unwrap().as_socket().unwrap();
        let mut queued = Vec::new();
        for _ in 0..16 {
            match TcpStream::connect_timeout(&address, Duration::from_millis(200)) {
                Ok(stream) => queued.push(stream),
                Err(_) => break,
            }
        }
        assert!(
            TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err(),
            "the black hole's accept queue should be full"
        );
        Self {
            address,
            _listener: socket,
            _queued: queued,
        }
    }

    pub fn member(&self) -> String {
        self.address.to_string()
    }
}
