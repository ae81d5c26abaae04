//! Response rate limiting against the real server: a client network that floods identical
//! queries over UDP sees most answers dropped and some slipped (TC=1, no records), while another
//! network is answered every time, TCP is never limited, and without `rrl` nothing is limited.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use testkit::*;

const POOL: &str = r#"
[pool.api]
ttl = 5
members = ["127.0.10.10", "127.0.10.11", "127.0.10.12"]
"#;

fn start(server_extra: &str) -> TestServer {
    let mut spec = ServerSpec::zone(&format!("{ZONE_HEAD}{POOL}"));
    spec.server_extra = server_extra.to_string();
    TestServer::start(spec)
}

/// What a burst of identical queries from one socket got back.
#[derive(Debug, Default)]
struct Outcome {
    sent: usize,
    answered: usize,
    slipped: usize,
}

impl Outcome {
    fn dropped(&self) -> usize {
        self.sent - self.answered - self.slipped
    }
}

/// Sends `count` copies of `message` from `socket` as fast as it can, then collects replies
/// until none has come for a while.
fn burst(socket: &UdpSocket, server: SocketAddr, message: &Message, count: usize) -> Outcome {
    let bytes = message.to_vec().unwrap();
    let mut outcome = Outcome::default();
    for _ in 0..count {
        socket.send_to(&bytes, server).unwrap();
        outcome.sent += 1;
    }
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buffer = [0u8; 4096];
    while let Ok((length, _)) = socket.recv_from(&mut buffer) {
        let reply = parse_reply(&buffer[..length]);
        assert_eq!(reply.metadata.id, message.metadata.id);
        if reply.metadata.truncation {
            assert!(reply.answers.is_empty(), "a slip carries no records");
            assert!(
                length <= bytes.len() + 11,
                "a slip is no larger than the query: {length} > {}",
                bytes.len()
            );
            assert_eq!(reply.queries, message.queries, "a slip keeps the question");
            outcome.slipped += 1;
        } else {
            assert_eq!(addresses(&reply).len(), 3);
            outcome.answered += 1;
        }
    }
    outcome
}

fn bind(ip: &str) -> UdpSocket {
    UdpSocket::bind((ip, 0)).unwrap_or_else(|error| panic!("bind {ip}: {error}"))
}

#[test]
fn a_flooding_network_is_limited_and_others_are_not() {
    let server = start(
        "rrl = { responses_per_second = 10, slip = 2, window = \"2s\", ipv4_prefix_length = 24 }",
    );
    let flooder = bind("127.0.0.1");
    let neighbour = bind("127.0.0.2"); // the flooder's /24
    let bystander = bind("127.0.1.2"); // another /24
    let message = query(API, RecordType::A, None);
    let started = Instant::now();
    let flood = burst(&flooder, server.addr(), &message, 300);
    eprintln!("flood of 300 in {:?}: {flood:?}", started.elapsed());
    // About one second's worth (10) gets through, then every other limited answer slips.
    assert!(flood.answered >= 5 && flood.answered <= 40, "{flood:?}");
    assert!(flood.slipped >= 50, "{flood:?}");
    assert!(flood.dropped() >= 50, "{flood:?}");

    // The neighbour shares the flooder's counters; the bystander has its own, and stays within
    // its own limit (8 of the 10 a second allows), while the flood goes on in between.
    let shared = burst(&neighbour, server.addr(), &message, 20);
    assert!(shared.answered < 20, "{shared:?}");
    for index in 0..8 {
        let bytes = message.to_vec().unwrap();
        bystander.send_to(&bytes, server.addr()).unwrap();
        bystander.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
        let mut buffer = [0u8; 4096];
        let (length, _) = bystander
            .recv_from(&mut buffer)
            .unwrap_or_else(|_| panic!("bystander query {index} answered"));
        let reply = parse_reply(&buffer[..length]);
        assert!(!reply.metadata.truncation, "bystander query {index}");
        assert_eq!(addresses(&reply).len(), 3);
        // Keep the flood going in between.
        for _ in 0..10 {
            let _ = flooder.send_to(&bytes, server.addr());
        }
    }

    // Other answers to the flooding network have their own counters: a different name is
    // answered (the flood was for api/A only).
    let other = udp_from(&flooder, server.addr(), &query(API, RecordType::AAAA, None));
    assert_eq!(other.metadata.response_code, ResponseCode::NoError);
    assert!(!other.metadata.truncation);

    // TCP is never limited.
    for _ in 0..20 {
        let reply = tcp(server.addr(), &message);
        assert_eq!(addresses(&reply).len(), 3);
    }
}

/// One query from `socket`, skipping stale replies to earlier bursts.
fn udp_from(socket: &UdpSocket, server: SocketAddr, message: &Message) -> Message {
    socket.send_to(&message.to_vec().unwrap(), server).unwrap();
    socket.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
    let mut buffer = [0u8; 4096];
    loop {
        let (length, _) = socket.recv_from(&mut buffer).expect("a reply");
        let reply = parse_reply(&buffer[..length]);
        if reply.metadata.id == message.metadata.id {
            return reply;
        }
    }
}

#[test]
fn random_names_share_one_nxdomain_counter_per_zone() {
    let server = start("rrl = { responses_per_second = 5, slip = 0 }");
    let flooder = bind("127.0.2.1");
    let mut answered = 0;
    for i in 0..100 {
        let message = query(&format!("r{i}.k8s.example.com."), RecordType::A, None);
        flooder
            .send_to(&message.to_vec().unwrap(), server.addr())
            .unwrap();
    }
    flooder
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buffer = [0u8; 4096];
    while let Ok((length, _)) = flooder.recv_from(&mut buffer) {
        let reply = parse_reply(&buffer[..length]);
        assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
        assert!(!reply.metadata.truncation, "slip = 0 never truncates");
        answered += 1;
    }
    assert!(
        answered <= 30,
        "NXDOMAIN for random names is limited: {answered}"
    );
    // The pool name is still answered: another counter.
    let reply = udp_from(&flooder, server.addr(), &query(API, RecordType::A, None));
    assert_eq!(addresses(&reply).len(), 3);
}

#[test]
fn without_rrl_nothing_is_limited() {
    let server = start("");
    let client = bind("127.0.0.1");
    let message = query(API, RecordType::A, None);
    let outcome = burst(&client, server.addr(), &message, 200);
    // Loopback may drop a few datagrams under a burst, but never most of them.
    assert!(outcome.answered >= 190, "{outcome:?}");
    assert_eq!(outcome.slipped, 0);
}
