//! apidns as a secondary zone (`primary = {...}`), with real binaries on loopback: an apidns
//! primary whose `nsupdate`s reach the secondary by NOTIFY and IXFR, members answered only once
//! the secondary's own probes pass; the copy kept in `state_dir` served after a restart with the
//! primary gone, and after a kill -9 in the middle of a transfer; Knot as the primary; and the
//! errors `apidns check` gives a secondary zone file.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::rdata::{A, NS, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType, TSigner};
use testkit::backend::Backend;
use testkit::peers::{PeerKey, Primary, PrimaryZone, nsupdate, soa_serial};
use testkit::*;

const ORIGIN: &str = "k8s.example.com.";
const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0MTIzNDU=";
/// The secret's bytes, for signing in process.
const SECRET_BYTES: &[u8] = b"secret-secret-secret-secret12345";
/// Far more than loopback needs, far less than any SOA refresh used here.
const LIMIT: Duration = Duration::from_secs(20);
/// Probes fast enough that a member is answered within a second of its transfer.
const PROBE: &str = "interval = \"200ms\"\ntimeout = \"100ms\"\nrise = 1\nfall = 1";

fn key(name: &str) -> PeerKey {
    PeerKey {
        name: name.to_string(),
        algorithm: "hmac-sha256".to_string(),
        secret: SECRET.to_string(),
    }
}

fn tsig_keys() -> String {
    ["xfr-key", "ops-key"]
        .iter()
        .map(|name| {
            format!("\n[[tsig]]\nname = \"{name}\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{SECRET}\"\n")
        })
        .collect()
}

/// Starts apidns on `listen` with `zone` as its one zone file and `state` as its state_dir.
fn start(listen: SocketAddr, state: &TempDir, zone: &str) -> TestServer {
    let dir = TempDir::new("apidns");
    let main = format!(
        "[server]\nlisten = [\"{listen}\"]\nzones = \"zones\"\nhttp = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n{}\n[probe]\n{PROBE}\n",
        state.path().display(),
        tsig_keys(),
    );
    let config = dir.write("apidns.toml", &main);
    dir.write("zones/k8s.example.com.toml", zone);
    TestServer::start_with(dir, config, &[])
}

/// The primary's zone: pool `api` on `port` with `members`, updates with ops-key, transfers with
/// xfr-key, NOTIFY to `notify`; an SOA refresh of an hour, so only NOTIFY brings changes fast.
fn primary_zone(members: &[&str], port: u16, notify: SocketAddr) -> String {
    let members: Vec<String> = members.iter().map(|m| format!("\"{m}\"")).collect();
    format!(
        "transfer = {{ keys = [\"xfr-key\"], notify = [\"{notify}\"] }}\nupdate = {{ keys = [\"ops-key\"], allow = \"pool-members\" }}\n{}refresh = 3600\n\n[pool.api]\nport = {port}\nmembers = [{}]\n",
        zone_with_records(&["{ name = \"www\", type = \"TXT\", value = \"static data\" }"]),
        members.join(", "),
    )
}

/// The secondary's zone: pool `api` on `port`, its members from `primary`.
fn secondary_zone(primary: SocketAddr, key: Option<&str>, port: u16) -> String {
    let key = key.map(|k| format!(", key = \"{k}\"")).unwrap_or_default();
    format!(
        "origin = \"{ORIGIN}\"\nprimary = {{ address = \"{primary}\"{key} }}\n\n[pool.api]\nport = {port}\n"
    )
}

fn loopback(last: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, last], port))
}

fn answered(server: &TestServer) -> Vec<String> {
    a_sorted(server.addr(), API)
}

fn rcode(server: &TestServer, name: &str) -> ResponseCode {
    udp(server.addr(), &query(name, RecordType::A, None))
        .metadata
        .response_code
}

fn wait_answered(server: &TestServer, expected: &[&str], why: &str) {
    let expected: Vec<String> = expected.iter().map(ToString::to_string).collect();
    if wait_until(LIMIT, || answered(server) == expected).is_none() {
        panic!(
            "{why}: the secondary answers {:?}, expected {expected:?}; its log:\n{}",
            answered(server),
            server.logs().join("\n")
        );
    }
}

fn status(server: &TestServer) -> serde_json::Value {
    let (code, body) = http_get(server.http.expect("an http endpoint"), "/status");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("/status is JSON")
}

#[test]
#[cfg_attr(
    not(apidns_has_nsupdate),
    ignore = "needs nsupdate: apt-get install bind9-dnsutils"
)]
fn an_update_to_an_apidns_primary_reaches_the_secondary_once_probed() {
    let port = free_port();
    let first = Backend::start_at(loopback(11, port));
    let _second = Backend::start_at(loopback(12, port));
    let (primary_state, secondary_state) = (TempDir::new("primary"), TempDir::new("secondary"));
    let secondary_address = loopback(1, free_port());
    let primary = start(
        loopback(1, free_port()),
        &primary_state,
        &primary_zone(&[&first.ip()], port, secondary_address),
    );
    let secondary = start(
        secondary_address,
        &secondary_state,
        &secondary_zone(primary.addr(), Some("xfr-key"), port),
    );
    wait_answered(&secondary, &["127.0.0.11"], "the first transfer");
    let www = udp(
        secondary.addr(),
        &query("www.k8s.example.com.", RecordType::TXT, None),
    );
    assert_eq!(
        www.answers.len(),
        1,
        "static data comes with the copy: {www:?}"
    );
    assert!(www.metadata.authoritative);

    // A member added at the primary, its backend listening: answered once probed here.
    nsupdate(
        primary.addr(),
        &key("ops-key"),
        "update add api.k8s.example.com. 5 A 127.0.0.12",
    )
    .expect("the primary takes the update");
    wait_answered(&secondary, &["127.0.0.11", "127.0.0.12"], "NOTIFY + IXFR");
    // A member added with nothing listening: transferred, probed, never answered.
    nsupdate(
        primary.addr(),
        &key("ops-key"),
        "update add api.k8s.example.com. 5 A 127.0.0.13",
    )
    .expect("the primary takes the update");
    let serial_with_13 = soa_serial(primary.addr(), ORIGIN).expect("the primary's serial");
    assert!(
        wait_until(LIMIT, || soa_serial(secondary.addr(), ORIGIN)
            == Some(serial_with_13))
        .is_some(),
        "the secondary follows the primary's serial {serial_with_13}"
    );
    let document = status(&secondary);
    let members = &document["zones"][0]["pools"][0]["members"];
    let down = members
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["address"] == "127.0.0.13")
        .unwrap_or_else(|| panic!("127.0.0.13 is a member: {document}"));
    assert_eq!(down["source"], "transferred", "{document}");
    assert_eq!(down["answered"], false, "{document}");
    assert_eq!(answered(&secondary), ["127.0.0.11", "127.0.0.12"]);

    // A member removed at the primary leaves the secondary.
    nsupdate(
        primary.addr(),
        &key("ops-key"),
        "update delete api.k8s.example.com. A 127.0.0.11",
    )
    .expect("the primary takes the update");
    wait_answered(&secondary, &["127.0.0.12"], "a removed member leaves");

    let document = status(&secondary);
    let zone = &document["secondaries"][0];
    assert_eq!(zone["origin"], ORIGIN, "{document}");
    assert_eq!(zone["primary"], primary.addr().to_string(), "{document}");
    assert_eq!(zone["state"], "fresh", "{document}");
    assert!(zone["last_error"].is_null(), "{document}");
    let (_, metrics) = http_get(secondary.http.expect("http"), "/metrics");
    assert!(
        metrics.contains(
            "apidns_transfers_in_total{zone=\"k8s.example.com.\",kind=\"ixfr\",result=\"ok\"}"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("apidns_secondary_seconds_since_refresh{zone=\"k8s.example.com.\"}"));

    // An update sent to the secondary is forwarded to the primary (RFC 2136 section 6), signed
    // as the client signed it, and comes back by NOTIFY and IXFR.
    nsupdate(
        secondary.addr(),
        &key("ops-key"),
        "update add api.k8s.example.com. 5 A 127.0.0.14",
    )
    .expect("the primary takes the forwarded update");
    assert_eq!(
        soa_serial(primary.addr(), ORIGIN),
        Some(serial_with_13 + 2),
        "the primary applied it (after the removal of .11)"
    );
    let members_of = |server: &TestServer| -> Vec<String> {
        status(server)["zones"][0]["pools"][0]["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["address"].as_str().map(ToString::to_string))
            .collect()
    };
    assert!(
        wait_until(LIMIT, || members_of(&secondary)
            .contains(&"127.0.0.14".to_string()))
        .is_some(),
        "the forwarded update comes back: {}",
        status(&secondary)
    );
    // Signed with a key the primary does not take for updates: its refusal is the answer.
    let refused = nsupdate(
        secondary.addr(),
        &key("xfr-key"),
        "update add api.k8s.example.com. 5 A 127.0.0.15",
    )
    .unwrap_err();
    assert!(refused.contains("REFUSED"), "{refused}");
    // An unsigned update is answered by the secondary itself (REFUSED, as any unsigned update)
    // and never forwarded: the primary would see it come from the secondary's address.
    let forwarded = |lines: Vec<String>| {
        lines
            .iter()
            .filter(|line| line.contains("forwarded to its primary"))
            .count()
    };
    let forwarded_before = forwarded(secondary.synced_logs());
    assert_eq!(forwarded_before, 2, "the two signed updates were forwarded");
    let unsigned = send_zone_message(OpCode::Update, "127.0.0.1:0", secondary.addr(), false)
        .expect("an answer");
    assert_eq!(unsigned.metadata.response_code, ResponseCode::Refused);
    assert_eq!(
        forwarded(secondary.synced_logs()),
        forwarded_before,
        "the unsigned update was not forwarded"
    );

    // A NOTIFY from elsewhere than the primary is refused, as is an unsigned one.
    let reply = send_notify("127.0.0.2:0", secondary.addr(), true).expect("an answer");
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
    let reply = send_notify("127.0.0.1:0", secondary.addr(), false).expect("an answer");
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);

    // The primary gone, a restart serves the copy kept in state_dir.
    let primary_address = primary.addr();
    drop(primary);
    drop(secondary);
    let restarted = start(
        secondary_address,
        &secondary_state,
        &secondary_zone(primary_address, Some("xfr-key"), port),
    );
    wait_answered(&restarted, &["127.0.0.12"], "the kept copy after a restart");
    assert_eq!(
        soa_serial(restarted.addr(), ORIGIN),
        Some(serial_with_13 + 2)
    );
    let kept = std::fs::read_to_string(
        secondary_state
            .path()
            .join("secondary/k8s.example.com.zone"),
    )
    .expect("the copy is kept as a master file");
    assert!(kept.contains("127.0.0.13"), "{kept}");
}

#[test]
fn a_secondary_without_a_copy_answers_servfail_for_its_names() {
    let state = TempDir::new("secondary");
    // Nothing listens at the primary's address.
    let secondary = start(
        loopback(1, free_port()),
        &state,
        &secondary_zone(loopback(1, free_port()), None, 6443),
    );
    assert_eq!(rcode(&secondary, API), ResponseCode::ServFail);
    assert_eq!(
        rcode(&secondary, "www.k8s.example.com."),
        ResponseCode::ServFail
    );
    assert_eq!(rcode(&secondary, "example.org."), ResponseCode::Refused);
    assert!(
        wait_until(LIMIT, || status(&secondary)["secondaries"][0]["last_error"]
            .is_string())
        .is_some(),
        "the failed refresh is in /status: {}",
        status(&secondary)
    );
    assert_eq!(status(&secondary)["secondaries"][0]["state"], "no copy");
}

/// A stand-in primary that answers the SOA query with `serial` (UDP), and an AXFR (TCP) with a
/// first message only, then says so on the channel and holds the connection: a transfer that
/// is under way for as long as the test wants.
fn stalling_primary(serial: u32, started: mpsc::Sender<()>) -> SocketAddr {
    let address = loopback(1, free_port());
    let udp_socket = UdpSocket::bind(address).expect("bind udp");
    let tcp = TcpListener::bind(address).expect("bind tcp");
    let soa = soa_record(serial);
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok((length, peer)) = udp_socket.recv_from(&mut buffer) {
            let Ok(request) = Message::from_vec(&buffer[..length]) else {
                continue;
            };
            let mut reply = Message::new(request.id, MessageType::Response, OpCode::Query);
            reply.metadata.authoritative = true;
            reply.queries = request.queries.clone();
            reply.answers.push(soa.clone());
            let _ = udp_socket.send_to(&reply.to_vec().expect("encodes"), peer);
        }
    });
    let soa = soa_record(serial);
    std::thread::spawn(move || {
        for stream in tcp.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut length = [0u8; 2];
            if stream.read_exact(&mut length).is_err() {
                continue;
            }
            let mut request = vec![0u8; usize::from(u16::from_be_bytes(length))];
            if stream.read_exact(&mut request).is_err() {
                continue;
            }
            let Ok(request) = Message::from_vec(&request) else {
                continue;
            };
            let mut reply = Message::new(request.id, MessageType::Response, OpCode::Query);
            reply.metadata.authoritative = true;
            reply.queries = request.queries.clone();
            reply.answers.push(soa.clone());
            reply.answers.push(Record::from_rdata(
                Name::from_ascii(API).unwrap(),
                5,
                RData::A(A([127, 0, 0, 99].into())),
            ));
            let bytes = reply.to_vec().expect("encodes");
            let _ = stream.write_all(&(bytes.len() as u16).to_be_bytes());
            let _ = stream.write_all(&bytes);
            let _ = stream.flush();
            let _ = started.send(());
            // Hold the connection open: the transfer never ends.
            std::thread::sleep(Duration::from_secs(60));
        }
    });
    address
}

/// Sends a NOTIFY for the zone from `from` (signed with xfr-key when `signed`) and returns the
/// answer.
fn send_notify(from: &str, to: SocketAddr, signed: bool) -> Option<Message> {
    send_zone_message(OpCode::Notify, from, to, signed)
}

/// A message of `opcode` whose zone section names the zone, from `from` to `to` over UDP, signed
/// with `xfr-key` or not; the answer.
fn send_zone_message(opcode: OpCode, from: &str, to: SocketAddr, signed: bool) -> Option<Message> {
    let mut notify = Message::new(99, MessageType::Query, opcode);
    notify.add_query(hickory_proto::op::Query::query(
        Name::from_ascii(ORIGIN).unwrap(),
        RecordType::SOA,
    ));
    if signed {
        let signer = TSigner::new(
            SECRET_BYTES.to_vec(),
            TsigAlgorithm::HmacSha256,
            Name::from_ascii("xfr-key.").unwrap(),
            300,
        )
        .expect("a signer");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        notify.finalize(&signer, now).expect("signs");
    }
    let socket = UdpSocket::bind(from).expect("bind the NOTIFY's source");
    socket.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    socket.send_to(&notify.to_vec().ok()?, to).ok()?;
    let mut buffer = [0u8; 1024];
    let (length, _) = socket.recv_from(&mut buffer).ok()?;
    Message::from_vec(&buffer[..length]).ok()
}

fn soa_record(serial: u32) -> Record {
    soa_record_timed(serial, 3600, 600, 604_800)
}

fn soa_record_timed(serial: u32, refresh: i32, retry: i32, expire: i32) -> Record {
    Record::from_rdata(
        Name::from_ascii(ORIGIN).unwrap(),
        60,
        RData::SOA(SOA::new(
            Name::from_ascii("ns1.k8s.example.com.").unwrap(),
            Name::from_ascii("hostmaster.example.com.").unwrap(),
            serial,
            refresh,
            retry,
            expire,
            5,
        )),
    )
}

/// A copy as a finished transfer leaves it in `state`: `soa`, an NS record and `api` at `member`.
fn keep_copy(state: &TempDir, soa: &Record, member: [u8; 4]) -> String {
    let copy = format!(
        "$ORIGIN .\n{soa}\n{}\n{}\n",
        Record::from_rdata(
            Name::from_ascii(ORIGIN).unwrap(),
            300,
            RData::NS(NS(Name::from_ascii("ns1.k8s.example.com.").unwrap()))
        ),
        Record::from_rdata(
            Name::from_ascii(API).unwrap(),
            5,
            RData::A(A(member.into()))
        ),
    );
    std::fs::create_dir_all(state.path().join("secondary")).expect("the copies' directory");
    state.write("secondary/k8s.example.com.zone", &copy);
    copy
}

#[test]
fn past_the_expire_without_the_primary_the_zone_answers_servfail() {
    let port = free_port();
    let _member = Backend::start_at(loopback(41, port));
    let state = TempDir::new("secondary");
    // Refresh and retry every second, expire after three: nothing answers at the primary.
    keep_copy(&state, &soa_record_timed(5, 1, 1, 3), [127, 0, 0, 41]);
    let secondary = start(
        loopback(1, free_port()),
        &state,
        &secondary_zone(loopback(1, free_port()), None, port),
    );
    wait_answered(
        &secondary,
        &["127.0.0.41"],
        "the kept copy, not yet expired",
    );
    let state_of = |server: &TestServer| status(server)["secondaries"][0]["state"].clone();
    assert!(
        wait_until(LIMIT, || state_of(&secondary) == "refresh overdue").is_some(),
        "overdue before expired: {}",
        status(&secondary)
    );
    assert!(
        wait_until(LIMIT, || rcode(&secondary, API) == ResponseCode::ServFail).is_some(),
        "SERVFAIL past the expire: {}",
        status(&secondary)
    );
    assert_eq!(state_of(&secondary), "expired");
    let (_, metrics) = http_get(secondary.http.expect("http"), "/metrics");
    assert!(
        metrics.contains("apidns_secondary_expired{zone=\"k8s.example.com.\"} 1"),
        "{metrics}"
    );
}

#[test]
fn a_kill_during_a_transfer_restarts_on_the_last_complete_copy() {
    let port = free_port();
    let _member = Backend::start_at(loopback(21, port));
    let state = TempDir::new("secondary");
    // The last complete copy, serial 1, as a finished transfer leaves it.
    let copy = keep_copy(&state, &soa_record(1), [127, 0, 0, 21]);
    let (started_tx, started) = mpsc::channel();
    let primary = stalling_primary(2, started_tx);
    let listen = loopback(1, free_port());
    let mut secondary = start(listen, &state, &secondary_zone(primary, None, port));
    wait_answered(&secondary, &["127.0.0.21"], "the kept copy at start");
    // The transfer of serial 2 has begun (its first message is in): kill -9 now.
    started
        .recv_timeout(LIMIT)
        .expect("the secondary starts the transfer of serial 2");
    secondary.signal("KILL");
    // Killed by a signal, it has no exit code: dropping it reaps it.
    let _ = secondary.wait_exit(LIMIT);
    drop(secondary);
    let kept =
        std::fs::read_to_string(state.path().join("secondary/k8s.example.com.zone")).expect("kept");
    assert_eq!(
        kept, copy,
        "the kept copy is untouched by the unfinished transfer"
    );
    let leftovers: Vec<_> = std::fs::read_dir(state.path().join("secondary"))
        .expect("the directory")
        .filter_map(Result::ok)
        .map(|entry| entry.file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    let restarted = start(listen, &state, &secondary_zone(primary, None, port));
    wait_answered(
        &restarted,
        &["127.0.0.21"],
        "the last complete copy after the kill",
    );
    assert_eq!(soa_serial(restarted.addr(), ORIGIN), Some(1));
}

#[test]
#[cfg_attr(
    not(all(apidns_has_knotd, apidns_has_nsupdate)),
    ignore = "needs knotd and nsupdate: apt-get install knot bind9-dnsutils"
)]
fn a_member_added_at_a_knot_primary_is_answered_once_probed() {
    let port = free_port();
    let secondary_address = loopback(1, free_port());
    let _first = Backend::start_at(loopback(31, port));
    let _second = Backend::start_at(loopback(32, port));
    let zone = PrimaryZone {
        origin: ORIGIN.to_string(),
        zone_file: format!(
            "$ORIGIN {ORIGIN}\n$TTL 60\n@ SOA ns1 hostmaster.example.com. 1 3600 600 604800 5\n@ NS ns1\nns1 A 192.0.2.53\napi 5 A 127.0.0.31\n"
        ),
        key: key("xfr-key"),
        // Knot notifies the secondary itself, signed with the zone's key.
        notify: vec![secondary_address],
    };
    let knot = Primary::knot(&zone, free_port());
    assert!(
        wait_until(LIMIT, || soa_serial(knot.address, ORIGIN).is_some()).is_some(),
        "knotd answers: {}",
        knot.log_text()
    );
    let state = TempDir::new("secondary");
    let secondary = start(
        secondary_address,
        &state,
        &secondary_zone(knot.address, Some("xfr-key"), port),
    );
    wait_answered(&secondary, &["127.0.0.31"], "the first transfer from knotd");
    nsupdate(
        knot.address,
        &key("xfr-key"),
        "update add api.k8s.example.com. 5 A 127.0.0.32",
    )
    .expect("knotd takes the update");
    // The zone's refresh is an hour away: the change arrives by Knot's own NOTIFY.
    let serial = soa_serial(knot.address, ORIGIN).expect("knotd's serial");
    wait_answered(&secondary, &["127.0.0.31", "127.0.0.32"], "knotd's update");
    assert_eq!(soa_serial(secondary.addr(), ORIGIN), Some(serial));
    assert!(
        secondary
            .logs()
            .iter()
            .any(|line| line.contains("NOTIFY from the primary")),
        "the refresh came from Knot's NOTIFY: {}",
        secondary.logs().join("\n")
    );
}

#[test]
fn check_names_the_field_and_line_of_data_that_comes_from_the_primary() {
    let check = |zone: &str| {
        let dir = TempDir::new("check");
        let config = dir.write(
            "apidns.toml",
            &format!(
                "[server]\nlisten = [\"127.0.0.1:5353\"]\nzones = \"zones\"\n{}",
                tsig_keys()
            ),
        );
        dir.write("zones/k8s.example.com.toml", zone);
        let output = Command::new(binary())
            .args(["check", "--config"])
            .arg(&config)
            .output()
            .expect("apidns check runs");
        (
            output.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )
    };
    let good = secondary_zone(loopback(1, 53), Some("xfr-key"), 6443);
    let (ok, text) = check(&good);
    assert!(ok, "{text}");
    assert!(text.contains("secondary of 127.0.0.1:53"), "{text}");
    let (ok, text) = check(&format!("{good}members = [\"192.0.2.10\"]\n"));
    assert!(!ok);
    assert!(text.contains("k8s.example.com.toml:6"), "{text}");
    assert!(text.contains("pool.api.members"), "{text}");
    assert!(text.contains("comes from the primary"), "{text}");
    let (ok, text) = check(&good.replace("xfr-key", "missing-key"));
    assert!(!ok);
    assert!(
        text.contains("primary.key") && text.contains("not defined"),
        "{text}"
    );
}

#[test]
fn a_reload_keeps_the_refresh_loop_unless_the_primary_changes() {
    let port = free_port();
    let _member = Backend::start_at(loopback(51, port));
    let (primary_state, secondary_state) = (TempDir::new("primary"), TempDir::new("secondary"));
    let secondary_address = loopback(1, free_port());
    let primary = start(
        loopback(1, free_port()),
        &primary_state,
        &primary_zone(&["127.0.0.51"], port, secondary_address),
    );
    let zone = secondary_zone(primary.addr(), Some("xfr-key"), port);
    let secondary = start(secondary_address, &secondary_state, &zone);
    wait_answered(&secondary, &["127.0.0.51"], "the first transfer");
    let zone_file = secondary.dir.path().join("zones/k8s.example.com.toml");
    // A loop is started in the writer's turn, before the reload is logged as done.
    let loops = |lines: &[String]| {
        lines
            .iter()
            .filter(|line| line.contains("refresh loop started"))
            .count()
    };
    assert_eq!(loops(&secondary.synced_logs()), 1);
    // A pool setting changes: the copy is laid over the new settings, the loop stays.
    std::fs::write(
        &zone_file,
        zone.replace(
            &format!("port = {port}\n"),
            &format!("port = {port}\nttl = 9\n"),
        ),
    )
    .expect("rewrite the zone file");
    let ttl = || {
        udp(secondary.addr(), &query(API, RecordType::A, None))
            .answers
            .first()
            .map(|record| record.ttl)
    };
    assert!(
        wait_until(LIMIT, || ttl() == Some(9)).is_some(),
        "the reload applies the pool's ttl"
    );
    assert_eq!(
        loops(&secondary.synced_logs()),
        1,
        "the same primary and key: the loop is kept"
    );
    // Now the key changes: a new loop.
    std::fs::write(
        &zone_file,
        zone.replace(", key = \"xfr-key\"", ", key = \"ops-key\""),
    )
    .expect("rewrite the zone file");
    assert!(
        wait_until(LIMIT, || loops(&secondary.logs()) == 2).is_some(),
        "a changed primary key starts a new loop: {}",
        secondary.logs().join("\n")
    );
    wait_answered(&secondary, &["127.0.0.51"], "the copy stays in force");
}
