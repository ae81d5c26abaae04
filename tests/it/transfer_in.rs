//! Zone transfers into apidns (the secondary's side, `apidns::transfer::incoming`), against
//! real primaries on loopback: Debian's Knot (`knotd`) and apidns itself. The first fetch is an
//! AXFR; after an `nsupdate` to the primary, an IXFR from the copy brings exactly the new
//! version; a wrong key, a missing key and another zone bring an error and no copy.

use std::net::SocketAddr;
use std::time::Duration;

use apidns::config::TsigKey;
use apidns::transfer::incoming::{FetchError, Fetched, ZoneCopy, fetch, soa_serial};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::Name;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
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

const KNOT_ZONE: &str = "$ORIGIN k8s.example.com.
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

/// Knot serving [`KNOT_ZONE`] on a free port, answering.
fn start_knot() -> Primary {
    let zone = PrimaryZone {
        origin: ORIGIN.to_string(),
        zone_file: KNOT_ZONE.to_string(),
        key: peer_key("xfr-key"),
    };
    let knot = Primary::knot(&zone, free_port());
    let answering = wait_until(START_LIMIT, || {
        testkit::peers::soa_serial(knot.address, ORIGIN).is_some()
    });
    assert!(
        answering.is_some(),
        "knotd did not answer:\n{}",
        knot.log_text()
    );
    knot
}

#[test]
#[cfg_attr(
    not(all(apidns_has_knotd, apidns_has_dig, apidns_has_nsupdate)),
    ignore = "needs knotd, dig and nsupdate: apt-get install knot bind9-dnsutils"
)]
fn from_knot_by_axfr_then_by_ixfr_after_an_update() {
    let knot = start_knot();
    let key = tsig_key("xfr-key.", SECRET_BYTES);
    let Ok(Fetched::Axfr(copy)) = fetch_now(knot.address, Some(&key), ORIGIN, None) else {
        panic!("no AXFR from knotd:\n{}", knot.log_text());
    };
    assert_eq!(copy.serial(), 1);
    let expected = dig_axfr(knot.address);
    assert_eq!(as_text(&copy), expected);
    assert!(
        copy.records
            .iter()
            .all(|record| record.data.record_type() != hickory_proto::rr::RecordType::SOA)
    );

    // Nothing changed: the IXFR says so.
    assert_eq!(
        fetch_now(knot.address, Some(&key), ORIGIN, Some(&copy)).expect("an IXFR"),
        Fetched::UpToDate { serial: 1 }
    );
    let serial = runtime().block_on(soa_serial(knot.address, Some(&key), &origin(), TIMEOUT));
    assert_eq!(serial.expect("the SOA serial"), 1);

    nsupdate(
        knot.address,
        &peer_key("xfr-key"),
        "zone k8s.example.com.\nupdate delete api.k8s.example.com. A 192.0.2.12\n\
         update add api.k8s.example.com. 60 A 192.0.2.13\n\
         update add new.k8s.example.com. 60 TXT \"added\"",
    )
    .unwrap_or_else(|error| panic!("nsupdate to knotd: {error}\n{}", knot.log_text()));
    let Ok(Fetched::Ixfr(updated)) = fetch_now(knot.address, Some(&key), ORIGIN, Some(&copy))
    else {
        panic!("no IXFR from knotd:\n{}", knot.log_text());
    };
    assert_eq!(updated.serial(), 2, "Knot increments the serial on update");
    let expected = dig_axfr(knot.address);
    assert_eq!(as_text(&updated), expected);
    assert!(expected.iter().any(|r| r.contains("192.0.2.13")));
    assert!(!expected.iter().any(|r| r.contains("192.0.2.12")));
    // Incremental or whole, the same copy.
    let Ok(Fetched::Axfr(whole)) = fetch_now(knot.address, Some(&key), ORIGIN, None) else {
        panic!("no AXFR from knotd:\n{}", knot.log_text());
    };
    assert_eq!(whole, updated);
    let log = knot.log_text();
    assert!(
        log.lines()
            .any(|line| line.contains("IXFR, outgoing") && line.contains("finished")),
        "knotd did not answer by IXFR:\n{log}"
    );
}

#[test]
#[cfg_attr(
    not(all(apidns_has_knotd, apidns_has_dig)),
    ignore = "needs knotd and dig: apt-get install knot bind9-dnsutils"
)]
fn from_knot_a_wrong_key_a_missing_key_or_another_zone_bring_no_copy() {
    let knot = start_knot();
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
