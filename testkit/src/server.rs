//! The test harness: starts the real `apidns` binary on ephemeral loopback ports with a
//! configuration written to a temporary directory, and talks DNS to it over real sockets.

#![allow(dead_code)] // each test file uses a different part of the harness

pub mod backend;
pub mod https;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

/// How long a test waits for the server to start, or for one reply.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(3);

/// A zone file that most tests extend: NS with glue, and `[soa]`.
pub const ZONE_HEAD: &str = r#"
origin = "k8s.example.com."
ttl = 300
records = [
  { name = "@", type = "NS", value = "ns1" },
  { name = "@", type = "NS", value = "ns2" },
  { name = "ns1", type = "A", value = "192.0.2.53" },
  { name = "ns2", type = "A", value = "192.0.2.54" },
  { name = "ns2", type = "AAAA", value = "2001:db8::54" },
]
[soa]
mname = "ns1"
rname = "hostmaster.example.com."
serial = 42
minimum = 5
ttl = 60
"#;

/// A scratch directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("apidns-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(path.join("zones")).expect("create temp dir");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.0.join(relative);
        std::fs::write(&path, text).expect("write test file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Configuration for one test server.
pub struct ServerSpec {
    /// `[server]` lines besides `listen`, e.g. `tcp_idle_timeout = "300ms"`.
    pub server_extra: String,
    /// The whole `[probe]` table body, if any.
    pub probe: String,
    /// Zone files: (file name, contents).
    pub zones: Vec<(String, String)>,
    /// Listen on ::1 too.
    pub ipv6: bool,
    /// Extra arguments after `serve --config FILE`.
    pub args: Vec<String>,
}

impl ServerSpec {
    pub fn zone(zone_toml: &str) -> Self {
        Self {
            server_extra: String::new(),
            probe: String::new(),
            zones: vec![("k8s.example.com.toml".to_string(), zone_toml.to_string())],
            ipv6: false,
            args: Vec::new(),
        }
    }
}

/// A running `apidns serve`, killed on drop.
pub struct TestServer {
    child: Child,
    pub dir: TempDir,
    pub config: PathBuf,
    /// Bound DNS addresses, as the server logged them.
    pub addresses: Vec<SocketAddr>,
    /// The HTTP endpoint, when the configuration has `http`.
    pub http: Option<SocketAddr>,
    logs: Arc<Mutex<Vec<String>>>,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_apidns")
}

impl TestServer {
    pub fn start(spec: ServerSpec) -> Self {
        let dir = TempDir::new("server");
        let mut listen = vec!["\"127.0.0.1:0\"".to_string()];
        if spec.ipv6 {
            listen.push("\"[::1]:0\"".to_string());
        }
        let main = format!(
            "[server]\nlisten = [{}]\nzones = \"zones\"\n{}\n[probe]\n{}\n",
            listen.join(", "),
            spec.server_extra,
            spec.probe
        );
        let config = dir.write("apidns.toml", &main);
        for (name, text) in &spec.zones {
            dir.write(&format!("zones/{name}"), text);
        }
        Self::start_with(dir, config, &spec.args)
    }

    /// Starts the binary on an existing configuration.
    pub fn start_with(dir: TempDir, config: PathBuf, args: &[String]) -> Self {
        // Info unless the caller asks for another level.
        let level: &[&str] = if args.iter().any(|arg| arg == "--log-level") {
            &[]
        } else {
            &["--log-level", "info"]
        };
        let mut child = Command::new(binary())
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .args(level)
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start apidns");
        let stderr = child.stderr.take().expect("stderr is piped");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (lines_tx, lines_rx) = mpsc::channel();
        {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    logs.lock().unwrap().push(line.clone());
                    let _ = lines_tx.send(line);
                }
            });
        }
        let mut addresses = Vec::new();
        let mut http = None;
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match lines_rx.recv_timeout(remaining) {
                Ok(line) if line.contains("listening on udp and tcp") => {
                    let address = line
                        .split_whitespace()
                        .find_map(|word| word.strip_prefix("address="))
                        .and_then(|a| a.parse().ok())
                        .expect("listening line carries address=");
                    addresses.push(address);
                }
                Ok(line) if line.contains("http endpoint on") => {
                    http = line
                        .split_whitespace()
                        .find_map(|word| word.strip_prefix("address="))
                        .and_then(|a| a.parse().ok());
                }
                Ok(line) if line.contains(" serving ") => break,
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "apidns did not start; its log:\n{}",
                        logs.lock().unwrap().join("\n")
                    );
                }
            }
        }
        Self {
            child,
            dir,
            config,
            addresses,
            http,
            logs,
        }
    }

    /// The first (IPv4 loopback) DNS address.
    pub fn addr(&self) -> SocketAddr {
        self.addresses[0]
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Waits until a log line satisfies `predicate`.
    pub fn wait_for_log(
        &self,
        timeout: Duration,
        predicate: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(line) = self.logs().into_iter().find(|l| predicate(l)) {
                return Some(line);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` ("TERM", "INT", "HUP" or "KILL") to the server.
    pub fn signal(&self, signal: &str) {
        let number = match signal {
            "TERM" => libc::SIGTERM,
            "INT" => libc::SIGINT,
            "HUP" => libc::SIGHUP,
            "KILL" => libc::SIGKILL,
            other => panic!("unknown signal {other}"),
        };
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        let result = unsafe { libc::kill(self.pid() as libc::pid_t, number) };
        assert_eq!(result, 0, "kill -{signal} failed");
    }

    /// Waits for the process to exit, returning its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A query message for `name`/`record_type`, optionally with an EDNS OPT of `edns_size`.
pub fn query(name: &str, record_type: RecordType, edns_size: Option<u16>) -> Message {
    let mut message = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    message.add_query(Query::query(
        Name::from_ascii(name).expect("valid name"),
        record_type,
    ));
    if let Some(size) = edns_size {
        let mut edns = Edns::new();
        edns.set_max_payload(size);
        message.edns = Some(edns);
    }
    message
}

fn rand_id() -> u16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(1);
    NEXT.fetch_add(7919, std::sync::atomic::Ordering::Relaxed)
}

/// Sends raw bytes over UDP and returns the raw reply, or None after `REPLY_TIMEOUT`.
pub fn udp_raw(server: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    udp_raw_timeout(server, bytes, REPLY_TIMEOUT)
}

pub fn udp_raw_timeout(server: SocketAddr, bytes: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    let bind = if server.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    };
    let socket = UdpSocket::bind(bind).expect("bind client socket");
    socket.set_read_timeout(Some(timeout)).expect("set timeout");
    socket.send_to(bytes, server).expect("send query");
    let mut buffer = vec![0u8; 65_535];
    match socket.recv_from(&mut buffer) {
        Ok((length, _)) => Some(buffer[..length].to_vec()),
        Err(_) => None,
    }
}

/// Sends `message` over UDP and parses the reply; panics on timeout or a bad reply.
pub fn udp(server: SocketAddr, message: &Message) -> Message {
    let bytes = message.to_vec().expect("encode query");
    let reply = udp_raw(server, &bytes).expect("a UDP reply");
    let reply = Message::from_vec(&reply).expect("a parsable reply");
    assert_eq!(reply.metadata.id, message.metadata.id, "reply id matches");
    reply
}

/// Sends `message` over a new TCP connection and parses the reply.
pub fn tcp(server: SocketAddr, message: &Message) -> Message {
    let mut stream = TcpStream::connect_timeout(&server, REPLY_TIMEOUT).expect("tcp connect");
    stream
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .expect("set timeout");
    let bytes = message.to_vec().expect("encode query");
    tcp_send(&mut stream, &bytes);
    let reply = tcp_read(&mut stream).expect("a TCP reply");
    Message::from_vec(&reply).expect("a parsable reply")
}

pub fn tcp_send(stream: &mut TcpStream, bytes: &[u8]) {
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    stream.write_all(&framed).expect("tcp write");
}

/// Reads one length-prefixed message; None when the server closed the connection.
pub fn tcp_read(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut length = [0u8; 2];
    stream.read_exact(&mut length).ok()?;
    let mut message = vec![0u8; u16::from_be_bytes(length) as usize];
    stream.read_exact(&mut message).ok()?;
    Some(message)
}

/// The addresses in the answer section, in order.
pub fn addresses(message: &Message) -> Vec<String> {
    message
        .answers
        .iter()
        .filter_map(|record| match &record.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(aaaa) => Some(aaaa.0.to_string()),
            _ => None,
        })
        .collect()
}

/// Asks for `name` A over UDP and returns the sorted addresses.
pub fn a_sorted(server: SocketAddr, name: &str) -> Vec<String> {
    let mut found = addresses(&udp(server, &query(name, RecordType::A, None)));
    found.sort();
    found
}

pub fn types(records: &[Record]) -> Vec<RecordType> {
    records.iter().map(Record::record_type).collect()
}

/// `ZONE_HEAD` with `extra` static records (inline tables such as
/// `{ name = "www", type = "A", value = "192.0.2.80" }`) appended to its `records` array.
pub fn zone_with_records(extra: &[&str]) -> String {
    let mut records = String::new();
    for record in extra {
        records.push_str("  ");
        records.push_str(record);
        records.push_str(",\n");
    }
    let head = ZONE_HEAD.replacen("]\n[soa]", &format!("{records}]\n[soa]"), 1);
    assert_ne!(
        head, ZONE_HEAD,
        "ZONE_HEAD's records array ends before [soa]"
    );
    head
}

/// A query for `name`/`record_type` in `class`, without EDNS.
pub fn query_in_class(name: &str, record_type: RecordType, class: DNSClass) -> Message {
    let mut message = query(name, record_type, None);
    message.queries[0].set_query_class(class);
    message
}

/// A bare 12-byte header: `flags` is the second 16-bit word (QR, opcode, AA, TC, RD, RA, Z,
/// AD, CD, RCODE), `counts` are QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT.
pub fn raw_header(id: u16, flags: u16, counts: [u16; 4]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(12);
    bytes.extend_from_slice(&id.to_be_bytes());
    bytes.extend_from_slice(&flags.to_be_bytes());
    for count in counts {
        bytes.extend_from_slice(&count.to_be_bytes());
    }
    bytes
}

/// Parses a raw reply; panics with the bytes when it is not a DNS message.
pub fn parse_reply(bytes: &[u8]) -> Message {
    Message::from_vec(bytes)
        .unwrap_or_else(|error| panic!("unparsable reply {bytes:02x?}: {error}"))
}

/// A TCP connection to `server` with `REPLY_TIMEOUT` on reads.
pub fn tcp_connect(server: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&server, REPLY_TIMEOUT).expect("tcp connect");
    stream
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .expect("set timeout");
    stream
}

/// Waits up to `timeout` for the server to close `stream` (EOF or reset); returns how long it
/// took, or None when the connection was still open (or sent data) at the deadline.
pub fn wait_closed(stream: &mut TcpStream, timeout: Duration) -> Option<Duration> {
    let start = Instant::now();
    stream.set_read_timeout(Some(timeout)).expect("set timeout");
    let mut buffer = [0u8; 512];
    match stream.read(&mut buffer) {
        Ok(0) => Some(start.elapsed()),
        Ok(_) => None,
        Err(error)
            if matches!(
                error.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
            ) =>
        {
            Some(start.elapsed())
        }
        Err(_) => None,
    }
}

/// Whether this machine has an IPv6 loopback that a UDP socket can bind to.
pub fn ipv6_loopback_available() -> bool {
    UdpSocket::bind("[::1]:0").is_ok()
}

/// The SOA record in the authority section, with its data.
pub fn authority_soa(message: &Message) -> Option<(&Record, &SOA)> {
    message
        .authorities
        .iter()
        .find_map(|record| match &record.data {
            RData::SOA(soa) => Some((record, soa)),
            _ => None,
        })
}

/// One HTTP/1.1 request to `address`; returns the status code and the body.
pub fn http_request(
    address: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&address, REPLY_TIMEOUT).expect("http connect");
    stream
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .expect("set timeout");
    let authorization = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: apidns\r\n{authorization}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("http write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("http read");
    let (head, body) = response.split_once("\r\n\r\n").expect("http head and body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    (status, body.to_string())
}

pub fn http_get(address: SocketAddr, path: &str) -> (u16, String) {
    http_request(address, "GET", path, None)
}

/// A loopback port that was free a moment ago (for configurations that must name a port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// Polls `condition` every 5 ms until it holds, returning how long that took, or `None` once
/// `limit` has passed.
pub fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if condition() {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

/// Whether `condition` holds within `limit` (see [`wait_until`]).
pub fn eventually(limit: Duration, condition: impl FnMut() -> bool) -> bool {
    wait_until(limit, condition).is_some()
}

pub fn sorted(mut values: Vec<String>) -> Vec<String> {
    values.sort();
    values
}
