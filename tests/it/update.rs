//! RFC 2136 dynamic updates with TSIG, driven by Debian's real `nsupdate` (package
//! `bind9-dnsutils`) against the real server: members added and removed, prerequisites,
//! refusals, and durability across a restart and a `kill -9`.

use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::Duration;

use hickory_proto::rr::{RData, RecordType};
use testkit::backend::{Backend, BlackHole};
use testkit::peers::soa_serial;
use testkit::*;

const KEY_NAME: &str = "ops-key";
const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0MTIzNDU=";

/// A server whose zone takes updates signed with `ops-key`, with one pool `api` on `port`
/// whose file member is `first`, and its journal in `state`.
fn start(state: &TempDir, port: u16, first: &str) -> TestServer {
    start_probing(
        state,
        port,
        first,
        "interval = \"200ms\"\ntimeout = \"100ms\"\nfast_interval = \"50ms\"\nrise = 1\nfall = 1",
    )
}

/// [`start`] with its own `[probe]` table.
fn start_probing(state: &TempDir, port: u16, first: &str, probe: &str) -> TestServer {
    // `update` is a top-level key, so it goes before the head's [soa] table.
    let zone = format!(
        "update = {{ keys = [\"{KEY_NAME}\"], allow = \"pool-members\" }}\n{ZONE_HEAD}\n[pool.api]\nport = {port}\nmembers = [\"{first}\"]\n"
    );
    let mut spec = ServerSpec::zone(&zone);
    spec.server_extra = format!(
        "state_dir = \"{}\"\nhttp = \"127.0.0.1:0\"\n\n[[tsig]]\nname = \"{KEY_NAME}\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{SECRET}\"\n",
        state.path().display()
    );
    // [[tsig]] is written after [server]; the [probe] table follows it.
    spec.probe = probe.to_string();
    TestServer::start(spec)
}

/// Runs `nsupdate` with `commands` against `server`, signed with `key` (`-y` form) when given,
/// over TCP when `tcp`. Returns whether it succeeded and what it printed.
fn nsupdate(server: SocketAddr, key: Option<&str>, tcp: bool, commands: &str) -> (bool, String) {
    let mut command = Command::new("nsupdate");
    if let Some(key) = key {
        command.args(["-y", key]);
    }
    if tcp {
        command.arg("-v");
    }
    command.args(["-t", "10"]);
    let script = format!(
        "server {} {}\n{commands}\nsend\n",
        server.ip(),
        server.port()
    );
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nsupdate is installed (apt-get install bind9-dnsutils)");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin.write_all(script.as_bytes()).expect("write script");
    }
    let output = child.wait_with_output().expect("nsupdate runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn good_key() -> String {
    format!("hmac-sha256:{KEY_NAME}:{SECRET}")
}

fn serial(server: SocketAddr) -> u32 {
    let reply = udp(server, &query("k8s.example.com.", RecordType::SOA, None));
    match reply.answers.first().map(|record| &record.data) {
        Some(RData::SOA(soa)) => soa.serial,
        other => panic!("no SOA in the answer: {other:?}"),
    }
}

fn journal(state: &TempDir) -> String {
    std::fs::read_to_string(state.path().join("journal")).unwrap_or_default()
}

fn ip(address: &str) -> IpAddr {
    address.parse().unwrap()
}

#[test]
#[cfg_attr(
    not(apidns_has_nsupdate),
    ignore = "needs nsupdate: apt-get install bind9-dnsutils, then cargo test --test it update::"
)]
fn nsupdate_adds_a_probed_member_and_deletes_one() {
    let port = free_port();
    let first = Backend::start_at(SocketAddr::new(ip("127.0.0.41"), port));
    let second = Backend::start_at(SocketAddr::new(ip("127.0.0.42"), port));
    let state = TempDir::new("update-add");
    let server = start(&state, port, "127.0.0.41");
    assert_eq!(a_sorted(server.addr(), API), ["127.0.0.41"]);
    let before = serial(server.addr());

    // A new member with a live listener is answered as soon as the update is acknowledged.
    let (ok, output) = nsupdate(
        server.addr(),
        Some(&good_key()),
        false,
        "zone k8s.example.com\nupdate add api.k8s.example.com 5 A 127.0.0.42",
    );
    assert!(ok, "nsupdate failed: {output}");
    assert_eq!(a_sorted(server.addr(), API), ["127.0.0.41", "127.0.0.42"]);
    let after_add = serial(server.addr());
    assert!(after_add > before, "serial {before} -> {after_add}");
    assert!(journal(&state).contains("add api.k8s.example.com. 127.0.0.42 file=absent"));

    // A member that nobody listens for is probed first, and so never answered.
    let (ok, output) = nsupdate(
        server.addr(),
        Some(&good_key()),
        true,
        "zone k8s.example.com\nupdate add api.k8s.example.com 5 A 127.0.0.43",
    );
    assert!(ok, "nsupdate over TCP failed: {output}");
    assert_eq!(a_sorted(server.addr(), API), ["127.0.0.41", "127.0.0.42"]);

    // Node replacement: one update deletes the old member and the dead one.
    let (ok, output) = nsupdate(
        server.addr(),
        Some(&good_key()),
        false,
        "zone k8s.example.com\nupdate delete api.k8s.example.com A 127.0.0.41\nupdate delete api.k8s.example.com A 127.0.0.43",
    );
    assert!(ok, "nsupdate failed: {output}");
    assert_eq!(a_sorted(server.addr(), API), ["127.0.0.42"]);
    assert!(serial(server.addr()) > after_add);
    assert!(
        server
            .wait_for_log(Duration::from_secs(2), |line| line
                .contains("update applied"))
            .is_some()
    );
    drop((first, second));
}

#[test]
#[cfg_attr(
    not(apidns_has_nsupdate),
    ignore = "needs nsupdate: apt-get install bind9-dnsutils, then cargo test --test it update::"
)]
fn failed_prerequisites_change_nothing() {
    let port = free_port();
    let _first = Backend::start_at(SocketAddr::new(ip("127.0.0.44"), port));
    let _second = Backend::start_at(SocketAddr::new(ip("127.0.0.45"), port));
    let state = TempDir::new("update-prereq");
    let server = start(&state, port, "127.0.0.44");
    let before = serial(server.addr());
    let add = "update add api.k8s.example.com 5 A 127.0.0.45";

    for (prerequisite, rcode) in [
        ("prereq nxrrset api.k8s.example.com A", "YXRRSET"),
        ("prereq yxrrset api.k8s.example.com AAAA", "NXRRSET"),
        ("prereq yxdomain nope.k8s.example.com", "NXDOMAIN"),
        ("prereq nxdomain api.k8s.example.com", "YXDOMAIN"),
        ("prereq yxrrset api.k8s.example.com A 127.0.0.99", "NXRRSET"),
    ] {
        let (ok, output) = nsupdate(
            server.addr(),
            Some(&good_key()),
            false,
            &format!("zone k8s.example.com\n{prerequisite}\n{add}"),
        );
        assert!(!ok, "{prerequisite}: nsupdate succeeded: {output}");
        assert!(output.contains(rcode), "{prerequisite}: {output}");
    }
    assert_eq!(a_sorted(server.addr(), API), ["127.0.0.44"]);
    assert_eq!(serial(server.addr()), before);
    assert_eq!(journal(&state), "");

    // The same update with prerequisites that hold is applied.
    let (ok, output) = nsupdate(
        server.addr(),
        Some(&good_key()),
        false,
        &format!(
            "zone k8s.example.com\nprereq yxrrset api.k8s.example.com A\nprereq yxrrset api.k8s.example.com A 127.0.0.44\nprereq nxdomain nope.k8s.example.com\nprereq yxdomain ns1.k8s.example.com\n{add}"
        ),
    );
    assert!(ok, "{output}");
    assert_eq!(a_sorted(server.addr(), API), ["127.0.0.44", "127.0.0.45"]);
}

#[test]
#[cfg_attr(
    not(apidns_has_nsupdate),
    ignore = "needs nsupdate: apt-get install bind9-dnsutils, then cargo test --test it update::"
)]
fn wrong_key_unsigned_other_zones_and_other_records_are_refused() {
    let port = free_port();
    let _first = Backend::start_at(SocketAddr::new(ip("127.0.0.46"), port));
    let state = TempDir::new("update-refused");
    let server = start(&state, port, "127.0.0.46");
    let add = "update add api.k8s.example.com 5 A 127.0.0.47";
    let cases = [
        (
            Some(format!(
                "hmac-sha256:{KEY_NAME}:c2VjcmV0LXNlY3JldC1zZWNyZXQtd3Jvbmcta2V5MTI="
            )),
            format!("zone k8s.example.com\n{add}"),
            "BADSIG",
        ),
        (
            Some(format!("hmac-sha256:other-key:{SECRET}")),
            format!("zone k8s.example.com\n{add}"),
            "BADKEY",
        ),
        (None, format!("zone k8s.example.com\n{add}"), "REFUSED"),
        (
            Some(good_key()),
            "zone other.example.com\nupdate add api.other.example.com 5 A 127.0.0.47".to_string(),
            "NOTAUTH",
        ),
        (
            Some(good_key()),
            "zone k8s.example.com\nupdate add www.example.org 5 A 127.0.0.47".to_string(),
            "NOTZONE",
        ),
        (
            Some(good_key()),
            "zone k8s.example.com\nupdate add www.k8s.example.com 5 A 127.0.0.47".to_string(),
            "REFUSED",
        ),
        (
            Some(good_key()),
            "zone k8s.example.com\nupdate add api.k8s.example.com 5 TXT hello".to_string(),
            "REFUSED",
        ),
        (
            Some(good_key()),
            "zone k8s.example.com\nupdate delete api.k8s.example.com A 127.0.0.46".to_string(),
            "REFUSED",
        ),
    ];
    for (key, commands, expected) in cases {
        let (ok, output) = nsupdate(server.addr(), key.as_deref(), false, &commands);
        assert!(!ok, "{commands}: nsupdate succeeded: {output}");
        assert!(
            output.contains(expected),
            "{commands}: expected {expected}: {output}"
        );
    }
    assert_eq!(a_sorted(server.addr(), API), ["127.0.0.46"]);
    assert_eq!(journal(&state), "");
}

#[test]
#[cfg_attr(
    not(apidns_has_nsupdate),
    ignore = "needs nsupdate: apt-get install bind9-dnsutils, then cargo test --test it update::"
)]
fn updates_survive_a_restart_and_kill_9() {
    let port = free_port();
    let _first = Backend::start_at(SocketAddr::new(ip("127.0.0.48"), port));
    let _second = Backend::start_at(SocketAddr::new(ip("127.0.0.49"), port));
    let state = TempDir::new("update-durable");

    let server = start(&state, port, "127.0.0.48");
    let (ok, output) = nsupdate(
        server.addr(),
        Some(&good_key()),
        false,
        "zone k8s.example.com\nupdate add api.k8s.example.com 5 A 127.0.0.49",
    );
    assert!(ok, "{output}");
    // Killed right after the acknowledgement: nothing may be lost.
    server.signal("KILL");
    drop(server);

    let server = start(&state, port, "127.0.0.48");
    assert_eq!(a_sorted(server.addr(), API), ["127.0.0.48", "127.0.0.49"]);
    let (ok, output) = nsupdate(
        server.addr(),
        Some(&good_key()),
        true,
        "zone k8s.example.com\nupdate delete api.k8s.example.com A 127.0.0.48",
    );
    assert!(ok, "{output}");
    server.signal("TERM");
    drop(server);

    let server = start(&state, port, "127.0.0.48");
    assert_eq!(a_sorted(server.addr(), API), ["127.0.0.49"]);
}

#[test]
#[cfg_attr(
    not(apidns_has_nsupdate),
    ignore = "needs nsupdate: apt-get install bind9-dnsutils, then cargo test --test it update::"
)]
fn a_damaged_journal_is_reported_and_does_not_stop_the_server() {
    let port = free_port();
    let _first = Backend::start_at(SocketAddr::new(ip("127.0.0.50"), port));
    let _second = Backend::start_at(SocketAddr::new(ip("127.0.0.51"), port));
    let state = TempDir::new("update-damaged");
    {
        let server = start(&state, port, "127.0.0.50");
        let (ok, output) = nsupdate(
            server.addr(),
            Some(&good_key()),
            false,
            "zone k8s.example.com\nupdate add api.k8s.example.com 5 A 127.0.0.51",
        );
        assert!(ok, "{output}");
        assert_eq!(metric(&server, "apidns_journal_damaged"), Some(0.0));
    }
    // Cut the end line off: the file is truncated.
    let text = journal(&state);
    let cut = text
        .trim_end()
        .rsplit_once('\n')
        .map(|(head, _)| head)
        .unwrap();
    state.write("journal", &format!("{cut}\n"));

    let server = start(&state, port, "127.0.0.50");
    let line = server
        .wait_for_log(Duration::from_secs(2), |line| {
            line.contains("update journal damaged")
        })
        .expect("the damage is logged");
    assert!(line.contains("journal: truncated after entry 1"), "{line}");
    // Alerting sees it too (contrib/prometheus: ApidnsJournalDamaged).
    assert_eq!(metric(&server, "apidns_journal_damaged"), Some(1.0));
    // The entries before the damage still apply; further updates are refused.
    assert_eq!(a_sorted(server.addr(), API), ["127.0.0.50", "127.0.0.51"]);
    let (ok, output) = nsupdate(
        server.addr(),
        Some(&good_key()),
        false,
        "zone k8s.example.com\nupdate delete api.k8s.example.com A 127.0.0.50",
    );
    assert!(!ok && output.contains("SERVFAIL"), "{output}");
    assert_eq!(journal(&state), format!("{cut}\n"));
}

#[test]
fn a_signature_outside_the_fudge_gets_badtime() {
    use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
    use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError};
    use hickory_proto::rr::{DNSClass, Name, TSigner};

    let port = free_port();
    let _first = Backend::start_at(SocketAddr::new(ip("127.0.0.52"), port));
    let state = TempDir::new("update-badtime");
    let server = start(&state, port, "127.0.0.52");

    let mut update = Message::new(0x4242, MessageType::Query, OpCode::Update);
    let mut zone = Query::query(
        Name::from_ascii("k8s.example.com.").unwrap(),
        RecordType::SOA,
    );
    zone.set_query_class(DNSClass::IN);
    update.add_query(zone);
    let secret = data_encoding::BASE64.decode(SECRET.as_bytes()).unwrap();
    let signer = TSigner::new(
        secret,
        TsigAlgorithm::HmacSha256,
        Name::from_ascii("ops-key.").unwrap(),
        300,
    )
    .unwrap();
    let an_hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 3600;
    update.finalize(&signer, an_hour_ago).unwrap();
    let reply = testkit::parse_reply(
        &testkit::udp_raw(server.addr(), &update.to_vec().unwrap()).expect("a reply"),
    );
    assert_eq!(reply.metadata.response_code, ResponseCode::NotAuth);
    let tsig = reply.signature().expect("the reply carries a TSIG record");
    assert_eq!(tsig.data.error, Some(TsigError::BadTime));
}

#[test]
#[cfg_attr(
    not(apidns_has_nsupdate),
    ignore = "needs nsupdate: apt-get install bind9-dnsutils, then cargo test --test it update::"
)]
fn the_most_recent_change_wins_between_files_and_journal() {
    let port = free_port();
    let _first = Backend::start_at(SocketAddr::new(ip("127.0.0.53"), port));
    let _second = Backend::start_at(SocketAddr::new(ip("127.0.0.54"), port));
    let state = TempDir::new("update-files");
    let server = start(&state, port, "127.0.0.53");
    let (ok, output) = nsupdate(
        server.addr(),
        Some(&good_key()),
        false,
        "zone k8s.example.com\nupdate add api.k8s.example.com 5 A 127.0.0.54",
    );
    assert!(ok, "{output}");

    // The operator adds the same member to the file, then removes it: the file's edit is the
    // most recent change to that member, so it wins over the journal entry, and says so.
    let zone_path = server.dir.path().join("zones/k8s.example.com.toml");
    let text = std::fs::read_to_string(&zone_path).unwrap();
    let listed = text.replace(
        "members = [\"127.0.0.53\"]",
        "members = [\"127.0.0.53\", \"127.0.0.54\"]",
    );
    std::fs::write(&zone_path, &listed).unwrap();
    server.signal("HUP");
    server
        .wait_for_log(Duration::from_secs(5), |line| {
            line.contains("is superseded: the zone file added that member since")
        })
        .expect("the superseded entry is logged");
    std::fs::write(&zone_path, &text).unwrap();
    server.signal("HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while a_sorted(server.addr(), API) != ["127.0.0.53"] {
        assert!(
            std::time::Instant::now() < deadline,
            "the file's removal did not win"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[cfg_attr(
    not(apidns_has_nsupdate),
    ignore = "needs nsupdate: apt-get install bind9-dnsutils, then cargo test --test it update::"
)]
fn queries_are_answered_while_an_update_waits_for_its_probe() {
    let port = free_port();
    let first = Backend::start_at(SocketAddr::new(ip("127.0.0.46"), port));
    // The new member's first probe times out (its SYNs are never answered), so the update
    // waits the whole probe timeout before it is acknowledged.
    let hole = BlackHole::start_at(SocketAddr::new(ip("127.0.0.47"), port));
    let state = TempDir::new("update-wait");
    let server = start_probing(
        &state,
        port,
        "127.0.0.46",
        "interval = \"5s\"\ntimeout = \"3s\"\nrise = 1\nfall = 1",
    );
    let address = server.addr();
    let update = std::thread::spawn(move || {
        nsupdate(
            address,
            Some(&good_key()),
            false,
            "zone k8s.example.com\nupdate add api.k8s.example.com 5 A 127.0.0.47",
        )
    });
    assert!(
        server
            .wait_for_log(Duration::from_secs(5), |line| line
                .contains("update journaled"))
            .is_some(),
        "the update never reached the writer"
    );
    // Meanwhile, queries from many source ports (which the kernel spreads over every worker's
    // socket) are all answered well within the probe timeout.
    let question = query(API, RecordType::A, None).to_vec().unwrap();
    for _ in 0..32 {
        let reply = testkit::udp_raw_timeout(address, &question, Duration::from_secs(1));
        assert!(reply.is_some(), "a query went unanswered during the update");
    }
    let (ok, output) = update.join().unwrap();
    assert!(ok, "nsupdate failed: {output}");
    assert_eq!(a_sorted(server.addr(), API), ["127.0.0.46"]);
    drop((first, hole));
}

#[test]
#[cfg_attr(
    not(apidns_has_nsupdate),
    ignore = "needs nsupdate: apt-get install bind9-dnsutils, then cargo test --test it update::"
)]
fn a_member_added_and_removed_in_turn_leaves_a_short_journal() {
    let port = free_port();
    let _first = Backend::start_at(SocketAddr::new(ip("127.0.0.51"), port));
    let _second = Backend::start_at(SocketAddr::new(ip("127.0.0.52"), port));
    let state = TempDir::new("update-compact");
    let server = start(&state, port, "127.0.0.51");
    let entries = |state: &TempDir| {
        journal(state)
            .lines()
            .filter(|line| line.starts_with("add ") || line.starts_with("remove "))
            .count()
    };
    // 50 updates, as the soak sends them, then one more add: the journal holds what makes the
    // pool differ from the file, never the history.
    for round in 0..51 {
        let operation = if round % 2 == 0 { "add" } else { "delete" };
        let (ok, output) = nsupdate(
            server.addr(),
            Some(&good_key()),
            false,
            &format!("zone k8s.example.com\nupdate {operation} api.k8s.example.com 5 A 127.0.0.52"),
        );
        assert!(ok, "update {round} ({operation}): {output}");
        assert!(
            entries(&state) <= 1,
            "after update {round}: {}",
            journal(&state)
        );
    }
    let text = journal(&state);
    assert!(
        text.contains("add api.k8s.example.com. 127.0.0.52 file=absent")
            && text.ends_with("end 1\n"),
        "{text}"
    );
    assert_eq!(a_sorted(server.addr(), API), ["127.0.0.51", "127.0.0.52"]);
    let serial = soa_serial(server.addr(), "k8s.example.com.").expect("a serial");
    assert!(
        serial > 42,
        "51 updates moved the serial past the file's 42: {serial}"
    );
    server.signal("KILL");
    drop(server);

    let server = start(&state, port, "127.0.0.51");
    assert_eq!(a_sorted(server.addr(), API), ["127.0.0.51", "127.0.0.52"]);
    assert_eq!(entries(&state), 1);
    // The same data after the restart keeps its serial; it does not go back to the file's (a
    // zone without `transfer` too: the serials are kept in the state directory).
    assert_eq!(
        soa_serial(server.addr(), "k8s.example.com."),
        Some(serial),
        "the serial after a restart"
    );
}
