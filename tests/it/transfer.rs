//! Zone transfers out of apidns (RFC 5936 AXFR with TSIG, RFC 1996 NOTIFY), against real
//! secondaries on loopback: Debian's Knot (`knotd`) and BIND (`named`) load apidns's zone by
//! AXFR, follow an `nsupdate` by NOTIFY well before their SOA refresh, and a large zone that
//! spans many messages; what `dig` transfers from each equals what it transfers from apidns.
//! Requests without a listed key are refused as queries are.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{Name, RecordType, TSigner};
use testkit::peers::{PeerKey, Secondary, SecondaryOf, axfr, soa_serial};
use testkit::*;

const ORIGIN: &str = "k8s.example.com.";
const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0MTIzNDU=";
/// The secret's bytes, for signing in process.
const SECRET_BYTES: &[u8] = b"secret-secret-secret-secret12345";
/// How long a secondary may take to load or follow the zone: far more than it needs on
/// loopback, far less than the SOA refresh (3600 s) that would otherwise bring the change.
const FOLLOW_LIMIT: Duration = Duration::from_secs(30);

fn key(name: &str) -> PeerKey {
    PeerKey {
        name: name.to_string(),
        algorithm: "hmac-sha256".to_string(),
        secret: SECRET.to_string(),
    }
}

/// apidns with one zone transferred to `xfr-key` (and updated with `ops-key`; `other-key` is
/// defined but may do neither), notifying `notify`, with pool `api` of `members` on a closed
/// loopback port, and an SOA refresh of an hour.
fn start_primary(state: &TempDir, members: &str, notify: &[SocketAddr]) -> TestServer {
    start_primary_probing(state, members, notify, free_port())
}

/// [`start_primary`] with the members' port: it is in their SRV records, so a restart that
/// keeps the data must keep it.
fn start_primary_probing(
    state: &TempDir,
    members: &str,
    notify: &[SocketAddr],
    port: u16,
) -> TestServer {
    TestServer::start(primary_spec(state, members, notify, port))
}

/// What [`start_primary_probing`] starts, for a test that adds to it.
fn primary_spec(state: &TempDir, members: &str, notify: &[SocketAddr], port: u16) -> ServerSpec {
    let notify: Vec<String> = notify.iter().map(|a| format!("\"{a}\"")).collect();
    let zone = format!(
        "transfer = {{ keys = [\"xfr-key\"], notify = [{}] }}\nupdate = {{ keys = [\"ops-key\"], allow = \"pool-members\" }}\n{}\
         refresh = 3600\n\n[pool.api]\nport = {}\nmembers = [{members}]\n",
        notify.join(", "),
        zone_with_records(&["{ name = \"www\", type = \"TXT\", value = \"static data\" }"]),
        port,
    );
    let mut spec = ServerSpec::zone(&zone);
    let mut tsig = String::new();
    for name in ["xfr-key", "ops-key", "other-key"] {
        tsig.push_str(&format!(
            "\n[[tsig]]\nname = \"{name}\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{SECRET}\"\n"
        ));
    }
    spec.server_extra = format!(
        "state_dir = \"{}\"\nhttp = \"127.0.0.1:0\"\n{tsig}",
        state.path().display()
    );
    spec.probe = "interval = \"500ms\"\ntimeout = \"100ms\"\nrise = 1\nfall = 1".to_string();
    spec
}

fn of(primary: &TestServer) -> SecondaryOf {
    SecondaryOf {
        origin: ORIGIN.to_string(),
        primary: primary.addr(),
        key: key("xfr-key"),
    }
}

/// Waits until `secondary` transfers exactly `expected`; panics with its log otherwise.
fn wait_for_copy(secondary: &Secondary, expected: &[String]) {
    let xfr = key("xfr-key");
    let mut last = Err(String::from("never asked"));
    let done = wait_until(FOLLOW_LIMIT, || {
        last = axfr(secondary.address, ORIGIN, Some(&xfr));
        last.as_deref() == Ok(expected)
    });
    if done.is_none() {
        let got = match &last {
            Ok(records) => format!(
                "{} records; missing {:?}; extra {:?}",
                records.len(),
                expected
                    .iter()
                    .filter(|r| !records.contains(r))
                    .take(5)
                    .collect::<Vec<_>>(),
                records
                    .iter()
                    .filter(|r| !expected.contains(r))
                    .take(5)
                    .collect::<Vec<_>>()
            ),
            Err(error) => error.clone(),
        };
        panic!(
            "{} did not hold apidns's zone within {FOLLOW_LIMIT:?}: {got}\n--- {} log:\n{}",
            secondary.kind,
            secondary.kind,
            secondary.log_text()
        );
    }
}

/// `dig IXFR=serial` from `server`: each record as its type and the part of its data that
/// tells the records apart (the serial of an SOA, the address of an A, the target of an SRV).
fn ixfr(server: SocketAddr, serial: u32) -> Vec<String> {
    let output = Command::new("dig")
        .args([
            format!("@{}", server.ip()),
            "-p".to_string(),
            server.port().to_string(),
            ORIGIN.to_string(),
            format!("IXFR={serial}"),
            "+noall".to_string(),
            "+answer".to_string(),
            "-y".to_string(),
            key("xfr-key").dig_arg(),
        ])
        .output()
        .expect("dig runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with(';'))
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let rtype = fields
                .get(3)
                .copied()
                .unwrap_or_default()
                .to_ascii_lowercase();
            let telling = match rtype.as_str() {
                "soa" => fields.get(6),
                "srv" => fields.get(7),
                _ => fields.get(4),
            };
            format!("{rtype} {}", telling.copied().unwrap_or_default())
        })
        .collect()
}

/// Runs `nsupdate -y` with `commands` against `server`; panics unless it succeeds.
fn nsupdate(server: SocketAddr, commands: &str) {
    let mut child = Command::new("nsupdate")
        .args(["-y", &key("ops-key").dig_arg(), "-t", "10"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nsupdate is installed (apt-get install bind9-dnsutils)");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let script = format!(
            "server {} {}\n{commands}\nsend\n",
            server.ip(),
            server.port()
        );
        stdin.write_all(script.as_bytes()).expect("write script");
    }
    let output = child.wait_with_output().expect("nsupdate runs");
    assert!(
        output.status.success(),
        "nsupdate failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
#[cfg_attr(
    not(all(
        apidns_has_knotd,
        apidns_has_named,
        apidns_has_dig,
        apidns_has_nsupdate
    )),
    ignore = "needs knotd, named, dig and nsupdate: apt-get install knot bind9 bind9-dnsutils"
)]
fn knot_and_bind_load_the_zone_by_axfr_and_follow_an_update_by_notify() {
    let state = TempDir::new("transfer-state");
    let (knot_port, bind_port) = (Secondary::reserve_port(), Secondary::reserve_port());
    let notify = [
        SocketAddr::from(([127, 0, 0, 1], knot_port)),
        SocketAddr::from(([127, 0, 0, 1], bind_port)),
    ];
    let primary = start_primary(&state, "\"127.0.0.11\", \"127.0.0.12\", \"::1\"", &notify);
    let xfr = key("xfr-key");
    let expected = axfr(primary.addr(), ORIGIN, Some(&xfr)).expect("apidns transfers the zone");
    for wanted in [
        "api.k8s.example.com. 5 in a 127.0.0.11",
        "api.k8s.example.com. 5 in aaaa ::1",
        "www.k8s.example.com. 300 in txt \"static data\"",
    ] {
        assert!(
            expected.iter().any(|r| r == wanted),
            "{wanted} in {expected:#?}"
        );
    }
    assert!(
        expected.iter().any(|r| r.contains(" srv ")),
        "{expected:#?}"
    );

    let knot = Secondary::knot(&of(&primary), knot_port);
    let bind = Secondary::bind(&of(&primary), bind_port);
    wait_for_copy(&knot, &expected);
    wait_for_copy(&bind, &expected);

    let before = soa_serial(primary.addr(), ORIGIN).expect("apidns answers its SOA");
    nsupdate(
        primary.addr(),
        "update add api.k8s.example.com. 60 A 127.0.0.13",
    );
    let after = soa_serial(primary.addr(), ORIGIN).expect("apidns answers its SOA");
    assert_ne!(before, after, "the update changes the serial");
    let updated = axfr(primary.addr(), ORIGIN, Some(&xfr)).expect("apidns transfers the zone");
    assert!(
        updated
            .iter()
            .any(|r| r == "api.k8s.example.com. 5 in a 127.0.0.13"),
        "{updated:#?}"
    );
    // The SOA refresh is an hour: only the NOTIFY brings the change this soon.
    wait_for_copy(&knot, &updated);
    wait_for_copy(&bind, &updated);
    // Knot asks for the change by IXFR and gets the difference, not the zone.
    let knot_log = knot.log_text();
    assert!(
        knot_log
            .lines()
            .any(|line| line.contains("IXFR, incoming") && line.contains("finished")),
        "Knot did not take the update by IXFR:\n{knot_log}"
    );
    let incremental = ixfr(primary.addr(), before);
    assert_eq!(
        incremental,
        [
            format!("soa {after}"),
            format!("soa {before}"),
            format!("soa {after}"),
            "a 127.0.0.13".to_string(),
            "a 127.0.0.13".to_string(),
            "srv ip-127-0-0-13.api.k8s.example.com.".to_string(),
            format!("soa {after}"),
        ],
        "dig IXFR={before}"
    );
    // A serial the history does not hold: the whole zone, in AXFR form.
    assert!(ixfr(primary.addr(), before.wrapping_sub(1000)).len() > 10);

    // A reload that changes the data notifies too.
    let zone_file = primary.dir.path().join("zones/k8s.example.com.toml");
    let text = std::fs::read_to_string(&zone_file).expect("the zone file");
    let edited = text.replacen(
        "value = \"static data\" }",
        "value = \"static data\" },\n  { name = \"new\", type = \"A\", value = \"192.0.2.99\" }",
        1,
    );
    assert_ne!(edited, text);
    std::fs::write(&zone_file, edited).expect("edit the zone file");
    primary.signal("HUP");
    let reloaded = wait_until(FOLLOW_LIMIT, || {
        axfr(primary.addr(), ORIGIN, Some(&xfr))
            .is_ok_and(|records| records.iter().any(|r| r.contains("192.0.2.99")))
    });
    assert!(reloaded.is_some(), "apidns did not reload the zone file");
    let reloaded = axfr(primary.addr(), ORIGIN, Some(&xfr)).expect("apidns transfers the zone");
    wait_for_copy(&knot, &reloaded);
    wait_for_copy(&bind, &reloaded);
    for target in notify {
        let acknowledged = primary.wait_for_log(Duration::from_secs(5), |line| {
            line.contains("NOTIFY acknowledged")
                && line.contains(&format!("target={target}"))
                && line.contains(&format!("serial={after}"))
        });
        assert!(
            acknowledged.is_some(),
            "no NOTIFY of serial {after} acknowledged by {target}"
        );
    }
}

#[test]
#[cfg_attr(
    not(all(apidns_has_knotd, apidns_has_named, apidns_has_dig)),
    ignore = "needs knotd, named and dig: apt-get install knot bind9 bind9-dnsutils"
)]
fn a_large_zone_spans_many_messages_and_knot_and_bind_load_it() {
    let state = TempDir::new("transfer-large");
    // 700 members on loopback addresses (a closed port answers their probes at once): 2100
    // records, about 100 kB. (3000 members would be better still, but checking such a pool
    // costs a debug build seconds of CPU.)
    let members: Vec<String> = (0..700)
        .map(|i| format!("\"127.1.{}.{}\"", i / 250, i % 250 + 1))
        .collect();
    let primary = start_primary(&state, &members.join(", "), &[]);
    let xfr = key("xfr-key");
    let expected = axfr(primary.addr(), ORIGIN, Some(&xfr)).expect("apidns transfers the zone");
    // Each member: an A record at the pool name and at its own name, and an SRV record.
    assert!(expected.len() > 2100, "{} records", expected.len());
    let messages = transfer_messages(primary.addr());
    assert!(messages >= 3, "the transfer took {messages} messages");

    let knot = Secondary::knot(&of(&primary), Secondary::reserve_port());
    let bind = Secondary::bind(&of(&primary), Secondary::reserve_port());
    wait_for_copy(&knot, &expected);
    wait_for_copy(&bind, &expected);
}

/// How many messages `dig` (which checks every message's TSIG) counted in a transfer.
fn transfer_messages(server: SocketAddr) -> usize {
    let output = Command::new("dig")
        .args([
            format!("@{}", server.ip()),
            "-p".to_string(),
            server.port().to_string(),
            ORIGIN.to_string(),
            "AXFR".to_string(),
            "-y".to_string(),
            key("xfr-key").dig_arg(),
        ])
        .output()
        .expect("dig runs");
    let text = String::from_utf8_lossy(&output.stdout);
    // ";; XFR size: 9010 records (messages 16, bytes 456898)"
    text.lines()
        .find_map(|line| line.split("(messages ").nth(1))
        .and_then(|rest| rest.split(',').next())
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or_else(|| panic!("dig reported no transfer:\n{text}"))
}

/// An AXFR request for the zone, signed with `signer` when given.
fn axfr_request(signer: Option<TSigner>) -> Message {
    transfer_request(RecordType::AXFR, signer)
}

/// A transfer request of `qtype` (AXFR, or IXFR without a serial: the whole zone) for the zone,
/// signed with `signer` when given.
fn transfer_request(qtype: RecordType, signer: Option<TSigner>) -> Message {
    let mut message = Message::new(0x4242, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(
        Name::from_ascii(ORIGIN).expect("a name"),
        qtype,
    ));
    if let Some(signer) = signer {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        message.finalize(&signer, now).expect("signs");
    }
    message
}

fn signer(name: &str, secret: &[u8]) -> Option<TSigner> {
    let name = Name::from_ascii(name).expect("a key name");
    Some(TSigner::new(secret.to_vec(), TsigAlgorithm::HmacSha256, name, 300).expect("a signer"))
}

#[test]
fn transfers_without_a_listed_key_are_refused_as_queries_are() {
    let state = TempDir::new("transfer-refused");
    let primary = start_primary(&state, "\"127.0.0.11\"", &[]);
    let server = primary.addr();

    let unsigned = tcp(server, &axfr_request(None));
    assert_eq!(unsigned.metadata.response_code, ResponseCode::Refused);
    assert!(unsigned.answers.is_empty());

    // A key the server has, but not one the zone lists: REFUSED, signed with that key.
    let other = tcp(server, &axfr_request(signer("other-key.", SECRET_BYTES)));
    assert_eq!(other.metadata.response_code, ResponseCode::Refused);
    assert!(other.answers.is_empty());
    assert!(other.signature().is_some(), "the refusal is signed");

    // A key the server does not know: NOTAUTH with TSIG error BADKEY.
    let unknown = tcp(server, &axfr_request(signer("nobody-key.", SECRET_BYTES)));
    assert_eq!(unknown.metadata.response_code, ResponseCode::NotAuth);
    assert!(unknown.answers.is_empty());

    // The right key but the wrong secret: NOTAUTH (BADSIG).
    let forged = tcp(server, &axfr_request(signer("xfr-key.", b"not-the-secret")));
    assert_eq!(forged.metadata.response_code, ResponseCode::NotAuth);

    // Over UDP a transfer is refused whatever the key, as before transfers existed.
    let over_udp = udp(server, &axfr_request(signer("xfr-key.", SECRET_BYTES)));
    assert_eq!(over_udp.metadata.response_code, ResponseCode::Refused);

    // The listed key over TCP: the zone, SOA first.
    let granted = tcp(server, &axfr_request(signer("xfr-key.", SECRET_BYTES)));
    assert_eq!(granted.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        granted.answers.first().map(|r| r.record_type()),
        Some(RecordType::SOA)
    );
}

/// With the query log on, a transfer request is logged as a query is, with the messages and
/// bytes sent and the key it was signed with.
#[test]
fn transfers_are_in_the_query_log() {
    let state = TempDir::new("transfer-log");
    let mut spec = primary_spec(&state, "\"127.0.0.11\"", &[], free_port());
    spec.args = vec!["--query-log".into()];
    let primary = TestServer::start(spec);
    let server = primary.addr();

    let granted = tcp(
        server,
        &transfer_request(RecordType::IXFR, signer("xfr-key.", SECRET_BYTES)),
    );
    assert_eq!(granted.metadata.response_code, ResponseCode::NoError);
    let unsigned = tcp(server, &axfr_request(None));
    assert_eq!(unsigned.metadata.response_code, ResponseCode::Refused);
    let logged = |qtype: &str| {
        primary
            .wait_for_log(Duration::from_secs(5), |line| {
                line.contains("apidns::query") && line.contains(&format!("qtype={qtype}"))
            })
            .unwrap_or_else(|| {
                panic!(
                    "no {qtype} in the query log:\n{}",
                    primary.logs().join("\n")
                )
            })
    };

    let line = logged("IXFR");
    for field in [
        " transfer ",
        "client=127.0.0.1:",
        "transport=Tcp",
        "zone=k8s.example.com.",
        "rcode=NOERROR",
        "messages=1",
        "key=xfr-key.",
    ] {
        assert!(line.contains(field), "{field} missing: {line}");
    }
    let bytes: usize = line
        .split("bytes=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|bytes| bytes.parse().ok())
        .unwrap_or_else(|| panic!("no bytes: {line}"));
    assert!(
        bytes > 100,
        "a zone and two signatures in {bytes} bytes: {line}"
    );

    let line = logged("AXFR");
    assert!(line.contains("rcode=REFUSED"), "{line}");
    assert!(
        line.contains("key= ") || line.ends_with("key="),
        "unsigned: no key: {line}"
    );
}

/// docs/transfers.md shows the Knot and BIND configurations these tests run, as they run them
/// (with the documentation's addresses and directories).
#[test]
fn the_documented_secondary_configurations_are_the_tested_ones() {
    let of = SecondaryOf {
        origin: ORIGIN.to_string(),
        primary: "192.0.2.53:53".parse().expect("an address"),
        key: PeerKey {
            name: "xfr-key".to_string(),
            algorithm: "hmac-sha256".to_string(),
            secret: "<base64 secret>".to_string(),
        },
    };
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/transfers.md"),
    )
    .expect("docs/transfers.md");
    let knot = testkit::peers::knot_config(&of, 53, "/var/lib/knot");
    let bind = testkit::peers::bind_config(&of, 53, "/var/cache/bind");
    assert!(doc.contains(&knot), "docs/transfers.md lacks:\n{knot}");
    assert!(doc.contains(&bind), "docs/transfers.md lacks:\n{bind}");
}

#[test]
#[cfg_attr(
    not(all(apidns_has_dig, apidns_has_nsupdate)),
    ignore = "needs dig and nsupdate: apt-get install bind9-dnsutils"
)]
fn ixfr_answers_from_the_history_kept_across_a_restart() {
    let state = TempDir::new("transfer-history");
    let port = free_port();
    let primary = start_primary_probing(&state, "\"127.0.0.11\"", &[], port);
    let before = soa_serial(primary.addr(), ORIGIN).expect("apidns answers its SOA");
    nsupdate(
        primary.addr(),
        "update add api.k8s.example.com. 60 A 127.0.0.13",
    );
    let after = soa_serial(primary.addr(), ORIGIN).expect("apidns answers its SOA");
    // The version is recorded by the task that sends NOTIFY, just after the update is in force.
    let recorded = wait_until(Duration::from_secs(10), || {
        ixfr(primary.addr(), before).get(1) == Some(&format!("soa {before}"))
    });
    assert!(
        recorded.is_some(),
        "no incremental answer from {before} to {after}"
    );
    drop(primary);

    let restarted = start_primary_probing(&state, "\"127.0.0.11\"", &[], port);
    let now = soa_serial(restarted.addr(), ORIGIN).expect("apidns answers its SOA");
    // The file still says 42; the history keeps the serial the secondaries already hold.
    assert_eq!(now, after, "the serial after a restart");
    let incremental = ixfr(restarted.addr(), before);
    assert_eq!(
        incremental.first(),
        Some(&format!("soa {now}")),
        "{incremental:?}"
    );
    assert_eq!(
        incremental.get(1),
        Some(&format!("soa {before}")),
        "{incremental:?}"
    );
    assert!(
        incremental.iter().any(|record| record == "a 127.0.0.13"),
        "{incremental:?}"
    );
}
