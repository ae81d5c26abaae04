//! Held HTTPS probes (`kind = "https"`, `hold = true`, the default) against stand-in API servers
//! on loopback that speak HTTP/2 (or HTTP/1.1 only): a killed or gracefully stopping server
//! leaves the answers long before the next request would notice, a frozen one within seconds;
//! GOAWAYs and idle closes never make a member flap; requests share one connection.

use std::time::{Duration, Instant};

use testkit::https::{ApiServer, Authority, Identity, server_tls, server_tls_h2};
use testkit::*;

/// Requests every 5 s with `fall = 3`: anything that takes a member out within a second is the
/// held connection's doing.
const SLOW: &str = "interval = \"5s\"\ntimeout = \"500ms\"\nfall = 3\n";

struct Cluster {
    identity: Identity,
    server: TestServer,
}

/// apidns with `[probe]` = HTTPS to `members` with the test CA, plus `probe`.
fn start(ca: &Authority, identity: Identity, members: &[String], probe: &str) -> Cluster {
    let dir = TempDir::new("held-https");
    dir.write("ca.crt", &ca.pem());
    let config = dir.write(
        "apidns.toml",
        &format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\n[probe]\nkind = \"https\"\nca_file = \"ca.crt\"\n{probe}\n"
        ),
    );
    let members: Vec<String> = members.iter().map(|m| format!("\"{m}\"")).collect();
    dir.write(
        "zones/k8s.example.com.toml",
        &format!(
            "{ZONE_HEAD}\n[pool.api]\nttl = 5\nmembers = [{}]\n",
            members.join(", ")
        ),
    );
    Cluster {
        identity,
        server: TestServer::start_with(dir, config, &[]),
    }
}

/// Two HTTP/2 API servers on `127.0.{octet}.1` and `.2`, and apidns probing them.
fn pair(octet: u8, probe: &str) -> (ApiServer, ApiServer, Cluster) {
    let ca = Authority::new("apidns test CA");
    let identity = ca.issue(&[API_NAME]);
    let a = ApiServer::https_h2(&format!("127.0.{octet}.1"), &identity);
    let b = ApiServer::https_h2(&format!("127.0.{octet}.2"), &identity);
    let cluster = start(&ca, identity, &[a.member(), b.member()], probe);
    assert_eq!(
        a_sorted(cluster.server.addr(), API),
        sorted(vec![a.ip(), b.ip()])
    );
    (a, b, cluster)
}

fn down_lines(server: &TestServer) -> Vec<String> {
    server
        .synced_logs()
        .into_iter()
        .filter(|line| line.contains("member down") || line.contains("member flaps"))
        .collect()
}

/// Kills `b` with a FIN or a reset: it leaves within a second, for `reason`.
fn killed_member_leaves_at_once(octet: u8, reset: bool, reason: &str) {
    let (a, b, cluster) = pair(octet, SLOW);
    let server = &cluster.server;
    assert!(
        wait_until(Duration::from_secs(3), || b.open_connections() == 1).is_some(),
        "the prober holds one connection"
    );
    let seen = b.seen();
    assert!(
        seen[0].head.starts_with("GET /readyz HTTP/2.0\r\n"),
        "HTTP/2 by ALPN: {:?}",
        seen[0]
    );

    let address = if reset { b.kill_with_reset() } else { b.kill() };
    let gone = wait_until(Duration::from_secs(10), || {
        a_sorted(server.addr(), API) == [a.ip()]
    })
    .expect("the killed member still answered");
    assert!(gone < Duration::from_secs(1), "took {gone:?}");
    let logs = server.synced_logs().join("\n");
    assert!(
        logs.contains(&format!(
            "member={address} from=\"up\" to=\"down\" reason={reason} consecutive=2"
        )),
        "{logs}"
    );

    // Back after `rise` successes on fresh connections, and held again.
    let b = ApiServer::start_at(address, Some(server_tls_h2(&cluster.identity)));
    assert!(
        wait_until(Duration::from_secs(15), || a_sorted(server.addr(), API)
            .len()
            == 2)
        .is_some(),
        "the restarted member did not return"
    );
    assert!(
        wait_until(Duration::from_secs(3), || b.open_connections() == 1).is_some(),
        "the returned member is held again"
    );
}

#[test]
fn killed_member_leaves_when_its_held_connection_closes() {
    killed_member_leaves_at_once(70, false, "held connection closed, reconnect refused");
}

#[test]
fn killed_member_leaves_when_its_held_connection_resets() {
    killed_member_leaves_at_once(71, true, "held connection reset, reconnect refused");
}

#[test]
fn graceful_shutdown_leaves_long_before_the_next_request() {
    let (a, b, cluster) = pair(72, SLOW);
    let server = &cluster.server;
    assert!(wait_until(Duration::from_secs(3), || b.open_connections() == 1).is_some());
    // `/readyz` answers 500 at once, then the listener closes and GOAWAY goes out.
    b.shut_down_gracefully(Duration::ZERO);
    let gone = wait_until(Duration::from_secs(10), || {
        a_sorted(server.addr(), API) == [a.ip()]
    })
    .expect("the stopping member still answered");
    assert!(gone < Duration::from_secs(1), "took {gone:?}");
    let down = down_lines(server).join("\n");
    assert!(
        down.contains(&format!("member={} from=\"up\" to=\"down\"", b.member())),
        "{down}"
    );
}

#[test]
fn a_500_is_confirmed_at_once_not_after_fall_intervals() {
    let (a, b, cluster) = pair(73, SLOW);
    let server = &cluster.server;
    let requests = b.requests("/readyz");
    // Listening and serving, only not ready: the next request sees it, a second one confirms.
    b.set(testkit::https::Mode::NotReady);
    let gone = wait_until(Duration::from_secs(12), || {
        a_sorted(server.addr(), API) == [a.ip()]
    })
    .expect("the unready member still answered");
    assert!(gone < Duration::from_millis(6500), "took {gone:?}");
    // With fall = 3, the periodic rule would have needed three requests.
    assert_eq!(
        b.requests("/readyz"),
        requests + 2,
        "one request and its confirmation"
    );
    let logs = server.synced_logs().join("\n");
    assert!(
        logs.contains("reason=HTTP status 500 (expected 200) consecutive=2"),
        "{logs}"
    );
}

/// Over 4 s of `disruption` (which makes the prober reconnect), the member never leaves the
/// answers, and the prober reconnects without spinning.
fn never_flaps(octet: u8, disruption: impl FnOnce(&ApiServer), what: &str) {
    let (a, b, cluster) = pair(octet, "interval = \"1s\"\ntimeout = \"500ms\"\n");
    let server = &cluster.server;
    disruption(&b);
    let both = sorted(vec![a.ip(), b.ip()]);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        assert_eq!(a_sorted(server.addr(), API), both);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(down_lines(server).is_empty(), "{:?}", down_lines(server));
    assert!(
        b.accepted() >= 3,
        "{what} made the prober reconnect: {} connections",
        b.accepted()
    );
    assert!(
        b.accepted() < 16,
        "the prober spins on {what}: {}",
        b.accepted()
    );
}

#[test]
fn random_goaways_never_flap() {
    never_flaps(
        74,
        |b| b.goaway_after(Some(Duration::from_millis(300))),
        "GOAWAYs",
    );
}

#[test]
fn idle_closing_server_never_flaps() {
    never_flaps(
        75,
        |b| b.close_idle_after(Some(Duration::from_millis(500))),
        "idle closes",
    );
}

#[test]
fn frozen_server_is_caught_between_requests() {
    let (a, b, cluster) = pair(76, SLOW);
    let server = &cluster.server;
    assert!(wait_until(Duration::from_secs(3), || b.open_connections() == 1).is_some());
    b.freeze(true);
    let gone = wait_until(Duration::from_secs(10), || {
        a_sorted(server.addr(), API) == [a.ip()]
    })
    .expect("the frozen member still answered");
    assert!(
        gone < Duration::from_secs(3),
        "PINGs should catch it, took {gone:?}"
    );
    // An unanswered PING, or (if the 5 s request fell in that second) the request's timeout,
    // confirmed by a fresh connection whose handshake never completes.
    let down = down_lines(server).join("\n");
    assert!(
        down.contains("reason=held connection stopped answering PINGs, reconnect failed: timeout after 500ms waiting for the TLS handshake")
            || down.contains("reason=timeout after 500ms waiting for the TLS handshake consecutive=2"),
        "{down}"
    );
    b.freeze(false);
}

#[test]
fn requests_share_one_held_connection() {
    let (_a, b, _cluster) = pair(77, "interval = \"200ms\"\ntimeout = \"150ms\"\n");
    let (accepted, requests) = (b.accepted(), b.requests("/readyz"));
    // Ten requests, watched for rather than slept through; what is checked is how many
    // connections carried them, not how fast they came (a loaded machine slows the probes).
    let took = wait_until(Duration::from_secs(10), || {
        b.requests("/readyz") - requests >= 10
    });
    let accepted = b.accepted() - accepted;
    let requests = b.requests("/readyz") - requests;
    eprintln!("in {took:?}: {accepted} new connections, {requests} requests");
    assert!(took.is_some(), "{requests} requests in 10 s");
    assert!(accepted <= 2, "{accepted} new connections");
    assert!(b.open_connections() <= 2, "{}", b.open_connections());
}

#[test]
fn hold_false_keeps_the_periodic_probe() {
    let (a, b, cluster) = pair(
        78,
        "interval = \"200ms\"\ntimeout = \"150ms\"\nhold = false\n",
    );
    let server = &cluster.server;
    let (accepted, requests) = (b.accepted(), b.requests("/readyz"));
    // Five requests, watched for rather than slept through; what is checked is that each came
    // on its own connection, not how fast they came.
    let took = wait_until(Duration::from_secs(10), || {
        b.requests("/readyz") - requests >= 5
    });
    let accepted = b.accepted() - accepted;
    let requests = b.requests("/readyz") - requests;
    assert!(took.is_some(), "{requests} requests in 10 s");
    // One connection per request (the counts are read a moment apart).
    assert!(
        accepted.abs_diff(requests) <= 1,
        "{accepted} connections for {requests} requests"
    );
    assert!(
        b.seen()[0].head.starts_with("GET /readyz HTTP/1.1\r\n"),
        "the periodic probe speaks HTTP/1.1"
    );
    let address = b.kill();
    assert!(
        wait_until(Duration::from_secs(5), || a_sorted(server.addr(), API)
            == [a.ip()])
        .is_some()
    );
    let logs = server.synced_logs().join("\n");
    assert!(
        logs.contains(&format!(
            "member={address} from=\"up\" to=\"down\" reason=connection refused consecutive=2"
        )),
        "{logs}"
    );
}

#[test]
fn http1_only_server_is_held_with_keep_alive() {
    let ca = Authority::new("apidns test CA");
    let identity = ca.issue(&[API_NAME]);
    let a = ApiServer::https("127.0.79.1", &identity);
    let b = ApiServer::start("127.0.79.2", Some(server_tls(&identity, None)));
    let cluster = start(
        &ca,
        identity,
        &[a.member(), b.member()],
        "interval = \"200ms\"\ntimeout = \"150ms\"\nfall = 3\n",
    );
    let server = &cluster.server;
    assert_eq!(a_sorted(server.addr(), API), sorted(vec![a.ip(), b.ip()]));
    // Five requests, watched for rather than slept through; what is checked is that they
    // share a kept-alive connection, not how fast they came.
    let took = wait_until(Duration::from_secs(10), || b.seen().len() >= 5);
    let seen = b.seen();
    assert!(took.is_some(), "{} requests in 10 s", seen.len());
    assert!(
        seen[0].head.starts_with("GET /readyz HTTP/1.1\r\n"),
        "{:?}",
        seen[0]
    );
    assert!(
        !seen[0]
            .head
            .to_ascii_lowercase()
            .contains("connection: close"),
        "{:?}",
        seen[0]
    );
    assert!(seen.len() >= 5, "{} requests", seen.len());
    assert!(b.accepted() <= 2, "{} connections", b.accepted());

    let address = b.kill();
    let gone = wait_until(Duration::from_secs(5), || {
        a_sorted(server.addr(), API) == [a.ip()]
    })
    .expect("the killed member still answered");
    assert!(gone < Duration::from_millis(500), "took {gone:?}");
    // The close, unless the kill caught a request in flight, whose confirmation was refused.
    let down = down_lines(server).join("\n");
    assert!(
        down.contains(&format!(
            "member={address} from=\"up\" to=\"down\" reason=held connection closed, reconnect refused"
        )) || down.contains("reason=connection refused"),
        "{down}"
    );
}
