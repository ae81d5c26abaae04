//! A DNS client over real sockets: queries built with hickory, sent over UDP or TCP (framed),
//! and the parts of replies that tests compare.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

/// How long a client waits for one reply.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(3);

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

/// What the server sent back to `bytes` over UDP, told apart from silence by an event rather
/// than a timeout: `bytes` and then a well-formed query go out from one socket, and whatever
/// arrives before the query's answer is the reply to `bytes`. The same source address and port
/// always reach the same worker socket (SO_REUSEPORT hashes them), which answers its datagrams
/// in order, so a reply to `bytes` would arrive first. `None`: the server sent nothing.
pub fn udp_reply_before_sentinel(server: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let bind = if server.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    };
    let socket = UdpSocket::bind(bind).expect("bind client socket");
    socket
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .expect("set timeout");
    let mut sentinel = query("k8s.example.com.", RecordType::SOA, None);
    sentinel.metadata.id = 0x5e17;
    let sentinel = sentinel.to_vec().expect("encode the sentinel query");
    socket.send_to(bytes, server).expect("send the datagram");
    socket
        .send_to(&sentinel, server)
        .expect("send the sentinel");
    let mut buffer = vec![0u8; 65_535];
    let (length, _) = socket
        .recv_from(&mut buffer)
        .expect("the sentinel query was answered (the server keeps serving)");
    let first = buffer[..length].to_vec();
    let answers_the_sentinel = Message::from_vec(&first).is_ok_and(|reply| {
        reply.metadata.id == 0x5e17
            && reply.metadata.message_type == MessageType::Response
            && reply.queries.first().is_some_and(|question| {
                question.query_type() == RecordType::SOA
                    && question.name().to_ascii() == "k8s.example.com."
            })
    });
    (!answers_the_sentinel).then_some(first)
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

/// A loopback port that was free a moment ago (for configurations that must name a port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}
