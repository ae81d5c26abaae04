//! TCP abuse against the real server: idle connections beyond the limit, slowloris clients that
//! trickle a query in byte by byte, and a client that sends queries but never reads its answers.
//! Through each, ordinary UDP and TCP queries keep being answered.

use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use testkit::*;

fn pool_zone(count: usize) -> String {
    let members: Vec<String> = (1..=count).map(|i| format!("\"127.0.113.{i}\"")).collect();
    format!(
        "{ZONE_HEAD}\n[pool.api]\nttl = 5\nmembers = [{}]\n",
        members.join(", ")
    )
}

fn start(server_extra: &str, members: usize) -> TestServer {
    let mut spec = ServerSpec::zone(&pool_zone(members));
    spec.server_extra = server_extra.to_string();
    TestServer::start(spec)
}

/// One UDP query and one TCP query on a new connection, both answered with the pool.
fn assert_served(server: SocketAddr, what: &str) {
    let reply = udp(server, &query(API, RecordType::A, Some(1232)));
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::NoError,
        "{what}: UDP"
    );
    let reply = tcp(server, &query(API, RecordType::A, None));
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::NoError,
        "{what}: TCP"
    );
    assert!(!addresses(&reply).is_empty(), "{what}: TCP");
}

/// Whether the server has closed `stream`, looking for at most `wait`.
fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    wait_closed(stream, wait).is_some()
}

#[test]
fn idle_connections_beyond_the_limit_evict_the_longest_idle() {
    let server = start("tcp_max_connections = 8\ntcp_idle_timeout = \"30s\"", 3);
    let mut oldest: Vec<TcpStream> = (0..8).map(|_| tcp_connect(server.addr())).collect();
    std::thread::sleep(Duration::from_millis(100));
    let mut newest: Vec<TcpStream> = (0..8).map(|_| tcp_connect(server.addr())).collect();
    // Each new connection pushed out one of the first eight, oldest first.
    for (index, stream) in oldest.iter_mut().enumerate() {
        assert!(
            closed_within(stream, Duration::from_secs(3)),
            "old idle connection {index} is closed to make room"
        );
    }
    // The newer eight are open and usable (using one evicts nobody: it is already admitted).
    for (index, stream) in newest.iter_mut().enumerate() {
        tcp_send(stream, &query(API, RecordType::A, None).to_vec().unwrap());
        let reply = tcp_read(stream).unwrap_or_else(|| panic!("new connection {index} served"));
        assert_eq!(
            parse_reply(&reply).metadata.response_code,
            ResponseCode::NoError
        );
    }
    // A ninth client still gets in, and UDP never noticed.
    assert_served(server.addr(), "at the limit");

    // Far beyond the limit: 200 idle connections in a row, then ordinary clients.
    let started = Instant::now();
    let mut flood: Vec<TcpStream> = Vec::new();
    for _ in 0..200 {
        if let Ok(stream) = TcpStream::connect_timeout(&server.addr(), REPLY_TIMEOUT) {
            flood.push(stream);
        }
    }
    eprintln!(
        "opened {} connections in {:?}",
        flood.len(),
        started.elapsed()
    );
    assert_served(server.addr(), "after 200 idle connections");
    let open = flood
        .iter_mut()
        .map(|stream| closed_within(stream, Duration::from_millis(20)))
        .filter(|closed| !closed)
        .count();
    assert!(open <= 8, "at most the limit stays open: {open}");
}

/// Sends a length prefix and one byte, then one more byte every `every` until the server closes
/// the connection or `give_up` passes. Returns how long the server let it trickle.
fn trickle(server: SocketAddr, every: Duration, give_up: Duration) -> JoinHandle<Option<Duration>> {
    std::thread::spawn(move || {
        let mut stream = tcp_connect(server);
        stream.set_write_timeout(Some(REPLY_TIMEOUT)).unwrap();
        let started = Instant::now();
        // Claims a 64-byte query, which never arrives whole.
        if stream.write_all(&[0, 64, 0x12]).is_err() {
            return Some(started.elapsed());
        }
        while started.elapsed() < give_up {
            std::thread::sleep(every);
            if stream.write_all(&[0x34]).is_err() {
                return Some(started.elapsed());
            }
            // The server closing shows up as EOF or a reset on a short read.
            stream
                .set_read_timeout(Some(Duration::from_millis(1)))
                .unwrap();
            let mut byte = [0u8; 1];
            match std::io::Read::read(&mut stream, &mut byte) {
                Ok(0) => return Some(started.elapsed()),
                Err(error)
                    if !matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    return Some(started.elapsed());
                }
                _ => {}
            }
        }
        None
    })
}

#[test]
fn slowloris_clients_are_cut_off_at_the_message_deadline() {
    // The idle timeout is long; the whole-message deadline (at most 2 s) is what cuts them off.
    let server = start("tcp_max_connections = 4\ntcp_idle_timeout = \"20s\"", 3);
    let tricklers: Vec<_> = (0..4)
        .map(|_| {
            trickle(
                server.addr(),
                Duration::from_millis(100),
                Duration::from_secs(10),
            )
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // With every place taken by a trickler, an ordinary client still gets in (the longest
    // trickler makes room), and UDP is untouched.
    assert_served(server.addr(), "during the slowloris");
    let mut lasted = Vec::new();
    for trickler in tricklers {
        let held = trickler
            .join()
            .unwrap()
            .expect("the server closes a trickling connection");
        lasted.push(held);
        // Generous: the deadline is 2 s, the give-up 10 s.
        assert!(held < Duration::from_secs(6), "held for {held:?}");
    }
    eprintln!("tricklers were closed after {lasted:?}");
    assert_served(server.addr(), "after the slowloris");
}

#[test]
fn a_client_that_never_reads_is_dropped_at_the_write_deadline() {
    // 100 members: each answer is ~1.6 KB, so the socket buffers fill after a few thousand.
    let server = start("tcp_idle_timeout = \"20s\"", 100);
    let stop = Arc::new(AtomicBool::new(false));
    let address = server.addr();
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let socket = socket2::Socket::new(
                socket2::Domain::IPV4,
                socket2::Type::STREAM,
                Some(socket2::Protocol::TCP),
            )
            .unwrap();
            // A small receive window, so that the server's writes block sooner.
            socket.set_recv_buffer_size(4096).unwrap();
            socket
                .connect_timeout(&address.into(), REPLY_TIMEOUT)
                .unwrap();
            let mut stream: TcpStream = socket.into();
            stream
                .set_write_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let message = query(API, RecordType::A, None).to_vec().unwrap();
            let mut framed = (message.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&message);
            let batch: Vec<u8> = framed.repeat(100);
            let started = Instant::now();
            let mut sent = 0usize;
            while started.elapsed() < Duration::from_secs(20) && !stop.load(Ordering::Relaxed) {
                match stream.write(&batch) {
                    Ok(written) => sent += written,
                    Err(error)
                        if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(_) => return Some((started.elapsed(), sent)),
                }
            }
            None
        })
    };
    // While the server is stuck writing to that client, everyone else is served.
    std::thread::sleep(Duration::from_millis(500));
    assert_served(server.addr(), "while a client does not read");
    let outcome = writer.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    let (after, sent) = outcome.expect("the server drops a client that never reads");
    eprintln!("the non-reading client was dropped after {after:?}, having sent {sent} bytes");
    assert_served(server.addr(), "after the non-reading client");
}

#[test]
fn pipelined_queries_still_work_with_the_framer() {
    let server = start("", 3);
    let mut stream = tcp_connect(server.addr());
    stream.set_nodelay(true).unwrap();
    // 50 queries in one write, then 50 more one byte at a time (fast enough for the deadline).
    let queries: Vec<Vec<u8>> = (0..100)
        .map(|_| query(API, RecordType::A, None).to_vec().unwrap())
        .collect();
    let mut first = Vec::new();
    for message in &queries[..50] {
        first.extend_from_slice(&(message.len() as u16).to_be_bytes());
        first.extend_from_slice(message);
    }
    stream.write_all(&first).unwrap();
    for _ in 0..50 {
        assert!(tcp_read(&mut stream).is_some());
    }
    for message in &queries[50..] {
        let mut framed = (message.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(message);
        for byte in framed {
            stream.write_all(&[byte]).unwrap();
        }
        let reply = parse_reply(&tcp_read(&mut stream).expect("a reply"));
        assert_eq!(&reply.metadata.id.to_be_bytes(), &message[..2]);
    }
}
