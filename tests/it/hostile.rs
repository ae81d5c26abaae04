//! Malformed and hostile queries against the real server, over UDP and TCP: each gets the answer
//! it deserves (FORMERR, NOTIMP, BADVERS, REFUSED, NODATA) or none at all, and the server keeps
//! answering well-formed queries after every one. tests/it/dns.rs covers the basics (short packets,
//! QR=1 over UDP, QDCOUNT, simple bad names, two OPT records, BADVERS, opcodes, CHAOS); this file
//! covers the rest.

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{DNSClass, RecordType};
use testkit::*;

const POOL: &str = r#"
[pool.api]
ttl = 5
members = ["127.0.10.10", "127.0.10.11", "127.0.10.12"]
"#;

fn server() -> TestServer {
    TestServer::start(ServerSpec::zone(&format!("{ZONE_HEAD}{POOL}")))
}

/// An ordinary query over UDP and over TCP still gets the pool.
fn assert_still_serving(server: &TestServer) {
    for reply in [
        udp(server.addr(), &query(API, RecordType::A, None)),
        tcp(server.addr(), &query(API, RecordType::A, None)),
    ] {
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert_eq!(addresses(&reply).len(), 3);
    }
}

/// `name` in wire format, uncompressed.
fn wire_name(name: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    for label in name.trim_end_matches('.').split('.') {
        bytes.push(label.len() as u8);
        bytes.extend_from_slice(label.as_bytes());
    }
    bytes.push(0);
    bytes
}

/// A query header (RD clear) and one question, as raw bytes.
fn raw_query(id: u16, name: &[u8], record_type: u16, class: u16, counts: [u16; 4]) -> Vec<u8> {
    let mut bytes = raw_header(id, 0x0000, counts);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(&record_type.to_be_bytes());
    bytes.extend_from_slice(&class.to_be_bytes());
    bytes
}

/// Sends `bytes` over UDP and over TCP (on one fresh connection) and returns both replies.
fn both(server: &TestServer, bytes: &[u8]) -> [Vec<u8>; 2] {
    let over_udp = udp_raw(server.addr(), bytes).expect("a UDP reply");
    let mut stream = tcp_connect(server.addr());
    tcp_send(&mut stream, bytes);
    let over_tcp = tcp_read(&mut stream).expect("a TCP reply");
    [over_udp, over_tcp]
}

fn assert_format_error(raw: &[u8], id: u16, what: &str) {
    let reply = parse_reply(raw);
    assert_eq!(reply.metadata.id, id, "{what}");
    assert_eq!(reply.metadata.message_type, MessageType::Response, "{what}");
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::FormErr,
        "{what}"
    );
    assert!(reply.answers.is_empty(), "{what}");
    assert!(!reply.metadata.authoritative, "{what}");
}

#[test]
fn section_counts_larger_than_the_data_are_format_errors() {
    let server = server();
    let name = wire_name(API);
    for (index, counts) in [
        [1, 1, 0, 0],
        [1, 0, 1, 0],
        [1, 0, 0, 1],
        [1, 65535, 65535, 65535],
        // A 12-byte header claiming 65535 questions: refused before any are read.
        [65535, 0, 0, 0],
        [2, 0, 0, 0],
    ]
    .into_iter()
    .enumerate()
    {
        let id = 0x6000 + index as u16;
        let bytes = raw_query(id, &name, 1, 1, counts);
        for (transport, raw) in ["udp", "tcp"].iter().zip(both(&server, &bytes)) {
            assert_format_error(&raw, id, &format!("{transport} counts {counts:?}"));
        }
    }
    // A header alone that announces 65535 questions.
    let header = raw_header(0x6100, 0, [65535, 0, 0, 0]);
    assert_format_error(
        &udp_raw(server.addr(), &header).expect("a reply"),
        0x6100,
        "bare header",
    );
    assert_still_serving(&server);
}

#[test]
fn compression_pointers_that_loop_or_leave_the_question_are_format_errors() {
    let server = server();
    let bodies: [(&str, Vec<u8>); 5] = [
        // Two labels, then a pointer back to the first: a loop through a label.
        ("loop through a label", {
            let mut name = vec![3, b'a', b'p', b'i', 0xc0, 12];
            name.extend_from_slice(&[0, 1, 0, 1]);
            name
        }),
        // A pointer to offset 2: inside the header. A decoder accepts it (it points backwards),
        // but an echo of it in the answer would point at the answer's flags. Found by fuzzing.
        ("pointer into the header", vec![0xc0, 0x02, 0, 1, 0, 1]),
        // Pointer beyond the end of the packet.
        ("pointer out of range", vec![0xc0, 0x3f, 0, 1, 0, 1]),
        // The largest offset a pointer can hold.
        ("pointer to 16383", vec![0xff, 0xff, 0, 1, 0, 1]),
        // A pointer cut in half.
        ("half a pointer", vec![0xc0]),
    ];
    for (index, (what, body)) in bodies.iter().enumerate() {
        let id = 0x6200 + index as u16;
        let mut bytes = raw_header(id, 0, [1, 0, 0, 0]);
        bytes.extend_from_slice(body);
        for (transport, raw) in ["udp", "tcp"].iter().zip(both(&server, &bytes)) {
            assert_format_error(&raw, id, &format!("{what} over {transport}"));
            assert_eq!(raw.len(), 12, "{what}: the header alone");
        }
        assert_still_serving(&server);
    }

    // The input the fuzzer found, byte for byte: a long first label, then a pointer into the
    // header's flags that a decoder reads as a one-byte label.
    let found: &[u8] = &[
        0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1c, 0x00, 0x01,
        0x00, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x03,
        0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x30, 0x02, 0x02,
        0x03, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
        0x02, 0x02, 0xc0, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
        0x02, 0x02, 0x2a, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x03, 0x6b, 0x34, 0x07, 0x73,
        0x65, 0x78, 0x02, 0x02, 0x02, 0x02, 0x02, 0x03, 0x6b, 0x38, 0x73, 0x07, 0x65, 0x78, 0x61,
        0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x03, 0x02, 0x00, 0x01, 0x00, 0x00,
        0x02, 0x00, 0x00, 0x01, 0xfb, 0x01,
    ];
    for (transport, raw) in ["udp", "tcp"].iter().zip(both(&server, found)) {
        assert_format_error(&raw, 0x1234, &format!("fuzzer's input over {transport}"));
    }

    // A pointer in a later section that points past the end: the body does not parse.
    let mut bytes = query(API, RecordType::A, None).to_vec().unwrap();
    let id = u16::from_be_bytes([bytes[0], bytes[1]]);
    bytes[7] = 1; // ANCOUNT = 1
    bytes.extend_from_slice(&[0xc0, 0xf0, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
    assert_format_error(
        &udp_raw(server.addr(), &bytes).expect("reply"),
        id,
        "answer",
    );

    // A compressed question that points into itself legitimately is still a question:
    // QDCOUNT 2 (a format error), the second name pointing at the first, echoed intact.
    let mut bytes = raw_query(0x6300, &wire_name(API), 1, 1, [2, 0, 0, 0]);
    bytes.extend_from_slice(&[0xc0, 12, 0, 28, 0, 1]);
    let raw = udp_raw(server.addr(), &bytes).expect("reply");
    let reply = parse_reply(&raw);
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(reply.queries.len(), 2);
    assert_eq!(reply.queries[1].name().to_string(), API);
    assert_still_serving(&server);
}

#[test]
fn labels_over_63_bytes_and_names_over_255_are_format_errors() {
    let server = server();
    // Length bytes 64 and 128 are the reserved label types 01 and 10, not lengths.
    for (index, length) in [64u8, 100, 128, 191].into_iter().enumerate() {
        let id = 0x6400 + index as u16;
        let mut name = vec![length];
        name.extend(std::iter::repeat_n(b'a', usize::from(length & 0x3f)));
        name.push(0);
        let bytes = raw_query(id, &name, 1, 1, [1, 0, 0, 0]);
        for raw in both(&server, &bytes) {
            assert_format_error(&raw, id, &format!("label byte {length}"));
        }
    }
    // Five labels of 63 bytes: 321 bytes of name, more than 255.
    let mut name = Vec::new();
    for _ in 0..5 {
        name.push(63);
        name.extend_from_slice(&[b'x'; 63]);
    }
    name.push(0);
    let bytes = raw_query(0x6500, &name, 1, 1, [1, 0, 0, 0]);
    for raw in both(&server, &bytes) {
        assert_format_error(&raw, 0x6500, "a 321-byte name");
    }
    // Exactly 255 bytes is allowed: a name outside the zone, refused.
    let mut name = Vec::new();
    for _ in 0..3 {
        name.push(63);
        name.extend_from_slice(&[b'x'; 63]);
    }
    name.push(61);
    name.extend_from_slice(&[b'y'; 61]);
    name.push(0);
    assert_eq!(name.len(), 255);
    let bytes = raw_query(0x6501, &name, 1, 1, [1, 0, 0, 0]);
    for raw in both(&server, &bytes) {
        let reply = parse_reply(&raw);
        assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
        assert_eq!(reply.queries.len(), 1, "the long question is echoed");
    }
    assert_still_serving(&server);
}

#[test]
fn unknown_classes_are_refused_and_unknown_types_get_nodata() {
    let server = server();
    for class in [0u16, 2, 254, 1234, 65280, 65535] {
        let bytes = raw_query(0x6600, &wire_name(API), 1, class, [1, 0, 0, 0]);
        for raw in both(&server, &bytes) {
            let reply = parse_reply(&raw);
            assert_eq!(
                reply.metadata.response_code,
                ResponseCode::Refused,
                "class {class}"
            );
            assert_eq!(
                u16::from(reply.queries[0].query_class()),
                class,
                "class {class} echoed"
            );
            assert!(reply.answers.is_empty());
        }
    }
    // Class ANY (255) is read as IN.
    let reply = udp(
        server.addr(),
        &query_in_class(API, RecordType::A, DNSClass::ANY),
    );
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);

    // Types apidns holds no data for, including private-use and never-assigned ones.
    for record_type in [0u16, 3, 99, 4242, 65280, 65534] {
        let bytes = raw_query(0x6700, &wire_name(API), record_type, 1, [1, 0, 0, 0]);
        for raw in both(&server, &bytes) {
            let reply = parse_reply(&raw);
            assert_eq!(
                reply.metadata.response_code,
                ResponseCode::NoError,
                "type {record_type}"
            );
            assert!(reply.metadata.authoritative, "type {record_type}");
            assert!(reply.answers.is_empty(), "type {record_type}");
            assert_eq!(
                types(&reply.authorities),
                [RecordType::SOA],
                "type {record_type}: NODATA"
            );
        }
        let bytes = raw_query(
            0x6701,
            &wire_name("nope.k8s.example.com."),
            record_type,
            1,
            [1, 0, 0, 0],
        );
        let reply = parse_reply(&udp_raw(server.addr(), &bytes).expect("reply"));
        assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    }
    // Meta types that have no place in a question.
    for record_type in [41u16, 250, 251, 252, 253, 254] {
        let bytes = raw_query(0x6800, &wire_name(API), record_type, 1, [1, 0, 0, 0]);
        let raw = udp_raw(server.addr(), &bytes).expect("reply");
        let reply = parse_reply(&raw);
        assert!(reply.answers.is_empty(), "type {record_type}");
        assert_ne!(
            reply.metadata.response_code,
            ResponseCode::ServFail,
            "type {record_type}"
        );
    }
    assert_still_serving(&server);
}

/// An OPT record: root owner, type 41, class = payload size, TTL = extended rcode, version and
/// flags, then `options` (code, length, data).
fn raw_opt(size: u16, version: u8, options: &[(u16, &[u8])]) -> Vec<u8> {
    let mut data = Vec::new();
    for (code, value) in options {
        data.extend_from_slice(&code.to_be_bytes());
        data.extend_from_slice(&(value.len() as u16).to_be_bytes());
        data.extend_from_slice(value);
    }
    let mut opt = vec![0, 0, 41];
    opt.extend_from_slice(&size.to_be_bytes());
    opt.extend_from_slice(&[0, version, 0, 0]);
    opt.extend_from_slice(&(data.len() as u16).to_be_bytes());
    opt.extend_from_slice(&data);
    opt
}

#[test]
fn edns_oddities_get_the_answer_they_deserve() {
    let server = server();
    // Version 1 with unknown options: BADVERS, whatever the options.
    let mut bytes = raw_query(0x6900, &wire_name(API), 1, 1, [1, 0, 0, 1]);
    bytes.extend(raw_opt(1232, 1, &[(65001, b"abc"), (65002, b"")]));
    for raw in both(&server, &bytes) {
        let reply = parse_reply(&raw);
        assert_eq!(u16::from(reply.metadata.response_code), 16, "BADVERS");
        assert_eq!(reply.edns.as_ref().map(|e| e.version()), Some(0));
    }
    // Version 255.
    let mut bytes = raw_query(0x6901, &wire_name(API), 1, 1, [1, 0, 0, 1]);
    bytes.extend(raw_opt(4096, 255, &[]));
    let reply = parse_reply(&udp_raw(server.addr(), &bytes).expect("reply"));
    assert_eq!(u16::from(reply.metadata.response_code), 16, "BADVERS");

    // Many unknown options of every length, version 0: answered normally.
    let big = [0x55; 300];
    let options: Vec<(u16, &[u8])> = (0..20u16)
        .map(|i| (65001 + i, &big[..usize::from(i) * 15]))
        .collect();
    let mut bytes = raw_query(0x6902, &wire_name(API), 1, 1, [1, 0, 0, 1]);
    bytes.extend(raw_opt(1232, 0, &options));
    for raw in both(&server, &bytes) {
        let reply = parse_reply(&raw);
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert_eq!(addresses(&reply).len(), 3);
        assert!(reply.edns.is_some());
    }

    // An option whose length runs past the record: the body does not parse.
    let mut bytes = raw_query(0x6903, &wire_name(API), 1, 1, [1, 0, 0, 1]);
    let mut opt = raw_opt(1232, 0, &[(10, b"12345678")]);
    let length_at = opt.len() - 8 - 2;
    opt[length_at..length_at + 2].copy_from_slice(&200u16.to_be_bytes());
    bytes.extend(opt);
    for raw in both(&server, &bytes) {
        assert_format_error(&raw, 0x6903, "option past the record");
    }

    // OPT outside the additional section.
    let mut bytes = raw_query(0x6904, &wire_name(API), 1, 1, [1, 1, 0, 0]);
    bytes.extend(raw_opt(1232, 0, &[]));
    assert_format_error(
        &udp_raw(server.addr(), &bytes).expect("reply"),
        0x6904,
        "OPT in the answer section",
    );

    // Three OPT records.
    let mut bytes = raw_query(0x6905, &wire_name(API), 1, 1, [1, 0, 0, 3]);
    for _ in 0..3 {
        bytes.extend(raw_opt(1232, 0, &[]));
    }
    for raw in both(&server, &bytes) {
        assert_format_error(&raw, 0x6905, "three OPT records");
    }
    assert_still_serving(&server);
}

#[test]
fn responses_get_no_reply_over_tcp_either() {
    let server = server();
    let mut response = query(API, RecordType::A, None);
    response.metadata.message_type = MessageType::Response;
    let mut stream = tcp_connect(server.addr());
    tcp_send(&mut stream, &response.to_vec().unwrap());
    assert!(
        wait_closed(&mut stream, Duration::from_secs(3)).is_some(),
        "a stream of responses is not DNS: closed without a reply"
    );
    // A response that would be a format error if it were a query: still no reply, no loop.
    let mut bytes = raw_header(0x6a00, 0x8000, [1, 0, 0, 0]);
    bytes.extend_from_slice(&[0xc0, 0x02, 0, 1, 0, 1]);
    assert_eq!(udp_reply_before_sentinel(server.addr(), &bytes), None);
    // A response carrying an error rcode (what a reflection loop would bounce back).
    let formerr = raw_header(0x6a01, 0x8001, [0, 0, 0, 0]);
    assert_eq!(udp_reply_before_sentinel(server.addr(), &formerr), None);
    assert_still_serving(&server);
}

#[test]
fn truncated_headers_over_tcp_close_the_connection() {
    let server = server();
    for length in [1, 6, 11] {
        let mut stream = tcp_connect(server.addr());
        tcp_send(&mut stream, &vec![0; length]);
        assert!(
            wait_closed(&mut stream, Duration::from_secs(3)).is_some(),
            "a {length}-byte message"
        );
    }
    assert_still_serving(&server);
}

/// A query for `name` padded with an EDNS option to exactly `size` bytes.
fn padded_query(id: u16, name: &str, size: usize) -> Vec<u8> {
    let mut bytes = raw_query(id, &wire_name(name), 1, 1, [1, 0, 0, 1]);
    // OPT: 11 bytes plus 4 for the option header.
    let padding = size - bytes.len() - 11 - 4;
    bytes.extend(raw_opt(1232, 0, &[(12, &vec![0; padding])]));
    assert_eq!(bytes.len(), size);
    bytes
}

#[test]
fn largest_tcp_messages_are_read_whole_and_answered() {
    let server = server();
    let mut stream = tcp_connect(server.addr());
    // A 65535-byte query (EDNS padding), then a 65535-byte message of garbage after a valid
    // header, then an ordinary query: all on one connection.
    let largest = padded_query(0x6b00, API, 65_535);
    tcp_send(&mut stream, &largest);
    let reply = parse_reply(&tcp_read(&mut stream).expect("the largest query is answered"));
    assert_eq!(reply.metadata.id, 0x6b00);
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addresses(&reply).len(), 3);

    let mut garbage = raw_header(0x6b01, 0, [1, 0, 0, 0]);
    garbage.resize(65_535, 0xee);
    tcp_send(&mut stream, &garbage);
    assert_format_error(
        &tcp_read(&mut stream).expect("a reply"),
        0x6b01,
        "64 KiB of garbage",
    );

    let ordinary = query(API, RecordType::A, None);
    tcp_send(&mut stream, &ordinary.to_vec().unwrap());
    let reply = parse_reply(&tcp_read(&mut stream).expect("then an ordinary query"));
    assert_eq!(reply.metadata.id, ordinary.metadata.id);

    // The largest message written in small pieces, quickly: read whole.
    let mut stream = tcp_connect(server.addr());
    let mut framed = (largest.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&largest);
    for piece in framed.chunks(1000) {
        stream.write_all(piece).unwrap();
    }
    assert!(tcp_read(&mut stream).is_some(), "64 KiB in pieces");
    assert_still_serving(&server);
}

#[test]
fn largest_udp_datagrams_get_small_answers() {
    let server = server();
    // The largest UDP payload IPv4 carries.
    let largest = padded_query(0x6c00, API, 65_507);
    let raw = udp_raw(server.addr(), &largest).expect("a reply");
    assert!(raw.len() <= 1232, "{} bytes", raw.len());
    let reply = parse_reply(&raw);
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addresses(&reply).len(), 3);

    // Many long questions in one datagram (~25 KB): a format error that echoes nothing it
    // cannot fit in 512 bytes, so that the answer is never larger than the query allows.
    let mut bytes = raw_header(0x6c01, 0, [100, 0, 0, 0]);
    for i in 0..100 {
        let mut name = Vec::new();
        for _ in 0..3 {
            name.push(63);
            name.extend_from_slice(&[b'a' + (i % 26) as u8; 63]);
        }
        name.push(0);
        bytes.extend_from_slice(&name);
        bytes.extend_from_slice(&[0, 1, 0, 1]);
    }
    let raw = udp_raw(server.addr(), &bytes).expect("a reply");
    assert!(raw.len() <= 512, "{} bytes", raw.len());
    assert_format_error(&raw, 0x6c01, "100 questions");
    // With EDNS, the OPT still comes back (it carries the extended rcode).
    let mut bytes = raw_header(0x6c02, 0, [50, 0, 0, 1]);
    for _ in 0..50 {
        bytes.extend_from_slice(&wire_name(
            "a-rather-long-label-to-fill-the-packet.example.org.",
        ));
        bytes.extend_from_slice(&[0, 1, 0, 1]);
    }
    bytes.extend(raw_opt(1232, 0, &[]));
    let raw = udp_raw(server.addr(), &bytes).expect("a reply");
    assert!(raw.len() <= 1232, "{} bytes", raw.len());
    let reply = parse_reply(&raw);
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
    assert!(reply.edns.is_some());
    assert_still_serving(&server);
}

#[test]
fn a_burst_of_garbage_does_not_stop_the_server() {
    let server = server();
    let target: SocketAddr = server.addr();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // Deterministic pseudo-random datagrams: a valid-looking header with random flags and
    // counts, then random bytes. Bounded in count and time.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let started = Instant::now();
    for _ in 0..3000 {
        let length = (next() % 600) as usize;
        let mut bytes: Vec<u8> = (0..length).map(|_| next() as u8).collect();
        if bytes.len() > 2 {
            bytes[2] &= 0x7f; // a query, so that most are answered
        }
        let _ = socket.send_to(&bytes, target);
        if started.elapsed() > Duration::from_secs(5) {
            break;
        }
    }
    // The burst overflows the socket's receive queue, so the first queries after it may be
    // dropped by the kernel, as under any flood; a client that retries is answered at once.
    let message = query(API, RecordType::A, Some(1232));
    let bytes = message.to_vec().unwrap();
    let reply = (0..20)
        .find_map(|_| udp_raw_timeout(target, &bytes, Duration::from_millis(250)))
        .expect("answered within a few retries");
    let reply: Message = parse_reply(&reply);
    assert_eq!(reply.metadata.id, message.metadata.id);
    assert_eq!(addresses(&reply).len(), 3);
    assert_still_serving(&server);
}

/// Issue 19: an UPDATE whose header claims 18 zones, with 18 zone entries, sent over UDP without
/// OPT, was answered REFUSED with every zone echoed: 555 bytes, over the 512 the client accepts.
/// RFC 2136 section 3.1.1 wants exactly one zone: it is a format error, the header alone, over
/// UDP and TCP alike; and an UPDATE with one zone still gets it echoed.
#[test]
fn an_update_with_many_zones_is_a_format_error_within_512_bytes() {
    const UPDATE: u16 = 5 << 11;
    let server = server();
    let zone = |i: usize| wire_name(&format!("z{i:02}{}.k8s.example.com.", "a".repeat(20)));
    let mut many = raw_header(0x1919, UPDATE, [18, 0, 0, 0]);
    for i in 0..18 {
        many.extend_from_slice(&zone(i));
        many.extend_from_slice(&[0, 6, 0, 1]);
    }
    assert!(many.len() > 512);
    for (raw, transport) in both(&server, &many).into_iter().zip(["udp", "tcp"]) {
        assert_eq!(raw.len(), 12, "{transport}: the header alone");
        assert_format_error(&raw, 0x1919, transport);
        assert_eq!(
            parse_reply(&raw).metadata.op_code,
            hickory_proto::op::OpCode::Update
        );
    }

    let mut one = raw_header(0x1920, UPDATE, [1, 0, 0, 0]);
    one.extend_from_slice(&zone(0));
    one.extend_from_slice(&[0, 6, 0, 1]);
    for (raw, transport) in both(&server, &one).into_iter().zip(["udp", "tcp"]) {
        assert!(raw.len() <= 512, "{transport}: {} bytes", raw.len());
        let reply = parse_reply(&raw);
        // Unsigned: refused (RFC 2136 section 3.3), with its zone echoed.
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::Refused,
            "{transport}"
        );
        assert_eq!(reply.queries.len(), 1, "{transport}");
    }
    assert_still_serving(&server);
}
