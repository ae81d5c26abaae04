//! Black holes: a member whose host vanishes without a FIN or an RST (power loss, a firewall
//! dropping everything). The member listens in a network namespace that the test creates; the
//! test turns the namespace's link off and checks that the member leaves the answers, that the
//! signal is a timeout, and that it returns when the link comes back. Needs root.

use std::time::Duration;

use testkit::backend::Backend;
use testkit::netns::Namespace;
use testkit::*;

fn start(members: &[String], probe: &str) -> TestServer {
    let members: Vec<String> = members.iter().map(|m| format!("\"{m}\"")).collect();
    let zone = format!(
        "{ZONE_HEAD}\n[pool.api]\nttl = 5\nmembers = [{}]\n",
        members.join(", ")
    );
    let mut spec = ServerSpec::zone(&zone);
    spec.probe = probe.to_string();
    spec.server_extra = "http = \"127.0.0.1:0\"".to_string();
    TestServer::start(spec)
}

/// Black-holes a member probed with `probe`, checks it leaves within 10 s on a timeout signal
/// and comes back; returns how long it took to leave.
fn black_holed_member_leaves(probe: &str, held: bool) -> Duration {
    let namespace = Namespace::create();
    let inner = namespace.inner_address().to_string();
    let far = namespace.inside(move || Backend::start(&inner));
    let near = Backend::start("127.0.70.1");
    let server = start(&[near.member(), far.member()], probe);
    let both = {
        let mut both = vec![near.ip(), far.ip()];
        both.sort();
        both
    };
    assert_eq!(a_sorted(server.addr(), API), both);
    if held {
        assert!(
            wait_until(Duration::from_secs(3), || far.open_connections() == 1).is_some(),
            "the prober holds a connection across the veth"
        );
    }

    namespace.black_hole();
    let gone = wait_until(Duration::from_secs(10), || {
        a_sorted(server.addr(), API) == [near.ip()]
    })
    .unwrap_or_else(|| panic!("black-holed member still answered after 10 s"));
    eprintln!("black-holed member left the answers after {gone:?}");
    let status = member_status(&server, far.address);
    assert_eq!(status["health"], "down", "{status}");
    assert_eq!(status["down_signal"], "timeout", "{status}");
    assert!(status["detection_ms"].as_f64().is_some(), "{status}");
    let (_, metrics) = http_get(server.http.expect("http endpoint"), "/metrics");
    let counted = format!(
        "apidns_member_down_total{{pool=\"{API}\",member=\"{}\",signal=\"timeout\"}} 1",
        far.address
    );
    assert!(metrics.contains(&counted), "{counted} in:\n{metrics}");

    namespace.restore();
    assert!(
        wait_until(Duration::from_secs(10), || a_sorted(server.addr(), API)
            == both)
        .is_some(),
        "the member did not return when its link came back"
    );
    gone
}

#[test]
#[cfg_attr(
    not(apidns_has_netns),
    ignore = "needs root and iproute2 (ip netns): as root, cargo test --test it blackhole::"
)]
fn held_connection_notices_a_black_hole() {
    // Default probe settings: interval 1 s, timeout 500 ms, held connection.
    let gone = black_holed_member_leaves("", true);
    // Keepalive goes out 1 s after the last answer; unanswered, a 500 ms connect confirms.
    assert!(gone < Duration::from_secs(5), "took {gone:?}");
}

#[test]
#[cfg_attr(
    not(apidns_has_netns),
    ignore = "needs root and iproute2 (ip netns): as root, cargo test --test it blackhole::"
)]
fn periodic_probes_notice_a_black_hole() {
    black_holed_member_leaves("hold = false\n", false);
}
