//! Held TCP probes (`hold = true`, the default for `kind = "tcp"`) against real listeners on
//! loopback: a killed server leaves the answers when its held connection closes, long before the
//! periodic probe would notice; a server that closes idle connections never flaps.

mod common;

use std::time::{Duration, Instant};

use common::backend::Backend;
use common::*;

const API: &str = "api.k8s.example.com.";

/// Periodic probes every 5 s with `fall = 3`: the periodic path alone would need several
/// seconds, and its failure reason would be plain `connection refused`.
const SLOW_PERIODIC: &str = "interval = \"5s\"\ntimeout = \"500ms\"\nfall = 3\n";

fn start(members: &[String], probe: &str) -> TestServer {
    let members: Vec<String> = members.iter().map(|m| format!("\"{m}\"")).collect();
    let zone = format!(
        "{ZONE_HEAD}\n[pool.api]\nttl = 5\nmembers = [{}]\n",
        members.join(", ")
    );
    let mut spec = ServerSpec::zone(&zone);
    spec.probe = probe.to_string();
    TestServer::start(spec)
}

fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if condition() {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Kills `b` (with a FIN or a reset), checks it leaves within 1 s for `reason`, then restarts
/// it and checks it returns and is held again.
fn killed_member_leaves_at_once(first_octet: u8, reset: bool, reason: &str) {
    let a = Backend::start(&format!("127.0.{first_octet}.1"));
    let b = Backend::start(&format!("127.0.{first_octet}.2"));
    let server = start(&[a.member(), b.member()], SLOW_PERIODIC);
    assert_eq!(a_sorted(server.addr(), API), sorted(vec![a.ip(), b.ip()]));
    assert!(
        wait_until(Duration::from_secs(3), || b.open_connections() == 1).is_some(),
        "the prober holds one connection to the member"
    );

    let killed = Instant::now();
    let b_address = if reset { b.kill_with_reset() } else { b.kill() };
    let gone = wait_until(Duration::from_secs(10), || {
        a_sorted(server.addr(), API) == [a.ip()]
    });
    let gone = gone.expect("killed member still answered");
    assert!(
        gone < Duration::from_secs(1),
        "the held path should take it out at once, took {gone:?} (killed {:?} ago)",
        killed.elapsed()
    );
    let logs = server.logs().join("\n");
    assert!(
        logs.contains(&format!(
            "member down pool={API} member={b_address} from=\"up\" to=\"down\" reason={reason} consecutive=2"
        )),
        "the held path fired, not the periodic one:\n{logs}"
    );

    let b = Backend::start_at(b_address);
    // Back after `rise` fresh connections: a periodic probe (within 5 s) and a fast one.
    let back = wait_until(Duration::from_secs(15), || {
        a_sorted(server.addr(), API) == sorted(vec![a.ip(), b.ip()])
    });
    assert!(back.is_some(), "restarted member did not return");
    assert!(
        wait_until(Duration::from_secs(3), || b.open_connections() == 1).is_some(),
        "the returned member is held again"
    );
}

#[test]
fn killed_member_leaves_when_its_held_connection_closes() {
    killed_member_leaves_at_once(60, false, "held connection closed, reconnect refused");
}

#[test]
fn killed_member_leaves_when_its_held_connection_resets() {
    killed_member_leaves_at_once(61, true, "held connection reset, reconnect refused");
}

#[test]
fn idle_closing_server_never_flaps() {
    let a = Backend::start("127.0.62.1");
    let idle = Backend::start_idle_closing("127.0.62.2", Duration::from_millis(200));
    let probe = "interval = \"1s\"\ntimeout = \"500ms\"\n";
    let server = start(&[a.member(), idle.member()], probe);
    let both = sorted(vec![a.ip(), idle.ip()]);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        assert_eq!(
            a_sorted(server.addr(), API),
            both,
            "after {:?}",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let logs = server.logs().join("\n");
    assert!(!logs.contains("member down"), "{logs}");
    assert!(!logs.contains("member flaps"), "{logs}");
    // Re-holding backs off: about 4 periodic probes and a handful of holds, where reconnecting
    // on every close would have made 20 or more connections.
    let accepted = idle.accepted();
    eprintln!("idle-closing server accepted {accepted} connections in ~4s");
    assert!(
        accepted < 16,
        "the prober spins on an idle-closing server: {accepted}"
    );

    // It still leaves when it dies, and comes back when it returns.
    let address = idle.kill();
    assert!(
        wait_until(Duration::from_secs(4), || a_sorted(server.addr(), API)
            == [a.ip()])
        .is_some(),
        "killed idle-closing member still answered"
    );
    let _idle = Backend::start_idle_closing_at(address, Duration::from_millis(200));
    assert!(
        wait_until(Duration::from_secs(6), || a_sorted(server.addr(), API)
            == both)
        .is_some(),
        "restarted idle-closing member did not return"
    );
}

#[test]
fn hold_false_keeps_the_periodic_probe() {
    let a = Backend::start("127.0.63.1");
    let b = Backend::start("127.0.63.2");
    let probe =
        "interval = \"300ms\"\ntimeout = \"200ms\"\nfast_interval = \"100ms\"\nhold = false\n";
    let server = start(&[a.member(), b.member()], probe);
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(b.open_connections(), 0, "no connection is held");
    let b_address = b.kill();
    assert!(
        wait_until(Duration::from_secs(5), || a_sorted(server.addr(), API)
            == [a.ip()])
        .is_some()
    );
    let logs = server.logs().join("\n");
    assert!(
        logs.contains(&format!(
            "member={b_address} from=\"up\" to=\"down\" reason=connection refused consecutive=2"
        )),
        "{logs}"
    );
}

#[test]
fn a_flapping_member_is_held_down() {
    let a = Backend::start("127.0.64.1");
    let b = Backend::start("127.0.64.2");
    let probe = "interval = \"300ms\"\ntimeout = \"200ms\"\nfast_interval = \"100ms\"\n";
    let server = start(&[a.member(), b.member()], probe);
    let both = sorted(vec![a.ip(), b.ip()]);
    let mut b = Some(b);
    let mut address = None;
    // Down, back, down again within 5 × interval of coming back: a flap.
    for _ in 0..2 {
        if let Some(b) = b.take() {
            address = Some(b.kill());
        }
        assert!(
            wait_until(Duration::from_secs(5), || a_sorted(server.addr(), API)
                == [a.ip()])
            .is_some()
        );
        b = address.map(Backend::start_at);
        assert!(
            wait_until(Duration::from_secs(10), || a_sorted(server.addr(), API)
                == both)
            .is_some()
        );
    }
    assert!(
        server
            .wait_for_log(Duration::from_secs(1), |line| line.contains("member flaps"))
            .is_some(),
        "{}",
        server.logs().join("\n")
    );
}
