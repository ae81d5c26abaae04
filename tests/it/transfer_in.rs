//! Zone transfers into apidns (the secondary's side, `apidns::transfer::incoming`), against
//! real primaries on loopback: Debian's Knot (`knotd`) and apidns itself. The first fetch is an
//! AXFR; after an `nsupdate` to the primary, an IXFR from the copy brings exactly the new
//! version; a wrong key, a missing key and another zone bring an error and no copy.

use std::net::SocketAddr;
use std::time::Duration;

use apidns::config::TsigKey;
use apidns::transfer::incoming::{FetchError, Fetched, ZoneCopy, fetch, soa_serial};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{Name, RecordType};
use testkit::peers::{PeerKey, Primary, PrimaryZone, axfr, nsupdate};
use testkit::*;

const ORIGIN: &str = "k8s.example.com.";
const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0MTIzNDU=";
/// The secret's bytes, for apidns's own key type.
const SECRET_BYTES: &[u8] = b"secret-secret-secret-secret12345";
/// Far more than a transfer of a few records takes on loopback.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a primary may take to start answering.
const START_LIMIT: Duration = Duration::from_secs(20);

const PRIMARY_ZONE: &str = "$ORIGIN k8s.example.com.
$TTL 60
@    IN SOA ns1 hostmaster 1 3600 600 86400 5
@    IN NS  ns1
ns1  IN A   127.0.0.53
api  IN A   192.0.2.11
api  IN A   192.0.2.12
www  IN TXT \"static data\"
";

fn peer_key(name: &str) -> PeerKey {
    PeerKey {
        name: name.to_string(),
        algorithm: "hmac-sha256".to_string(),
        secret: SECRET.to_string(),
    }
}

fn tsig_key(name: &str, secret: &[u8]) -> TsigKey {
    TsigKey {
        name: Name::from_ascii(name).expect("a key name"),
        algorithm: TsigAlgorithm::HmacSha256,
        secret: secret.to_vec(),
    }
}

fn origin() -> Name {
    Name::from_ascii(ORIGIN).expect("the origin")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// `fetch` run to its end.
fn fetch_now(
    primary: SocketAddr,
    key: Option<&TsigKey>,
    zone: &str,
    have: Option<&ZoneCopy>,
) -> Result<Fetched, FetchError> {
    let zone = Name::from_ascii(zone).expect("a zone name");
    runtime().block_on(fetch(primary, key, &zone, have, TIMEOUT))
}

/// `dig`'s records (`testkit::peers::axfr`) as [`as_text`] spells them: hickory prints TXT
/// data without quotes.
fn dig_axfr(server: SocketAddr) -> Vec<String> {
    let mut records: Vec<String> = axfr(server, ORIGIN, Some(&peer_key("xfr-key")))
        .expect("dig AXFR")
        .iter()
        .map(|record| record.replace('"', ""))
        .collect();
    records.sort();
    records
}

/// Each record of `copy`, SOA first, as `dig` prints it normalized (`testkit::peers::axfr`).
fn as_text(copy: &ZoneCopy) -> Vec<String> {
    let mut records: Vec<String> = std::iter::once(&copy.soa)
        .chain(&copy.records)
        .map(|record| {
            format!(
                "{} {} in {} {}",
                record.name,
                record.ttl,
                record.record_type(),
                record.data
            )
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_lowercase()
        })
        .collect();
    records.sort();
    records
}

/// A primary (`Primary::knot` or `Primary::bind`) serving [`PRIMARY_ZONE`] on a free port,
/// answering.
fn start_primary(start: impl FnOnce(&PrimaryZone, u16) -> Primary) -> Primary {
    let zone = PrimaryZone {
        origin: ORIGIN.to_string(),
        zone_file: PRIMARY_ZONE.to_string(),
        key: peer_key("xfr-key"),
        notify: Vec::new(),
    };
    let primary = start(&zone, free_port());
    let answering = wait_until(START_LIMIT, || {
        testkit::peers::soa_serial(primary.address, ORIGIN).is_some()
    });
    assert!(
        answering.is_some(),
        "{} did not answer:\n{}",
        primary.kind,
        primary.log_text()
    );
    primary
}

/// The first fetch from `primary` is an AXFR, equal to `dig`'s; with nothing changed an IXFR
/// says so; after an `nsupdate` an IXFR brings exactly what a new AXFR brings: as differences
/// when `incremental`, else as the whole zone in AXFR form (RFC 1995 section 4).
fn axfr_then_ixfr_after_an_update(primary: &Primary, incremental: bool) {
    let key = tsig_key("xfr-key.", SECRET_BYTES);
    let failed =
        |what: &str| -> String { format!("{what} from {}:\n{}", primary.kind, primary.log_text()) };
    let Ok(Fetched::Axfr(copy)) = fetch_now(primary.address, Some(&key), ORIGIN, None) else {
        panic!("{}", failed("no AXFR"));
    };
    assert_eq!(copy.serial(), 1);
    assert_eq!(as_text(&copy), dig_axfr(primary.address));
    assert!(
        copy.records
            .iter()
            .all(|record| record.record_type() != RecordType::SOA)
    );

    // Nothing changed: the IXFR says so.
    assert_eq!(
        fetch_now(primary.address, Some(&key), ORIGIN, Some(&copy)).expect("an IXFR"),
        Fetched::UpToDate { serial: 1 }
    );
    let serial = runtime().block_on(soa_serial(primary.address, Some(&key), &origin(), TIMEOUT));
    assert_eq!(serial.expect("the SOA serial"), 1);

    nsupdate(
        primary.address,
        &peer_key("xfr-key"),
        "zone k8s.example.com.\nupdate delete api.k8s.example.com. A 192.0.2.12\n\
         update add api.k8s.example.com. 60 A 192.0.2.13\n\
         update add new.k8s.example.com. 60 TXT \"added\"",
    )
    .unwrap_or_else(|error| panic!("{}", failed(&format!("nsupdate: {error}"))));
    let updated = match fetch_now(primary.address, Some(&key), ORIGIN, Some(&copy)) {
        Ok(Fetched::Ixfr(updated)) if incremental => updated,
        Ok(Fetched::Axfr(updated)) if !incremental => updated,
        other => panic!("{}", failed(&format!("not the answer expected: {other:?}"))),
    };
    assert_eq!(updated.serial(), 2, "the update increments the serial");
    let expected = dig_axfr(primary.address);
    assert_eq!(as_text(&updated), expected);
    assert!(expected.iter().any(|r| r.contains("192.0.2.13")));
    assert!(!expected.iter().any(|r| r.contains("192.0.2.12")));
    // Incremental or whole, the same copy.
    let Ok(Fetched::Axfr(whole)) = fetch_now(primary.address, Some(&key), ORIGIN, None) else {
        panic!("{}", failed("no AXFR"));
    };
    assert_eq!(whole, updated);
}

#[test]
#[cfg_attr(
    not(all(apidns_has_knotd, apidns_has_dig, apidns_has_nsupdate)),
    ignore = "needs knotd, dig and nsupdate: apt-get install knot bind9-dnsutils"
)]
fn from_knot_by_axfr_then_by_ixfr_after_an_update() {
    let knot = start_primary(Primary::knot);
    axfr_then_ixfr_after_an_update(&knot, true);
    let log = knot.log_text();
    assert!(
        log.lines()
            .any(|line| line.contains("IXFR, outgoing") && line.contains("finished")),
        "knotd did not answer by IXFR:\n{log}"
    );
}

#[test]
#[cfg_attr(
    not(all(apidns_has_named, apidns_has_dig, apidns_has_nsupdate)),
    ignore = "needs named, dig and nsupdate: apt-get install bind9 bind9-dnsutils"
)]
fn from_bind_by_axfr_then_by_ixfr_after_an_update() {
    let named = start_primary(Primary::bind);
    axfr_then_ixfr_after_an_update(&named, true);
    let log = named.log_text();
    assert!(
        log.lines().any(|line| line.contains(": IXFR ended")),
        "named did not answer by IXFR:\n{log}"
    );
}

#[test]
#[cfg_attr(
    not(all(apidns_has_named, apidns_has_dig, apidns_has_nsupdate)),
    ignore = "needs named, dig and nsupdate: apt-get install bind9 bind9-dnsutils"
)]
fn from_bind_answering_ixfr_with_the_whole_zone() {
    // BIND's default ratio: the difference is larger than this small zone.
    let named = start_primary(|zone, port| Primary::bind_with(zone, port, ""));
    axfr_then_ixfr_after_an_update(&named, false);
    let log = named.log_text();
    assert!(
        log.lines()
            .any(|line| line.contains("AXFR-style IXFR ended")),
        "named did not answer the IXFR with the whole zone:\n{log}"
    );
}

#[test]
#[cfg_attr(
    not(all(apidns_has_knotd, apidns_has_dig)),
    ignore = "needs knotd and dig: apt-get install knot bind9-dnsutils"
)]
fn from_knot_a_wrong_key_a_missing_key_or_another_zone_bring_no_copy() {
    let knot = start_primary(Primary::knot);
    let key = tsig_key("xfr-key.", SECRET_BYTES);
    let wrong_secret = tsig_key("xfr-key.", b"not-the-secret-not-the-secret-00");
    let unknown_key = tsig_key("other-key.", SECRET_BYTES);
    for wrong in [&wrong_secret, &unknown_key] {
        match fetch_now(knot.address, Some(wrong), ORIGIN, None) {
            Err(error @ FetchError::BadTsig(_)) => assert_eq!(error.label(), "bad_tsig"),
            other => panic!("{wrong:?}: {other:?}"),
        }
    }
    match fetch_now(knot.address, None, ORIGIN, None) {
        Err(FetchError::Refused(code)) => assert_ne!(code, ResponseCode::NoError),
        other => panic!("unsigned: {other:?}"),
    }
    let other_zone = fetch_now(knot.address, Some(&key), "other.example.com.", None);
    assert!(other_zone.is_err(), "{other_zone:?}");
    // A primary that is not there.
    let nobody = SocketAddr::from(([127, 0, 0, 1], free_port()));
    match fetch_now(nobody, Some(&key), ORIGIN, None) {
        Err(error @ FetchError::Unreachable(_)) => assert_eq!(error.label(), "unreachable"),
        other => panic!("no primary: {other:?}"),
    }
}

/// apidns as the primary: its zone transferred to `xfr-key` and updated with `ops-key`, pool
/// `api` of two members, its history of versions (for IXFR) in `state`.
fn start_apidns_primary(state: &TempDir) -> TestServer {
    let zone = format!(
        "transfer = {{ keys = [\"xfr-key\"] }}\nupdate = {{ keys = [\"ops-key\"], allow = \"pool-members\" }}\n{}\
         refresh = 3600\n\n[pool.api]\nport = {}\nmembers = [\"127.0.0.11\", \"127.0.0.12\"]\n",
        zone_with_records(&["{ name = \"www\", type = \"TXT\", value = \"static data\" }"]),
        free_port(),
    );
    let mut spec = ServerSpec::zone(&zone);
    let mut tsig = String::new();
    for name in ["xfr-key", "ops-key"] {
        tsig.push_str(&format!(
            "\n[[tsig]]\nname = \"{name}\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{SECRET}\"\n"
        ));
    }
    spec.server_extra = format!("state_dir = \"{}\"\n{tsig}", state.path().display());
    TestServer::start(spec)
}

#[test]
#[cfg_attr(
    not(all(apidns_has_dig, apidns_has_nsupdate)),
    ignore = "needs dig and nsupdate: apt-get install bind9-dnsutils"
)]
fn from_apidns_by_axfr_then_by_ixfr_after_an_update() {
    let state = TempDir::new("transfer-in-state");
    let primary = start_apidns_primary(&state);
    let key = tsig_key("xfr-key.", SECRET_BYTES);
    let Ok(Fetched::Axfr(copy)) = fetch_now(primary.addr(), Some(&key), ORIGIN, None) else {
        panic!("no AXFR from apidns");
    };
    assert_eq!(as_text(&copy), dig_axfr(primary.addr()));
    assert!(
        as_text(&copy)
            .iter()
            .any(|r| r == "api.k8s.example.com. 5 in a 127.0.0.12"),
        "{copy:#?}"
    );
    assert_eq!(
        fetch_now(primary.addr(), Some(&key), ORIGIN, Some(&copy)).expect("an IXFR"),
        Fetched::UpToDate {
            serial: copy.serial()
        }
    );

    nsupdate(
        primary.addr(),
        &peer_key("ops-key"),
        "update add api.k8s.example.com. 60 A 127.0.0.13",
    )
    .expect("nsupdate to apidns");
    // apidns records the new version in its transfer history just after the update is
    // answered (its NOTIFY task does): an IXFR in between gets the whole zone, as RFC 1995
    // section 4 allows. Asked again until the difference is there.
    let mut last = None;
    wait_until(START_LIMIT, || {
        last = Some(fetch_now(primary.addr(), Some(&key), ORIGIN, Some(&copy)));
        matches!(last, Some(Ok(Fetched::Ixfr(_))))
    });
    let updated = match last {
        Some(Ok(Fetched::Ixfr(updated))) => updated,
        other => panic!("no IXFR from apidns: {other:?}"),
    };
    assert_ne!(updated.serial(), copy.serial());
    let serial = runtime().block_on(soa_serial(primary.addr(), Some(&key), &origin(), TIMEOUT));
    assert_eq!(serial.expect("the SOA serial"), updated.serial());
    assert_eq!(as_text(&updated), dig_axfr(primary.addr()));
    assert!(
        as_text(&updated)
            .iter()
            .any(|r| r == "api.k8s.example.com. 5 in a 127.0.0.13"),
        "{updated:#?}"
    );
    let Ok(Fetched::Axfr(whole)) = fetch_now(primary.addr(), Some(&key), ORIGIN, None) else {
        panic!("no AXFR from apidns");
    };
    assert_eq!(whole, updated);
    // A key the zone is not transferred to.
    let refused = fetch_now(
        primary.addr(),
        Some(&tsig_key("ops-key.", SECRET_BYTES)),
        ORIGIN,
        None,
    );
    assert!(
        matches!(refused, Err(FetchError::Refused(ResponseCode::Refused))),
        "{refused:?}"
    );
}

/// A primary on loopback for one connection: it reads the request, writes the messages that
/// `answer` makes for the request's ID and closes its side; when there are none, it holds the
/// connection open, silent, until the client closes it.
fn scripted_primary(answer: impl FnOnce(u16) -> Vec<Vec<u8>> + Send + 'static) -> SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let address = listener.local_addr().expect("its address");
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        let mut head = [0u8; 4];
        if stream.read_exact(&mut head).is_err() {
            return;
        }
        let mut rest = vec![0u8; usize::from(u16::from_be_bytes([head[0], head[1]])) - 2];
        if stream.read_exact(&mut rest).is_err() {
            return;
        }
        let messages = answer(u16::from_be_bytes([head[2], head[3]]));
        for message in &messages {
            let length = u16::try_from(message.len()).expect("a TCP message");
            let _ = stream.write_all(&length.to_be_bytes());
            let _ = stream.write_all(message);
        }
        if !messages.is_empty() {
            let _ = stream.shutdown(std::net::Shutdown::Write);
        }
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink);
    });
    address
}

/// An unsigned AXFR answer message with `id` carrying `records`, the question when `first`.
fn axfr_message(id: u16, first: bool, records: Vec<hickory_proto::rr::Record>) -> Vec<u8> {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    let mut message = Message::new(id, MessageType::Response, OpCode::Query);
    message.metadata.authoritative = true;
    if first {
        message.queries = vec![Query::query(origin(), RecordType::AXFR)];
    }
    message.answers = records;
    message.to_vec().expect("encodes")
}

fn zone_records(serial: u32) -> (hickory_proto::rr::Record, Vec<hickory_proto::rr::Record>) {
    use hickory_proto::rr::rdata::{A, SOA};
    use hickory_proto::rr::{RData, Record};
    let soa = Record::from_rdata(
        origin(),
        60,
        RData::SOA(SOA::new(
            Name::from_ascii("ns1.k8s.example.com.").expect("a name"),
            Name::from_ascii("hostmaster.k8s.example.com.").expect("a name"),
            serial,
            3600,
            600,
            86400,
            5,
        )),
    );
    let api = Name::from_ascii("api.k8s.example.com.").expect("a name");
    let members = (1..=3)
        .map(|i| Record::from_rdata(api.clone(), 5, RData::A(A::new(192, 0, 2, i))))
        .collect();
    (soa, members)
}

#[test]
fn a_transfer_cut_before_its_closing_soa_brings_no_copy() {
    let whole = scripted_primary(|id| {
        let (soa, members) = zone_records(9);
        vec![
            axfr_message(id, true, [vec![soa.clone()], members].concat()),
            axfr_message(id, false, vec![soa]),
        ]
    });
    match fetch_now(whole, None, ORIGIN, None) {
        Ok(Fetched::Axfr(copy)) => assert_eq!((copy.serial(), copy.records.len()), (9, 3)),
        other => panic!("the whole transfer: {other:?}"),
    }
    let cut = scripted_primary(|id| {
        let (soa, members) = zone_records(9);
        vec![axfr_message(id, true, [vec![soa], members].concat())]
    });
    match fetch_now(cut, None, ORIGIN, None) {
        Err(error @ FetchError::Incomplete) => assert_eq!(error.label(), "incomplete"),
        other => panic!("the cut transfer: {other:?}"),
    }
}

#[test]
fn a_primary_that_never_answers_times_out() {
    let silent = scripted_primary(|_| Vec::new());
    let started = std::time::Instant::now();
    let result = runtime().block_on(fetch(
        silent,
        None,
        &origin(),
        None,
        Duration::from_millis(300),
    ));
    match result {
        Err(error @ FetchError::Timeout) => assert_eq!(error.label(), "timeout"),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < TIMEOUT, "{:?}", started.elapsed());
}
