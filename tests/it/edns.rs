//! What a server answers beyond its zone data, checked with the real tools against the real
//! binary: NSID (RFC 5001) with `dig +nsid` and `kdig +nsid`, TSIG-signed queries (RFC 8945)
//! with `dig -y` and hand-made bad signatures, and DNS cookies (RFC 7873, RFC 9018) with
//! `dig +cookie`, a malformed option, and the rate limiter letting a proven client through.

use std::net::SocketAddr;
use std::process::Command;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError};
use hickory_proto::rr::{Name, RecordType, TSigner};
use testkit::*;

const KEY_NAME: &str = "ops-key";
const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0MTIzNDU=";
const COOKIE_SECRET: &str = "0123456789abcdef0123456789abcdef";

/// A server with a pool `api` (members down: answered all the same), a large pool `big`, the
/// `ops-key` TSIG key, and `server_extra` in `[server]`.
fn start(server_extra: &str) -> TestServer {
    let zone = format!(
        "{ZONE_HEAD}\n[pool.api]\nmembers = [\"192.0.2.10\", \"192.0.2.11\"]\n\n[pool.big]\nmembers = [{}]\n",
        big_members(60)
    );
    let mut spec = ServerSpec::zone(&zone);
    spec.server_extra = format!(
        "{server_extra}\n\n[[tsig]]\nname = \"{KEY_NAME}\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{SECRET}\"\n"
    );
    spec.probe = FAST_PROBE.to_string();
    TestServer::start(spec)
}

/// Runs `tool` (dig or kdig) against `server` with `arguments`; its standard output.
pub(crate) fn ask(tool: &str, server: SocketAddr, arguments: &[&str]) -> String {
    let output = Command::new(tool)
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string()])
        .args(match tool {
            "kdig" => ["+timeout=5", "+retry=0"],
            _ => ["+time=5", "+tries=1"],
        })
        .args(arguments)
        .output()
        .unwrap_or_else(|error| panic!("{tool} runs: {error}"));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

#[test]
#[cfg_attr(
    not(apidns_has_dig),
    ignore = "needs dig and kdig: apt-get install bind9-dnsutils knot-dnsutils, then cargo test --test it edns::"
)]
fn nsid_is_returned_to_dig_and_kdig_on_both_paths_when_configured() {
    let server = start("nsid = \"apidns-1\"");
    // A pool answer and an NXDOMAIN (the fast path), a static record and an SOA (the general).
    for (name, qtype) in [
        (API, "A"),
        ("nope.k8s.example.com.", "A"),
        ("ns1.k8s.example.com.", "A"),
        ("k8s.example.com.", "SOA"),
    ] {
        for transport in ["+notcp", "+tcp"] {
            let output = ask("dig", server.addr(), &["+nsid", transport, name, qtype]);
            assert!(
                output.contains("; NSID: 61 70 69 64 6e 73 2d 31 (\"apidns-1\")"),
                "dig {name} {qtype} {transport}:\n{output}"
            );
        }
        let output = ask("kdig", server.addr(), &["+nsid", name, qtype]);
        assert!(
            output.contains("NSID: 617069646E732D31 \"apidns-1\""),
            "kdig {name} {qtype}:\n{output}"
        );
        // Not asked, not sent.
        let output = ask("dig", server.addr(), &[name, qtype]);
        assert!(!output.contains("NSID"), "dig {name} {qtype}:\n{output}");
    }
}

#[test]
#[cfg_attr(
    not(apidns_has_dig),
    ignore = "needs dig and kdig: apt-get install bind9-dnsutils knot-dnsutils, then cargo test --test it edns::"
)]
fn nsid_is_off_by_default_and_hex_is_read_as_bytes() {
    let server = start("");
    let output = ask("dig", server.addr(), &["+nsid", API, "A"]);
    assert!(output.contains("status: NOERROR"), "{output}");
    assert!(!output.contains("NSID"), "{output}");
    drop(server);
    let server = start("nsid = \"0x00ff10\"");
    let output = ask(
        "dig",
        server.addr(),
        &["+nsid", "nope.k8s.example.com.", "AAAA"],
    );
    assert!(output.contains("; NSID: 00 ff 10"), "{output}");
}

#[test]
fn the_fast_path_adds_the_nsid_itself() {
    let snapshot = testkit::snapshot::fast_path();
    let mut message = query(API, RecordType::A, Some(1232));
    let mut edns = message.edns.take().expect("an OPT record");
    edns.options_mut().insert(EdnsOption::NSID(
        hickory_proto::rr::rdata::opt::NSIDPayload::new(Vec::new()).expect("empty"),
    ));
    message.edns = Some(edns);
    let bytes = message.to_vec().expect("encodes");
    let mut out = Vec::new();
    let answered = apidns::dns::fast::answer_with(
        &snapshot,
        &bytes,
        apidns::dns::Transport::Udp,
        1232,
        &apidns::dns::Extensions {
            nsid: Some(b"fast-1"),
            ..Default::default()
        },
        &mut out,
    );
    assert!(answered.is_some(), "the fast path answers an NSID query");
    let reply = parse_reply(&out);
    let edns: &Edns = reply.edns.as_ref().expect("an OPT record");
    match edns.option(hickory_proto::rr::rdata::opt::EdnsCode::NSID) {
        Some(EdnsOption::NSID(payload)) => assert_eq!(payload.as_ref(), b"fast-1"),
        other => panic!("no NSID: {other:?}"),
    }
}

fn dig_key() -> String {
    format!("hmac-sha256:{KEY_NAME}:{SECRET}")
}

#[test]
#[cfg_attr(
    not(apidns_has_dig),
    ignore = "needs dig and kdig: apt-get install bind9-dnsutils knot-dnsutils, then cargo test --test it edns::"
)]
fn a_query_signed_with_dig_gets_an_answer_dig_verifies() {
    let server = start("");
    for transport in ["+notcp", "+tcp"] {
        for (name, qtype) in [
            (API, "A"),
            ("nope.k8s.example.com.", "A"),
            ("k8s.example.com.", "NS"),
        ] {
            let output = ask(
                "dig",
                server.addr(),
                &["-y", &dig_key(), transport, name, qtype],
            );
            assert!(
                output.contains("status: NOERROR") || output.contains("status: NXDOMAIN"),
                "{output}"
            );
            assert!(
                output.contains(";; TSIG PSEUDOSECTION:"),
                "{name} {transport}:\n{output}"
            );
            assert!(
                !output.contains("tsig verify failure"),
                "{name} {transport}:\n{output}"
            );
            assert!(
                output.contains("NOERROR"),
                "the TSIG record carries no error:\n{output}"
            );
        }
    }
    // A wrong secret: dig sees the server's BADSIG answer.
    let wrong = format!(
        "hmac-sha256:{KEY_NAME}:{}",
        "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldDEyMzQ1Njc="
    );
    let output = ask("dig", server.addr(), &["-y", &wrong, API, "A"]);
    assert!(output.contains("status: NOTAUTH"), "{output}");
}

#[test]
#[cfg_attr(
    not(apidns_has_dig),
    ignore = "needs dig and kdig: apt-get install bind9-dnsutils knot-dnsutils, then cargo test --test it edns::"
)]
fn a_signed_answer_too_large_for_udp_is_truncated_and_still_signed() {
    let server = start("");
    let name = "big.k8s.example.com.";
    let output = ask(
        "dig",
        server.addr(),
        &["-y", &dig_key(), "+bufsize=512", "+ignore", name, "A"],
    );
    assert!(output.contains(" tc"), "the answer is truncated:\n{output}");
    assert!(output.contains(";; TSIG PSEUDOSECTION:"), "{output}");
    assert!(!output.contains("tsig verify failure"), "{output}");
    // The same signed query over TCP gets every record.
    let output = ask("dig", server.addr(), &["-y", &dig_key(), "+tcp", name, "A"]);
    assert!(output.contains("ANSWER: 60"), "{output}");
    assert!(!output.contains("tsig verify failure"), "{output}");

    // Raw: the signed UDP answer never exceeds the client's 512 bytes.
    let message = signed_query(name, &signer(KEY_NAME, SECRET), now(), None);
    let reply = udp_raw(server.addr(), &message).expect("a reply");
    assert!(reply.len() <= 512, "{} bytes", reply.len());
    let reply = parse_reply(&reply);
    assert!(reply.metadata.truncation);
    assert!(reply.signature().is_some(), "a TC answer is signed");
}

fn signer(key: &str, secret: &str) -> TSigner {
    TSigner::new(
        data_encoding::BASE64
            .decode(secret.as_bytes())
            .expect("base64"),
        TsigAlgorithm::HmacSha256,
        Name::from_ascii(format!("{key}.")).expect("a key name"),
        300,
    )
    .expect("a signer")
}

/// A query for `name` A signed by `signer` at `time`, over UDP without EDNS; `corrupt` flips
/// the byte at that offset from the end (inside the MAC) after signing.
fn signed_query(name: &str, signer: &TSigner, time: u64, corrupt: Option<usize>) -> Vec<u8> {
    let mut message = Message::new(0x5151, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(
        Name::from_ascii(name).expect("a name"),
        RecordType::A,
    ));
    message.finalize(signer, time).expect("signs");
    let mut bytes = message.to_vec().expect("encodes");
    if let Some(back) = corrupt {
        let at = bytes.len() - back;
        bytes[at] ^= 0x55;
    }
    bytes
}

#[test]
fn bad_signatures_get_notauth_with_the_tsig_error() {
    let server = start("");
    let good = signer(KEY_NAME, SECRET);
    let cases = [
        (
            "unknown key",
            signed_query(API, &signer("other-key", SECRET), now(), None),
            TsigError::BadKey,
        ),
        // The MAC ends 6 bytes before the end (original ID, error, other length follow it).
        (
            "bad MAC",
            signed_query(API, &good, now(), Some(10)),
            TsigError::BadSig,
        ),
        (
            "an hour ago",
            signed_query(API, &good, now() - 3600, None),
            TsigError::BadTime,
        ),
    ];
    for (case, query, error) in cases {
        let reply = parse_reply(&udp_raw(server.addr(), &query).expect("a reply"));
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NotAuth,
            "{case}"
        );
        assert!(reply.answers.is_empty(), "{case}");
        let tsig = reply.signature().expect("a TSIG record");
        assert_eq!(tsig.data.error, Some(error), "{case}");
    }
    // BADTIME is signed, over the request's MAC: the client can check the server's time.
    let query = signed_query(API, &good, now() - 3600, None);
    let reply = udp_raw(server.addr(), &query).expect("a reply");
    let request_mac = Message::from_vec(&query)
        .expect("parses")
        .signature()
        .expect("signed")
        .data
        .mac
        .clone();
    let parsed = parse_reply(&reply);
    let signature = parsed.signature().expect("signed");
    assert_eq!(signature.data.error, Some(TsigError::BadTime));
    let tbs = good
        .encode_response_tbs(&request_mac, &unsigned(&reply, signature), &signature.data)
        .expect("encodes");
    good.verify(&tbs, &signature.data.mac)
        .expect("the BADTIME answer's MAC verifies");
    // A good signature still gets an answer.
    let reply = parse_reply(
        &udp_raw(server.addr(), &signed_query(API, &good, now(), None)).expect("a reply"),
    );
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(reply.answers.len(), 2);
}

/// `reply` as it was before `signature` (its last record, written uncompressed) was added.
fn unsigned(
    reply: &[u8],
    signature: &hickory_proto::rr::Record<hickory_proto::rr::rdata::tsig::TSIG>,
) -> Vec<u8> {
    use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
    let mut record = Vec::new();
    signature
        .emit(&mut BinEncoder::new(&mut record))
        .expect("encodes");
    let mut bytes = reply[..reply.len() - record.len()].to_vec();
    let count = u16::from_be_bytes([bytes[10], bytes[11]]) - 1;
    bytes[10..12].copy_from_slice(&count.to_be_bytes());
    bytes
}

/// The COOKIE line dig prints, e.g. `; COOKIE: 0102...a1b2 (good)`.
fn cookie_line(output: &str) -> Option<&str> {
    output.lines().find(|line| line.starts_with("; COOKIE:"))
}

#[test]
#[cfg_attr(
    not(apidns_has_dig),
    ignore = "needs dig and kdig: apt-get install bind9-dnsutils knot-dnsutils, then cargo test --test it edns::"
)]
fn dig_gets_a_server_cookie_and_a_replayed_one_is_good() {
    let server = start(&format!("cookie_secret = \"{COOKIE_SECRET}\""));
    let output = ask("dig", server.addr(), &["+cookie", API, "A"]);
    let line = cookie_line(&output).unwrap_or_else(|| panic!("no cookie:\n{output}"));
    assert!(line.ends_with("(good)"), "{line}");
    let value = line
        .trim_start_matches("; COOKIE: ")
        .split_whitespace()
        .next()
        .expect("a value");
    assert_eq!(
        value.len(),
        48,
        "client (8) and server (16) cookie: {value}"
    );
    assert_eq!(
        &value[16..24],
        "01000000",
        "RFC 9018 version 1, reserved 0: {value}"
    );
    // Replayed: the server accepts it and sends a fresh one for the same client cookie.
    let output = ask(
        "dig",
        server.addr(),
        &[&format!("+cookie={value}"), "ns1.k8s.example.com.", "A"],
    );
    let line = cookie_line(&output).unwrap_or_else(|| panic!("no cookie:\n{output}"));
    assert!(line.ends_with("(good)"), "{line}");
    assert!(line.contains(&value[..16]), "same client cookie: {line}");
    assert!(output.contains("status: NOERROR"), "{output}");
    // kdig too: it prints the client and server cookie, 24 bytes.
    let output = ask("kdig", server.addr(), &["+cookie", API, "A"]);
    let line = output
        .lines()
        .find(|line| line.starts_with(";; COOKIE: "))
        .unwrap_or_else(|| panic!("no cookie:\n{output}"));
    assert_eq!(line.trim_start_matches(";; COOKIE: ").len(), 48, "{line}");
}

/// A query for `name` A with EDNS and a COOKIE option carrying `cookie`.
fn cookie_query(name: &str, cookie: &[u8]) -> Vec<u8> {
    let mut message = query(name, RecordType::A, Some(1232));
    let mut edns = message.edns.take().expect("an OPT record");
    edns.options_mut()
        .insert(EdnsOption::Unknown(10, cookie.to_vec()));
    message.edns = Some(edns);
    message.to_vec().expect("encodes")
}

fn server_cookie(reply: &Message) -> Option<Vec<u8>> {
    match reply
        .edns
        .as_ref()?
        .option(hickory_proto::rr::rdata::opt::EdnsCode::Cookie)?
    {
        EdnsOption::Unknown(_, data) => Some(data.clone()),
        _ => None,
    }
}

#[test]
fn a_malformed_cookie_gets_formerr() {
    let server = start("");
    for length in [1usize, 7, 9, 15, 41] {
        let reply = udp_raw(server.addr(), &cookie_query(API, &vec![7; length])).expect("a reply");
        let reply = parse_reply(&reply);
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::FormErr,
            "{length} bytes"
        );
    }
    for length in [8usize, 16, 40] {
        let reply = parse_reply(
            &udp_raw(server.addr(), &cookie_query(API, &vec![7; length])).expect("a reply"),
        );
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{length} bytes"
        );
        let cookie = server_cookie(&reply).expect("a cookie back");
        assert_eq!(cookie.len(), 24, "{length} bytes");
        assert_eq!(cookie[..8], [7; 8]);
    }
}

#[test]
fn a_client_with_a_valid_server_cookie_is_not_rate_limited() {
    let server = start("rrl = { responses_per_second = 1, slip = 0 }");
    let first = parse_reply(&udp_raw(server.addr(), &cookie_query(API, &[3; 8])).expect("a reply"));
    let cookie = server_cookie(&first).expect("a server cookie");
    // With the cookie the server gave: every one of a burst is answered.
    let proven = cookie_query(API, &cookie);
    for sent in 0..30 {
        assert!(
            udp_raw_timeout(server.addr(), &proven, std::time::Duration::from_secs(2)).is_some(),
            "query {sent} with a valid server cookie was dropped"
        );
    }
    // Without it (a forged server cookie), the same burst is limited: some go unanswered.
    let mut forged = cookie.clone();
    forged[23] ^= 1;
    let forged = cookie_query(API, &forged);
    let answered = (0..30)
        .filter(|_| {
            udp_raw_timeout(
                server.addr(),
                &forged,
                std::time::Duration::from_millis(200),
            )
            .is_some()
        })
        .count();
    assert!(answered < 30, "every unproven query was answered");
}
