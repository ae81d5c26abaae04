//! Stand-in API servers for probing tests: listeners that tests start, kill and restart.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A stand-in API server: a TCP listener that accepts connections and keeps them open (as an
/// API server does while a client is idle) until the client closes them, or until `close_after`
/// has passed when set (an idle-closing server).
pub struct Backend {
    pub address: SocketAddr,
    stop: Arc<AtomicBool>,
    reset: Arc<AtomicBool>,
    open: Arc<AtomicUsize>,
    accepted: Arc<Accepts>,
    thread: Option<JoinHandle<()>>,
}

/// The count of accepted connections, with a signal on each, so that a test or bench can act
/// at a known point of the prober's schedule (right after a probe connected) without polling.
#[derive(Default)]
struct Accepts {
    count: Mutex<usize>,
    arrived: Condvar,
}

impl Accepts {
    fn add(&self) {
        let mut count = self
            .count
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *count += 1;
        self.arrived.notify_all();
    }

    fn get(&self) -> usize {
        *self
            .count
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until more than `seen` connections were accepted, at most `timeout`; returns the
    /// new count, or `None` when none arrived in time.
    fn wait_beyond(&self, seen: usize, timeout: Duration) -> Option<usize> {
        let count = self
            .count
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (count, _) = self
            .arrived
            .wait_timeout_while(count, timeout, |count| *count <= seen)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (*count > seen).then_some(*count)
    }
}

impl Backend {
    /// Listens on `ip` with a free port.
    pub fn start(ip: &str) -> Self {
        let ip: std::net::IpAddr = ip.parse().unwrap();
        Self::start_at(SocketAddr::new(ip, 0))
    }

    pub fn start_at(address: SocketAddr) -> Self {
        Self::spawn(address, None)
    }

    /// A server that closes every accepted connection `after` it was accepted, but keeps
    /// listening.
    pub fn start_idle_closing(ip: &str, after: Duration) -> Self {
        let ip: std::net::IpAddr = ip.parse().unwrap();
        Self::spawn(SocketAddr::new(ip, 0), Some(after))
    }

    pub fn start_idle_closing_at(address: SocketAddr, after: Duration) -> Self {
        Self::spawn(address, Some(after))
    }

    /// A server that closes every connection as soon as it accepts it, as a load balancer's
    /// health port does: a held connection never lasts.
    pub fn start_accept_and_close(ip: &str) -> Self {
        Self::start_idle_closing(ip, Duration::ZERO)
    }

    pub fn start_accept_and_close_at(address: SocketAddr) -> Self {
        Self::start_idle_closing_at(address, Duration::ZERO)
    }

    fn spawn(address: SocketAddr, close_after: Option<Duration>) -> Self {
        let listener = TcpListener::bind(address).expect("bind backend");
        let address = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let reset = Arc::new(AtomicBool::new(false));
        let open_count = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(Accepts::default());
        let thread = {
            let accepted = accepted.clone();
            let stop = stop.clone();
            let reset = reset.clone();
            let open_count = open_count.clone();
            std::thread::spawn(move || {
                let mut open: Vec<(TcpStream, Instant)> = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let mut idle = true;
                    while let Ok((stream, _)) = listener.accept() {
                        let _ = stream.set_nonblocking(true);
                        open.push((stream, Instant::now()));
                        accepted.add();
                        idle = false;
                    }
                    open.retain(|(stream, accepted)| {
                        if close_after.is_some_and(|after| accepted.elapsed() >= after) {
                            return false;
                        }
                        let mut buffer = [0u8; 64];
                        match (&*stream).read(&mut buffer) {
                            Ok(0) => false,
                            Ok(_) => true,
                            Err(error) => error.kind() == std::io::ErrorKind::WouldBlock,
                        }
                    });
                    open_count.store(open.len(), Ordering::Relaxed);
                    if idle {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
                // Like a dying process: the listener goes first, so that a client reconnecting
                // on the close of its connection is refused.
                drop(listener);
                if reset.load(Ordering::Relaxed) {
                    for (stream, _) in &open {
                        let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
                    }
                }
                drop(open);
            })
        };
        Self {
            address,
            stop,
            reset,
            open: open_count,
            accepted,
            thread: Some(thread),
        }
    }

    /// Closes the listener, then the open connections with a FIN: connections are refused from
    /// now on.
    pub fn kill(mut self) -> SocketAddr {
        self.shutdown();
        self.address
    }

    /// Like [`Backend::kill`], but the open connections are reset (SO_LINGER 0).
    pub fn kill_with_reset(mut self) -> SocketAddr {
        self.reset.store(true, Ordering::Relaxed);
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

    /// Connections accepted since the start.
    pub fn accepted(&self) -> usize {
        self.accepted.get()
    }

    /// Waits until more than `seen` connections have been accepted (at most `timeout`) and
    /// returns the count then, or `None` when none came in time. The wake-up follows the
    /// accept by microseconds: the caller acts right after a probe connected.
    pub fn wait_for_accept_beyond(&self, seen: usize, timeout: Duration) -> Option<usize> {
        self.accepted.wait_beyond(seen, timeout)
    }

    /// Connections accepted and still open (as of the last few milliseconds).
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
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
        Self::start_at(format!("{ip}:0").parse().unwrap())
    }

    /// A black hole on a given address (port 0 picks one).
    pub fn start_at(bind: SocketAddr) -> Self {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        socket.set_reuse_address(true).unwrap();
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
