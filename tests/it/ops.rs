//! Operations against the real binary: reload by signal and by file change, a bad reload kept
//! out, health state kept across reloads, metrics, /status, readiness, drain and undrain.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use testkit::backend::Backend;
use testkit::*;

fn zone(members: &[&Backend], extra: &str) -> String {
    let members: Vec<String> = members
        .iter()
        .map(|b| format!("\"{}\"", b.member()))
        .collect();
    format!(
        "{ZONE_HEAD}\n[pool.api]\nttl = 5\nmembers = [{}]\n{extra}\n",
        members.join(", ")
    )
}

fn start(zone_text: &str, server_extra: &str) -> TestServer {
    let mut spec = ServerSpec::zone(zone_text);
    spec.probe = FAST_PROBE.to_string();
    spec.server_extra = server_extra.to_string();
    TestServer::start(spec)
}

fn serial(server: &TestServer) -> u32 {
    let reply = udp(
        server.addr(),
        &query("k8s.example.com.", RecordType::SOA, None),
    );
    match reply.answers.first().map(|r| &r.data) {
        Some(RData::SOA(soa)) => soa.serial,
        other => panic!("no SOA: {other:?}"),
    }
}

fn reloads(server: &TestServer) -> usize {
    server
        .logs()
        .iter()
        .filter(|l| l.contains("configuration reloaded"))
        .count()
}

fn zone_path(server: &TestServer) -> std::path::PathBuf {
    server.dir.path().join("zones/k8s.example.com.toml")
}

#[test]
fn sighup_reloads_and_the_serial_increases() {
    let a = Backend::start("127.0.30.1");
    let b = Backend::start("127.0.30.2");
    let server = start(&zone(&[&a], ""), "");
    assert_eq!(a_sorted(server.addr(), API), [a.ip()]);
    let before = serial(&server);

    std::fs::write(zone_path(&server), zone(&[&a, &b], "")).unwrap();
    server.signal("HUP");
    assert!(
        eventually(Duration::from_secs(10), || a_sorted(server.addr(), API)
            == sorted(vec![a.ip(), b.ip()])),
        "the added member is answered after SIGHUP"
    );
    assert!(serial(&server) > before, "serial increased");
}

#[test]
fn a_file_change_reloads_without_a_signal() {
    let a = Backend::start("127.0.31.1");
    let server = start(&zone(&[&a], ""), "");
    let text = zone(&[&a], "").replace(
        "{ name = \"ns1\", type = \"A\", value = \"192.0.2.53\" },",
        "{ name = \"ns1\", type = \"A\", value = \"192.0.2.53\" },\n  { name = \"new\", type = \"A\", value = \"192.0.2.77\" },",
    );
    std::fs::write(zone_path(&server), text).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || a_sorted(
            server.addr(),
            "new.k8s.example.com."
        ) == ["192.0.2.77"]),
        "edited zone is served; log:\n{}",
        server.logs().join("\n")
    );
}

#[test]
fn a_bad_reload_keeps_the_old_configuration_serving() {
    let a = Backend::start("127.0.32.1");
    let mut spec = ServerSpec::zone(&zone(&[&a], ""));
    spec.probe = FAST_PROBE.to_string();
    spec.server_extra = "http = \"127.0.0.1:0\"".to_string();
    let server = TestServer::start(spec);
    let before = serial(&server);
    let broken = zone(&[&a], "").replace(&format!("\"{}\"", a.member()), "\"127.0.32.300\"");
    std::fs::write(zone_path(&server), broken).unwrap();
    server.signal("HUP");
    let error = server.wait_for_log(Duration::from_secs(10), |l| {
        l.contains("configuration not reloaded")
    });
    let error = error.expect("the failed reload is logged");
    assert!(
        error.contains("k8s.example.com.toml:"),
        "names the file and line: {error}"
    );
    assert!(
        error.contains("pool.api.members[0]"),
        "names the field: {error}"
    );
    assert_eq!(
        a_sorted(server.addr(), API),
        [a.ip()],
        "old pool still served"
    );
    assert_eq!(serial(&server), before);
    let (_, metrics) = http_get(server.http.unwrap(), "/metrics");
    assert!(
        metrics.lines().any(
            |l| l.starts_with("apidns_config_reloads_total{result=\"failure\"}")
                && !l.ends_with(" 0")
        ),
        "failure counted:\n{metrics}"
    );
}

#[test]
fn health_state_survives_a_reload_and_new_members_are_probed_first() {
    let up = Backend::start("127.0.33.1");
    let down = Backend::start("127.0.33.2");
    let down_member = down.member();
    drop(down);
    let members = format!("\"{}\", \"{down_member}\"", up.member());
    let text = |extra_member: &str| {
        format!("{ZONE_HEAD}\n[pool.api]\nmembers = [{members}{extra_member}]\n")
    };
    let server = start(&text(""), "");
    assert_eq!(a_sorted(server.addr(), API), [up.ip()]);

    // Add a dead member and reload while querying: neither the known-dead member nor the new
    // dead one may ever appear (a reset health state or an unprobed member would show up).
    let dead_new = Backend::start("127.0.33.3");
    let dead_new_member = dead_new.member();
    drop(dead_new);
    std::fs::write(
        zone_path(&server),
        text(&format!(", \"{dead_new_member}\"")),
    )
    .unwrap();
    let count = reloads(&server);
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while reloads(&server) == count {
        assert_eq!(a_sorted(server.addr(), API), [up.ip()]);
        assert!(Instant::now() < deadline, "reload never logged");
    }
    for _ in 0..50 {
        assert_eq!(a_sorted(server.addr(), API), [up.ip()]);
    }
}

#[test]
fn metrics_status_and_readiness() {
    let a = Backend::start("127.0.34.1");
    let b = Backend::start("127.0.34.2");
    let server = start(&zone(&[&a, &b], ""), "http = \"127.0.0.1:0\"");
    let http = server.http.expect("http endpoint logged");
    assert_eq!(http_get(http, "/healthz").0, 200);
    assert_eq!(http_get(http, "/readyz"), (200, "ready\n".to_string()));
    // 24 queries: at least one UDP worker thread sees 8 of them, and one query in 8 is timed.
    for _ in 0..24 {
        udp(server.addr(), &query(API, RecordType::A, None));
    }
    tcp(
        server.addr(),
        &query("nope.k8s.example.com.", RecordType::A, None),
    );

    let (status, metrics) = http_get(http, "/metrics");
    assert_eq!(status, 200);
    let value = |prefix: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in:\n{metrics}"))
    };
    assert!(
        value(
            "apidns_queries_total{zone=\"k8s.example.com.\",qtype=\"A\",rcode=\"NOERROR\",transport=\"udp\"}"
        ) == 24.0
    );
    assert_eq!(
        value(
            "apidns_queries_total{zone=\"k8s.example.com.\",qtype=\"A\",rcode=\"NXDOMAIN\",transport=\"tcp\"}"
        ),
        1.0
    );
    let b_up = format!(
        "apidns_member_up{{pool=\"{API}\",member=\"{}\"}}",
        b.member()
    );
    assert_eq!(value(&b_up), 1.0);
    assert!(value("apidns_response_duration_seconds_count{transport=\"udp\"}") >= 1.0);
    assert!(metrics.contains("apidns_build_info"), "{metrics}");
    assert!(
        metrics.contains("apidns_probe_duration_seconds_bucket"),
        "{metrics}"
    );

    let b_address = b.kill();
    assert!(
        eventually(Duration::from_secs(5), || {
            let (_, metrics) = http_get(http, "/metrics");
            metrics.contains(&format!("{b_up} 0"))
            && metrics.contains(&format!("apidns_member_transitions_total{{pool=\"{API}\",member=\"{b_address}\",to=\"down\"}} 1"))
            && metrics.contains(&format!("apidns_pool_members_up{{pool=\"{API}\"}} 1"))
        }),
        "member gauge, transition counter and pool gauge follow the kill"
    );

    let (status, body) = http_get(http, "/status");
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).expect("status is JSON");
    assert_eq!(json["ready"], true);
    let pool = &json["zones"][0]["pools"][0];
    assert_eq!(pool["name"], API);
    let members = pool["members"].as_array().unwrap();
    let b_status = members
        .iter()
        .find(|m| m["port"] == b_address.port())
        .unwrap();
    assert_eq!(b_status["health"], "down");
    // The held connection's close and the refused reconnect took it down; a periodic probe
    // since then reports a plain refusal.
    assert!(
        matches!(
            b_status["last_result"].as_str(),
            Some("held connection closed, reconnect refused" | "connection refused")
        ),
        "{b_status}"
    );
    assert_eq!(b_status["answered"], false);
    assert!(b_status["consecutive_failures"].as_u64().unwrap() >= 2);
    let a_status = members
        .iter()
        .find(|m| m["port"] == a.address.port())
        .unwrap();
    assert_eq!(a_status["health"], "up");
    assert_eq!(a_status["last_result"], "ok");
    assert!(a_status["last_latency_ms"].as_f64().is_some());
    assert_eq!(http_get(http, "/nothing").0, 404);
}

#[test]
fn drain_and_undrain_take_effect_at_once() {
    let a = Backend::start("127.0.35.1");
    let b = Backend::start("127.0.35.2");
    let port = free_port();
    let server = start(
        &zone(&[&a, &b], ""),
        &format!("http = \"127.0.0.1:{port}\""),
    );
    let both = sorted(vec![a.ip(), b.ip()]);
    assert_eq!(a_sorted(server.addr(), API), both);

    let run = |action: &str| {
        Command::new(binary())
            .args([action, "--config"])
            .arg(&server.config)
            .args(["api.k8s.example.com", &b.ip()])
            .output()
            .unwrap()
    };
    let output = run("drain");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        a_sorted(server.addr(), API),
        [a.ip()],
        "gone by the next query"
    );
    let (_, body) = http_get(server.http.unwrap(), "/status");
    assert!(body.contains("\"drained\": true"), "{body}");

    // Drained means never answered, not even as the all-down fallback.
    let a_ip = a.ip();
    let a_address = a.kill();
    let http = server.http.unwrap();
    assert!(eventually(Duration::from_secs(5), || {
        let (_, body) = http_get(http, "/status");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        json["zones"][0]["pools"][0]["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["port"] == a_address.port() && m["health"] == "down")
    }));
    assert_eq!(
        a_sorted(server.addr(), API),
        [a_ip],
        "fallback answers the undrained member only"
    );

    let output = run("undrain");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        a_sorted(server.addr(), API),
        [b.ip()],
        "back by the next query"
    );

    let unknown = Command::new(binary())
        .args(["drain", "--config"])
        .arg(&server.config)
        .args(["api.k8s.example.com", "192.0.2.99"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no member 192.0.2.99"));
}

#[test]
fn drain_in_the_config_is_applied_by_reload() {
    let a = Backend::start("127.0.36.1");
    let b = Backend::start("127.0.36.2");
    let server = start(&zone(&[&a, &b], ""), "");
    std::fs::write(
        zone_path(&server),
        zone(&[&a, &b], &format!("drain = [\"{}\"]", b.ip())),
    )
    .unwrap();
    server.signal("HUP");
    assert!(eventually(Duration::from_secs(10), || a_sorted(
        server.addr(),
        API
    ) == [a.ip()]));
}

/// Hammers queries while the configuration is reloaded 100 times between two member sets; every
/// answer must be exactly one of the two, with no failure and no timeout.
#[test]
fn reload_stress_never_fails_a_query() {
    let x = Backend::start("127.0.37.1");
    let y = Backend::start("127.0.37.2");
    let z = Backend::start("127.0.37.3");
    let small = zone(&[&x, &y], "");
    let large = zone(&[&x, &y, &z], "");
    let server = start(&small, "");
    let small_set = sorted(vec![x.ip(), y.ip()]);
    let large_set = sorted(vec![x.ip(), y.ip(), z.ip()]);

    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let address = server.addr();
    let hammers: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            let answered = answered.clone();
            let (small_set, large_set) = (small_set.clone(), large_set.clone());
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let bytes = query(API, RecordType::A, None).to_vec().unwrap();
                    match udp_raw_timeout(address, &bytes, Duration::from_secs(2)) {
                        None => failures.push("timeout".to_string()),
                        Some(reply) => {
                            let reply = hickory_proto::op::Message::from_vec(&reply).unwrap();
                            let found = sorted(addresses(&reply));
                            if reply.metadata.response_code != ResponseCode::NoError
                                || (found != small_set && found != large_set)
                            {
                                failures
                                    .push(format!("{:?} {found:?}", reply.metadata.response_code));
                            }
                        }
                    }
                    answered.fetch_add(1, Ordering::Relaxed);
                }
                failures
            })
        })
        .collect();

    for round in 0..100 {
        let text = if round % 2 == 0 { &large } else { &small };
        std::fs::write(zone_path(&server), text).unwrap();
        let count = reloads(&server);
        server.signal("HUP");
        assert!(
            eventually(Duration::from_secs(10), || reloads(&server) > count),
            "reload {round} not applied"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let failures: Vec<String> = hammers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert!(
        failures.is_empty(),
        "failed queries during reloads: {failures:?}"
    );
    assert!(
        answered.load(Ordering::Relaxed) > 100,
        "queries kept flowing"
    );
}

#[test]
fn query_log_is_off_by_default_and_full_or_sampled_on_request() {
    let a = Backend::start("127.0.38.1");
    let count_logged = |server: &TestServer| {
        server
            .logs()
            .iter()
            .filter(|l| l.contains("apidns::query") && l.contains("name=api.k8s.example.com."))
            .count()
    };
    let quiet = start(&zone(&[&a], ""), "");
    udp(quiet.addr(), &query(API, RecordType::A, None));
    // A query's log line is written before its reply is sent; a reload's line comes after it.
    quiet.sync_logs();
    assert_eq!(count_logged(&quiet), 0, "no query log by default");

    let mut spec = ServerSpec::zone(&zone(&[&a], ""));
    spec.args = vec!["--query-log".into()];
    let full = TestServer::start(spec);
    udp(full.addr(), &query(API, RecordType::A, None));
    let line = full
        .wait_for_log(Duration::from_secs(5), |l| l.contains("apidns::query"))
        .expect("query logged");
    assert!(
        line.contains("qtype=A") && line.contains("rcode=NOERROR"),
        "{line}"
    );
    assert!(line.contains("client=127.0.0.1:"), "{line}");

    let mut spec = ServerSpec::zone(&zone(&[&a], ""));
    spec.args = vec!["--query-log".into(), "2".into()];
    let sampled = TestServer::start(spec);
    for _ in 0..4 {
        udp(sampled.addr(), &query(API, RecordType::A, None));
    }
    assert!(eventually(Duration::from_secs(5), || count_logged(
        &sampled
    ) == 2));
    sampled.sync_logs();
    assert_eq!(count_logged(&sampled), 2, "one in two logged");
}

/// `apidns serve --config apidns.toml` from the configuration's own directory: the file watcher
/// must still see edits (its events carry absolute paths).
#[test]
fn a_relative_config_path_still_reloads_on_file_change() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let a = Backend::start("127.0.39.1");
    let dir = TempDir::new("relative");
    dir.write("apidns.toml", "[server]\nlisten = [\"127.0.0.1:0\"]\n");
    dir.write("zones/k8s.toml", &zone(&[&a], ""));
    let mut child = Command::new(binary())
        .args(["serve", "--config", "apidns.toml"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let wait_for = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while let Ok(line) = lines.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if line.contains(needle) {
                return true;
            }
        }
        false
    };
    let started = wait_for(" serving ");
    if started {
        std::fs::write(dir.path().join("zones/k8s.toml"), zone(&[&a], "min_up = 1")).unwrap();
    }
    let reloaded = started && wait_for("configuration reloaded");
    let _ = child.kill();
    let _ = child.wait();
    assert!(started, "apidns started");
    assert!(
        reloaded,
        "an edit is picked up with a relative --config path"
    );
}
