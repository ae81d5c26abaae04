//! DNS cookies (RFC 7873, RFC 9018) on the fast path, and BADCOOKIE: a differential property
//! test (whenever the fast path answers a query with a cookie, its answer equals the general
//! path's, cookie included, at a fixed clock), the cases the fast path must leave to the general
//! path, and the real tools (`dig +cookie`, `kdig +cookie`) against a server that requires
//! cookies, and against the rate limiter's slip.

use std::net::IpAddr;

use apidns::dns::cookie::{ClientCookie, CookieSecrets};
use apidns::dns::{Extensions, Transport, fast, respond_general_with, respond_limited};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::Record;
use proptest::prelude::*;

use crate::fast_path::is_shifted_by_one;

/// The clock every answer here is made at.
const NOW: u64 = 1_800_000_000;
const CLIENT: [u8; 8] = [0x24, 0x64, 0xc4, 0xab, 0xcf, 0x10, 0xc9, 0x57];

fn secrets() -> CookieSecrets {
    CookieSecrets {
        current: [7; 16],
        previous: Some([9; 16]),
    }
}

/// Built once: a snapshot takes longer to build than hundreds of answers.
fn snapshot() -> &'static apidns::zone::Snapshot {
    static SNAPSHOT: std::sync::OnceLock<apidns::zone::Snapshot> = std::sync::OnceLock::new();
    SNAPSHOT.get_or_init(testkit::snapshot::fast_path)
}

fn client_ip() -> IpAddr {
    "192.0.2.99".parse().expect("an address")
}

/// The COOKIE option a query carries, by kind.
#[derive(Debug, Clone, Copy)]
enum CookieKind {
    None,
    ClientOnly,
    Valid,
    /// Made with the previous secret: still valid.
    PreviousSecret,
    /// Made with a secret the server never had.
    UnknownSecret,
    /// Made more than an hour ago.
    Old,
    /// A server cookie of a length apidns never makes (valid option length, 8 + 12).
    OddLength,
    /// An option length RFC 7873 calls malformed (FORMERR on the general path).
    Malformed,
}

const COOKIE_KINDS: [CookieKind; 8] = [
    CookieKind::None,
    CookieKind::ClientOnly,
    CookieKind::Valid,
    CookieKind::PreviousSecret,
    CookieKind::UnknownSecret,
    CookieKind::Old,
    CookieKind::OddLength,
    CookieKind::Malformed,
];

fn made_with(secret: [u8; 16], at: u64) -> Vec<u8> {
    let server = CookieSecrets {
        current: secret,
        previous: None,
    };
    let cookie = ClientCookie::read(&CLIENT).expect("a client cookie");
    server.answer(&cookie, client_ip(), at)
}

fn cookie_data(kind: CookieKind) -> Option<Vec<u8>> {
    match kind {
        CookieKind::None => None,
        CookieKind::ClientOnly => Some(CLIENT.to_vec()),
        CookieKind::Valid => Some(made_with([7; 16], NOW - 10)),
        CookieKind::PreviousSecret => Some(made_with([9; 16], NOW - 10)),
        CookieKind::UnknownSecret => Some(made_with([1; 16], NOW - 10)),
        CookieKind::Old => Some(made_with([7; 16], NOW - 4000)),
        CookieKind::OddLength => Some([&CLIENT[..], &[5; 12]].concat()),
        CookieKind::Malformed => Some(vec![5; 12]),
    }
}

const NAMES: [&str; 8] = [
    "api.k8s.example.com.",
    "API.K8s.Example.COM.",
    "two.k8s.example.com.",
    "v4only.k8s.example.com.",
    "empty.k8s.example.com.",
    "nope.k8s.example.com.",
    "a.b.nope.k8s.example.com.",
    "www.k8s.example.com.",
];

/// A query in wire format: `name`, type `qtype`, with an OPT record (payload size, DO bit) whose
/// options are an empty NSID when `nsid`, then the COOKIE option when `cookie`.
fn query(
    id: u16,
    name: &str,
    qtype: u16,
    edns: (u16, bool),
    nsid: bool,
    cookie: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = id.to_be_bytes().to_vec();
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]);
    for label in name.trim_end_matches('.').split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    let mut options = Vec::new();
    if nsid {
        options.extend_from_slice(&[0, 3, 0, 0]);
    }
    if let Some(cookie) = cookie {
        options.extend_from_slice(&[0, 10]);
        options.extend_from_slice(&(cookie.len() as u16).to_be_bytes());
        options.extend_from_slice(cookie);
    }
    out.push(0);
    out.extend_from_slice(&41u16.to_be_bytes());
    out.extend_from_slice(&edns.0.to_be_bytes());
    out.extend_from_slice(&[0, 0, if edns.1 { 0x80 } else { 0 }, 0]);
    out.extend_from_slice(&(options.len() as u16).to_be_bytes());
    out.extend_from_slice(&options);
    out
}

fn extensions<'a>(secrets: &'a CookieSecrets, require: bool) -> Extensions<'a> {
    Extensions {
        nsid: Some(b"edge-1"),
        cookies: Some(secrets),
        client: Some(client_ip()),
        require_server_cookie: require,
        now: Some(NOW),
        ..Default::default()
    }
}

fn records(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| format!("{} {} {}", r.name.to_lowercase(), r.ttl, r.data))
        .collect()
}

/// Asserts that the fast path's answer in `fast_bytes` is the general path's `general_bytes`:
/// the same header, question bytes, records, and OPT record (the cookie included).
fn assert_same_answer(fast_bytes: &[u8], general_bytes: &[u8], question_len: usize, context: &str) {
    let fast = Message::from_vec(fast_bytes).expect("fast answer parses");
    let general = Message::from_vec(general_bytes).expect("general answer parses");
    assert_eq!(fast.metadata, general.metadata, "{context}");
    assert_eq!(
        fast_bytes[12..12 + question_len],
        general_bytes[12..12 + question_len],
        "{context}"
    );
    // The general path answered first, so the fast path's window is one member further on.
    let (fast_records, general_records) = (records(&fast.answers), records(&general.answers));
    assert_eq!(fast_records.len(), general_records.len(), "{context}");
    assert!(
        is_shifted_by_one(&general_records, &fast_records),
        "{context}\nfast {fast_records:?}\ngeneral {general_records:?}"
    );
    assert_eq!(
        records(&fast.authorities),
        records(&general.authorities),
        "{context}"
    );
    assert_eq!(fast.additionals, general.additionals, "{context}");
    // The OPT record, its options' data included (the cookie, the NSID).
    assert_eq!(fast.edns, general.edns, "{context}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Whenever the fast path answers a query (with or without a client cookie, with valid,
    /// rotated-out, unknown, old or odd server cookies, cookies required or not, over UDP and
    /// TCP), the general path gives the same answer and the same verdict on the address.
    #[test]
    fn fast_answers_with_cookies_equal_general_answers(
        name in 0..NAMES.len(),
        aaaa in any::<bool>(),
        payload in prop::sample::select(vec![512u16, 1232, 4096]),
        dnssec_ok in any::<bool>(),
        nsid in any::<bool>(),
        kind in 0..COOKIE_KINDS.len(),
        require in any::<bool>(),
        tcp in any::<bool>(),
        id in any::<u16>(),
    ) {
        let snapshot = snapshot();
        let secrets = secrets();
        let extensions = extensions(&secrets, require);
        let kind = COOKIE_KINDS[kind];
        let cookie = cookie_data(kind);
        let qtype = if aaaa { 28 } else { 1 };
        let bytes = query(id, NAMES[name], qtype, (payload, dnssec_ok), nsid, cookie.as_deref());
        let transport = if tcp { Transport::Tcp } else { Transport::Udp };
        let mut out = Vec::new();
        let context = format!("{} {qtype} {kind:?} require {require} {transport:?}", NAMES[name]);
        let general = respond_general_with(snapshot, &bytes, transport, 1232, &extensions)
            .expect("the general path answers every query");
        match fast::answer_with(snapshot, &bytes, transport, 1232, &extensions, &mut out) {
            Some(fast) => {
                let question_len = NAMES[name].len() + 1 + 4;
                assert_same_answer(&out, &general.bytes, question_len, &context);
                prop_assert_eq!(fast.address_proven, general.address_proven, "{}", context);
                prop_assert_eq!(fast.rcode, general.rcode, "{}", context);
            }
            None => {
                // What the fast path must leave: a malformed option (FORMERR), and a required
                // cookie missing over UDP (BADCOOKIE).
                let declined_for_cookie = matches!(kind, CookieKind::Malformed)
                    || (require && !tcp && !matches!(kind, CookieKind::None | CookieKind::Valid | CookieKind::PreviousSecret));
                if declined_for_cookie {
                    let expected = if matches!(kind, CookieKind::Malformed) {
                        ResponseCode::FormErr
                    } else {
                        ResponseCode::BADCOOKIE
                    };
                    prop_assert_eq!(general.rcode, expected, "{}", context);
                }
            }
        }
    }
}

/// The cookie shapes resolvers send every query with stay on the fast path.
#[test]
fn the_fast_path_answers_client_and_valid_server_cookies() {
    let snapshot = testkit::snapshot::fast_path();
    let secrets = secrets();
    let mut out = Vec::new();
    for require in [false, true] {
        let extensions = extensions(&secrets, require);
        // Whether the fast path answers a query with `kind`'s cookie, and if so whether it
        // found the address proven.
        let mut proven = |kind: CookieKind, transport| {
            let bytes = query(
                1,
                NAMES[0],
                1,
                (1232, false),
                false,
                cookie_data(kind).as_deref(),
            );
            fast::answer_with(&snapshot, &bytes, transport, 1232, &extensions, &mut out)
                .map(|reply| reply.address_proven)
        };
        for kind in [CookieKind::Valid, CookieKind::PreviousSecret] {
            let proven = proven(kind, Transport::Udp)
                .unwrap_or_else(|| panic!("{kind:?} require {require}: the fast path answers"));
            assert!(proven, "{kind:?}");
        }
        for kind in [
            CookieKind::ClientOnly,
            CookieKind::UnknownSecret,
            CookieKind::Old,
        ] {
            let answered = proven(kind, Transport::Udp);
            assert_eq!(answered.is_some(), !require, "{kind:?} require {require}");
            // Over TCP, cookies are never required.
            let proven =
                proven(kind, Transport::Tcp).unwrap_or_else(|| panic!("{kind:?} over TCP"));
            assert!(!proven, "{kind:?}");
        }
    }
}

/// BADCOOKIE (RFC 7873 section 5.2.3): the question, no records, AA clear, and a fresh server
/// cookie for the client cookie sent, which then verifies.
#[test]
fn a_required_cookie_missing_over_udp_gets_badcookie_with_a_fresh_cookie() {
    let snapshot = testkit::snapshot::fast_path();
    let secrets = secrets();
    let extensions = extensions(&secrets, true);
    let bytes = query(7, NAMES[0], 1, (1232, false), false, Some(&CLIENT));
    let reply = respond_general_with(&snapshot, &bytes, Transport::Udp, 1232, &extensions)
        .expect("an answer");
    assert_eq!(reply.rcode, ResponseCode::BADCOOKIE);
    let message = Message::from_vec(&reply.bytes).expect("parses");
    assert_eq!(message.metadata.response_code, ResponseCode::BADCOOKIE);
    assert!(!message.metadata.authoritative);
    assert!(message.answers.is_empty());
    assert_eq!(message.queries.len(), 1);
    let cookie = match message
        .edns
        .as_ref()
        .and_then(|edns| edns.option(hickory_proto::rr::rdata::opt::EdnsCode::Cookie))
    {
        Some(hickory_proto::rr::rdata::opt::EdnsOption::Unknown(_, data)) => data.clone(),
        other => panic!("no cookie: {other:?}"),
    };
    assert_eq!(cookie[..8], CLIENT);
    let returned = ClientCookie::read(&cookie).expect("a full cookie");
    assert!(secrets.verifies(&returned, client_ip(), NOW));
    // The retry with it is answered, on the fast path.
    let retry = query(8, NAMES[0], 1, (1232, false), false, Some(&cookie));
    let mut out = Vec::new();
    let fast = fast::answer_with(
        &snapshot,
        &retry,
        Transport::Udp,
        1232,
        &extensions,
        &mut out,
    )
    .expect("the fast path answers the retry");
    assert!(fast.address_proven);
    assert_eq!(fast.rcode, ResponseCode::NoError);
}

/// The rate limiter's slip: BADCOOKIE with a fresh cookie for a client that sent a client
/// cookie (Knot's and BIND's behaviour), the question alone with TC=1 otherwise.
#[test]
fn the_slip_is_badcookie_for_a_cookie_client_and_tc_otherwise() {
    let snapshot = testkit::snapshot::fast_path();
    let secrets = secrets();
    let extensions = extensions(&secrets, false);
    let with_cookie = query(9, NAMES[0], 1, (1232, false), false, Some(&CLIENT));
    let slip = respond_limited(&snapshot, &with_cookie, Transport::Udp, 1232, &extensions)
        .expect("a slip");
    let message = Message::from_vec(&slip.bytes).expect("parses");
    assert_eq!(message.metadata.response_code, ResponseCode::BADCOOKIE);
    assert!(!message.metadata.truncation);
    assert!(message.answers.is_empty());
    let without = query(10, NAMES[0], 1, (1232, false), false, None);
    let slip =
        respond_limited(&snapshot, &without, Transport::Udp, 1232, &extensions).expect("a slip");
    let message = Message::from_vec(&slip.bytes).expect("parses");
    assert_eq!(message.metadata.response_code, ResponseCode::NoError);
    assert!(message.metadata.truncation);
    assert!(message.answers.is_empty());
    assert!(
        slip.bytes.len() <= without.len() + 11 + 10,
        "no larger than the query and our OPT"
    );
}

/// The real server and the real tools.
mod with_tools {
    use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
    use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
    use hickory_proto::rr::{Name, RecordType, TSigner};
    use testkit::*;

    use crate::edns::ask;

    const KEY_NAME: &str = "ops-key";
    const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0MTIzNDU=";

    /// A server with a pool `api`, the `ops-key` TSIG key, and `server_extra` in `[server]`.
    fn start(server_extra: &str) -> TestServer {
        let zone = format!("{ZONE_HEAD}\n[pool.api]\nmembers = [\"192.0.2.10\", \"192.0.2.11\"]\n");
        let mut spec = ServerSpec::zone(&zone);
        spec.server_extra = format!(
            "{server_extra}\n\n[[tsig]]\nname = \"{KEY_NAME}\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{SECRET}\"\n"
        );
        spec.probe = FAST_PROBE.to_string();
        TestServer::start(spec)
    }

    /// The hex value of dig's `; COOKIE: <hex> (good)` line.
    fn dig_cookie(output: &str) -> Option<String> {
        let line = output.lines().find(|line| line.starts_with("; COOKIE:"))?;
        let value = line
            .trim_start_matches("; COOKIE: ")
            .split_whitespace()
            .next()?;
        Some(value.to_string())
    }

    fn cookie_query(name: &str, cookie: &[u8]) -> Vec<u8> {
        let mut message = query(name, RecordType::A, Some(1232));
        let mut edns = message.edns.take().expect("an OPT record");
        edns.options_mut()
            .insert(EdnsOption::Unknown(10, cookie.to_vec()));
        message.edns = Some(edns);
        message.to_vec().expect("encodes")
    }

    fn cookie_of(reply: &Message) -> Option<Vec<u8>> {
        match reply.edns.as_ref()?.option(EdnsCode::Cookie)? {
            EdnsOption::Unknown(_, data) => Some(data.clone()),
            _ => None,
        }
    }

    #[test]
    #[cfg_attr(
        not(apidns_has_dig),
        ignore = "needs dig and kdig: apt-get install bind9-dnsutils knot-dnsutils, then cargo test --test it cookies::"
    )]
    fn required_cookies_with_dig_and_kdig() {
        let server = start("require_server_cookie = true");
        // dig's first query carries a client cookie alone: BADCOOKIE, and dig retries with
        // the server cookie it got, which is answered.
        let output = ask("dig", server.addr(), &["+cookie", API, "A"]);
        assert!(output.contains("BADCOOKIE, retrying"), "{output}");
        assert!(output.contains("status: NOERROR"), "{output}");
        assert!(output.contains("ANSWER: 2"), "{output}");
        let cookie = dig_cookie(&output).unwrap_or_else(|| panic!("no cookie:\n{output}"));
        assert_eq!(cookie.len(), 48, "{output}");
        // Without the retry, the BADCOOKIE answer itself: no records, a fresh server cookie.
        let output = ask("dig", server.addr(), &["+cookie", "+nobadcookie", API, "A"]);
        assert!(output.contains("status: BADCOOKIE"), "{output}");
        assert!(output.contains("ANSWER: 0"), "{output}");
        assert_eq!(dig_cookie(&output).map(|c| c.len()), Some(48), "{output}");
        // Sending the server cookie back (dig +cookie=<hex>) is answered at once.
        let output = ask(
            "dig",
            server.addr(),
            &[&format!("+cookie={cookie}"), "+nobadcookie", API, "A"],
        );
        assert!(output.contains("status: NOERROR"), "{output}");
        assert!(!output.contains("BADCOOKIE"), "{output}");
        // A forged server cookie is BADCOOKIE.
        let forged = format!("{}{}", &cookie[..40], "00000000");
        let output = ask(
            "dig",
            server.addr(),
            &[&format!("+cookie={forged}"), "+nobadcookie", API, "A"],
        );
        assert!(output.contains("status: BADCOOKIE"), "{output}");
        // No cookie at all: answered as usual (RFC 7873 section 5.2.1), as BIND does.
        let output = ask("dig", server.addr(), &["+nocookie", API, "A"]);
        assert!(output.contains("status: NOERROR"), "{output}");
        assert!(output.contains("ANSWER: 2"), "{output}");
        // Over TCP a client cookie alone is answered: TCP proves the address.
        let output = ask(
            "dig",
            server.addr(),
            &["+tcp", "+cookie", "+nobadcookie", API, "A"],
        );
        assert!(output.contains("status: NOERROR"), "{output}");
        // kdig: BADCOOKIE, then its retry with the server cookie is answered.
        let output = ask("kdig", server.addr(), &["+cookie", "+badcookie", API, "A"]);
        assert!(output.contains("status: NOERROR"), "{output}");
        assert!(output.contains("192.0.2.1"), "{output}");
        let output = ask(
            "kdig",
            server.addr(),
            &["+cookie", "+nobadcookie", API, "A"],
        );
        assert!(output.contains("status: BADCOOKIE"), "{output}");
    }

    #[test]
    fn cookies_are_not_required_by_default() {
        let server = start("");
        let reply =
            parse_reply(&udp_raw(server.addr(), &cookie_query(API, &[4; 8])).expect("a reply"));
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert_eq!(cookie_of(&reply).map(|c| c.len()), Some(24));
    }

    /// A rate-limited client that sent a client cookie gets BADCOOKIE and a fresh cookie in the
    /// slip; with it, it is proven and no longer limited.
    #[test]
    fn a_limited_cookie_client_gets_badcookie_then_is_answered_with_its_cookie() {
        let server = start("rrl = { responses_per_second = 1, slip = 1 }");
        let first = cookie_query(API, &[6; 8]);
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("a socket");
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .expect("a timeout");
        let mut slipped = None;
        let mut buffer = [0u8; 4096];
        for _ in 0..10 {
            socket.send_to(&first, server.addr()).expect("sent");
            let (length, _) = socket
                .recv_from(&mut buffer)
                .expect("every query gets a reply with slip 1");
            let reply = parse_reply(&buffer[..length]);
            assert!(
                !reply.metadata.truncation,
                "a cookie client's slip is BADCOOKIE, not TC"
            );
            if reply.metadata.response_code == ResponseCode::BADCOOKIE {
                assert!(reply.answers.is_empty());
                slipped = cookie_of(&reply);
                break;
            }
        }
        let cookie = slipped.expect("the burst was limited: a BADCOOKIE slip");
        assert_eq!(cookie.len(), 24);
        let proven = cookie_query(API, &cookie);
        for sent in 0..20 {
            socket.send_to(&proven, server.addr()).expect("sent");
            let (length, _) = socket.recv_from(&mut buffer).expect("a reply");
            let reply = parse_reply(&buffer[..length]);
            assert_eq!(
                reply.metadata.response_code,
                ResponseCode::NoError,
                "query {sent}"
            );
            assert_eq!(reply.answers.len(), 2, "query {sent}");
        }
    }

    /// RFC 8945 section 5.3: the slip (TC=1) to a signed query is signed; dig verifies it.
    #[test]
    #[cfg_attr(
        not(apidns_has_dig),
        ignore = "needs dig: apt-get install bind9-dnsutils, then cargo test --test it cookies::"
    )]
    fn the_slip_to_a_signed_query_is_signed() {
        let server = start("rrl = { responses_per_second = 1, slip = 1 }");
        let key = format!("hmac-sha256:{KEY_NAME}:{SECRET}");
        let mut truncated = 0;
        for _ in 0..6 {
            let output = ask(
                "dig",
                server.addr(),
                &["-y", &key, "+ignore", "+nocookie", API, "A"],
            );
            assert!(!output.contains("tsig verify failure"), "{output}");
            assert!(
                output.contains(";; TSIG PSEUDOSECTION:"),
                "signed: {output}"
            );
            truncated += usize::from(output.contains(" tc"));
        }
        assert!(truncated > 0, "some were slipped");
        // Raw: the slip carries a TSIG record.
        let signer = TSigner::new(
            data_encoding::BASE64
                .decode(SECRET.as_bytes())
                .expect("base64"),
            TsigAlgorithm::HmacSha256,
            Name::from_ascii(format!("{KEY_NAME}.")).expect("a key name"),
            300,
        )
        .expect("a signer");
        let mut message = Message::new(0x5151, MessageType::Query, OpCode::Query);
        message.add_query(Query::query(
            Name::from_ascii(API).expect("a name"),
            RecordType::A,
        ));
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        message.finalize(&signer, time).expect("signs");
        let bytes = message.to_vec().expect("encodes");
        let mut slips = 0;
        for _ in 0..6 {
            let reply = parse_reply(&udp_raw(server.addr(), &bytes).expect("slip 1 answers all"));
            if reply.metadata.truncation {
                assert!(reply.signature().is_some(), "the slip is signed");
                slips += 1;
            }
        }
        assert!(slips > 0);
    }
}
