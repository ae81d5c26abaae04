//! Health probing against real TCP listeners on loopback addresses that the tests start and
//! stop: members leave the answers when their listener dies and come back when it returns.

use std::process::Command;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use testkit::backend::{Backend, BlackHole};
use testkit::*;

fn pool_zone(members: &[String], extra: &str) -> String {
    let members: Vec<String> = members.iter().map(|m| format!("\"{m}\"")).collect();
    format!(
        "{ZONE_HEAD}\n[pool.api]\nttl = 5\nmembers = [{}]\n{extra}\n",
        members.join(", ")
    )
}

fn start(members: &[String], extra: &str, probe: &str) -> TestServer {
    let mut spec = ServerSpec::zone(&pool_zone(members, extra));
    spec.probe = probe.to_string();
    TestServer::start(spec)
}

#[test]
fn first_answers_already_leave_out_dead_members() {
    let up = Backend::start("127.0.1.1");
    let dead = Backend::start("127.0.1.2");
    let dead_member = dead.member();
    drop(dead);
    let server = start(&[up.member(), dead_member], "", "");
    // No waiting for `rise` rounds: the first round decided before the server started.
    assert_eq!(a_sorted(server.addr(), API), [up.ip()]);
}

#[test]
fn killed_member_leaves_and_returns_with_default_settings() {
    let a = Backend::start("127.0.2.1");
    let b = Backend::start("127.0.2.2");
    let c = Backend::start("127.0.2.3");
    let server = start(&[a.member(), b.member(), c.member()], "", "");
    let all = sorted(vec![a.ip(), b.ip(), c.ip()]);
    assert_eq!(a_sorted(server.addr(), API), all);

    // The held connection must be accepted before the kill: one still in the listener's queue
    // is reset by the kernel when the listener closes, which is a different signal.
    assert!(
        eventually(Duration::from_secs(5), || b.accepted() >= 1),
        "the held connection to b was never accepted"
    );
    let b_address = b.kill();
    // fall × interval + timeout = 2 × 1s + 0.5s, plus a generous margin for a loaded machine.
    let gone = wait_until(Duration::from_secs(6), || {
        a_sorted(server.addr(), API) == sorted(vec![a.ip(), c.ip()])
    });
    assert!(gone.is_some(), "killed member still answered");

    let _b = Backend::start_at(b_address);
    // rise × interval = 2 × 1s, plus margin.
    let back = wait_until(Duration::from_secs(6), || {
        a_sorted(server.addr(), API) == all
    });
    assert!(back.is_some(), "restarted member did not return");

    let logs = server.synced_logs().join("\n");
    // TCP probes hold a connection by default: the kill closes it, the reconnect is refused,
    // and those two signals take the member down at once.
    let down = format!(
        "member down pool={API} member={b_address} from=\"up\" to=\"down\" reason=held connection closed, reconnect refused consecutive=2"
    );
    assert!(
        logs.contains(&down),
        "transition logged with its reason:\n{logs}"
    );
    assert!(
        logs.contains(&format!(
            "member up pool={API} member={b_address} from=\"down\" to=\"up\""
        )),
        "{logs}"
    );
}

#[test]
fn all_down_answers_every_member_by_default() {
    let a = Backend::start("127.0.3.1");
    let b = Backend::start("127.0.3.2");
    let server = start(&[a.member(), b.member()], "", FAST_PROBE);
    let all = sorted(vec![a.ip(), b.ip()]);
    a.kill();
    b.kill();
    assert!(
        wait_until(Duration::from_secs(5), || server
            .logs()
            .iter()
            .any(|l| l.contains("answering with every member")))
        .is_some(),
        "all-down is logged"
    );
    assert_eq!(a_sorted(server.addr(), API), all);
}

#[test]
fn all_down_none_answers_nodata() {
    let a = Backend::start("127.0.4.1");
    let server = start(&[a.member()], "all_down = \"none\"", FAST_PROBE);
    assert_eq!(a_sorted(server.addr(), API), [a.ip()]);
    let a_address = a.kill();
    let nodata = wait_until(Duration::from_secs(5), || {
        let reply = udp(server.addr(), &query(API, RecordType::A, None));
        reply.metadata.response_code == ResponseCode::NoError
            && reply.answers.is_empty()
            && types(&reply.authorities) == [RecordType::SOA]
    });
    assert!(
        nodata.is_some(),
        "an all-down pool with all_down = none answers NODATA"
    );
    let _a = Backend::start_at(a_address);
    assert!(
        wait_until(Duration::from_secs(5), || a_sorted(server.addr(), API)
            == [a_address.ip().to_string()])
        .is_some()
    );
}

#[test]
fn min_up_answers_everyone_when_too_few_are_up() {
    let a = Backend::start("127.0.5.1");
    let b = Backend::start("127.0.5.2");
    let c = Backend::start("127.0.5.3");
    let all = sorted(vec![a.ip(), b.ip(), c.ip()]);
    let server = start(
        &[a.member(), b.member(), c.member()],
        "min_up = 2",
        FAST_PROBE,
    );
    c.kill();
    assert!(
        wait_until(Duration::from_secs(5), || a_sorted(server.addr(), API)
            == sorted(vec![a.ip(), b.ip()]))
        .is_some()
    );
    b.kill();
    // One of three up is below min_up: answer with all three, so a prober cut off from most of
    // the cluster does not steer every client to the one node it can still see.
    assert!(
        wait_until(Duration::from_secs(5), || a_sorted(server.addr(), API)
            == all)
        .is_some()
    );
}

#[test]
fn black_holed_member_is_dropped_without_delaying_the_others() {
    let hole = BlackHole::start("127.0.6.1");
    let b = Backend::start("127.0.6.2");
    let c = Backend::start("127.0.6.3");
    let probe = "interval = \"1s\"\ntimeout = \"500ms\"\n";
    let server = start(&[hole.member(), b.member(), c.member()], "", probe);
    // The first round already timed out on the black hole.
    assert_eq!(a_sorted(server.addr(), API), sorted(vec![b.ip(), c.ip()]));
    let logs = server.synced_logs().join("\n");
    assert!(
        logs.contains(&format!(
            "member={} from=\"pending\" to=\"down\" reason=timeout after 500ms",
            hole.member()
        )),
        "{logs}"
    );

    // A refused member next to the black hole is still detected on time.
    let killed = Instant::now();
    b.kill();
    let gone = wait_until(Duration::from_secs(6), || {
        a_sorted(server.addr(), API) == [c.ip()]
    });
    assert!(gone.is_some(), "member beside a black hole was not dropped");
    assert!(
        killed.elapsed() < Duration::from_secs(4),
        "took {:?}",
        killed.elapsed()
    );
}

#[test]
fn rotation_covers_every_live_member() {
    let backends: Vec<Backend> = (1..=4)
        .map(|i| Backend::start(&format!("127.0.7.{i}")))
        .collect();
    let members: Vec<String> = backends.iter().map(Backend::member).collect();
    let server = start(&members, "", FAST_PROBE);
    let mut backends = backends;
    let dead = backends.remove(1);
    dead.kill();
    let live = sorted(backends.iter().map(Backend::ip).collect());
    assert!(
        wait_until(Duration::from_secs(5), || a_sorted(server.addr(), API)
            == live)
        .is_some()
    );
    let mut firsts: Vec<String> = (0..live.len())
        .map(|_| addresses(&udp(server.addr(), &query(API, RecordType::A, None)))[0].clone())
        .collect();
    firsts.sort();
    assert_eq!(firsts, live, "each live member comes first once per cycle");
}

#[test]
fn member_with_its_own_port_and_ipv6() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback on this machine: the IPv6 member part is not exercised");
        return;
    }
    let v4 = Backend::start("127.0.8.1");
    let v6 = Backend::start("::1");
    let v6_member = format!("[::1]:{}", v6.address.port());
    let server = start(&[v4.member(), v6_member], "port = 1", FAST_PROBE);
    let aaaa =
        |server: &TestServer| addresses(&udp(server.addr(), &query(API, RecordType::AAAA, None)));
    assert_eq!(aaaa(&server), ["::1"]);
    v6.kill();
    // With the only IPv6 member down the pool is not all down (the IPv4 one is up), so AAAA is
    // NODATA rather than the fallback.
    assert!(wait_until(Duration::from_secs(5), || aaaa(&server).is_empty()).is_some());
    assert_eq!(a_sorted(server.addr(), API), [v4.ip()]);
}

#[test]
fn probe_command_prints_a_table_and_sets_the_exit_status() {
    let up = Backend::start("127.0.9.1");
    let dead = Backend::start("127.0.9.2");
    let dead_member = dead.member();
    drop(dead);
    let dir = TempDir::new("probe");
    let config = dir.write("apidns.toml", "[server]\nlisten = [\"127.0.0.1:0\"]\n");
    dir.write(
        "zones/k8s.toml",
        &pool_zone(&[up.member(), dead_member.clone()], ""),
    );
    let output = Command::new(binary())
        .args(["probe", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("connection refused"), "{stdout}");
    assert!(stdout.contains("1 of 2 members up"), "{stdout}");

    dir.write("zones/k8s.toml", &pool_zone(&[dead_member], ""));
    let output = Command::new(binary())
        .args(["probe", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}
