//! HTTPS and HTTP readiness probes against real servers on loopback addresses: stand-in API
//! servers with certificates made here (rcgen) answer `/readyz` with 200, then 500, then not at
//! all, and the real apidns binary drops and restores them. Certificates from another CA and
//! certificates without the pool's name are rejected, with reasons that say so.

use std::process::{Command, Output};
use std::time::Duration;

use testkit::https::{ApiServer, Authority, Mode, server_tls};
use testkit::*;

/// Generous bounds: the machine may be busy with other builds.
const CHANGE_LIMIT: Duration = Duration::from_secs(6);

/// The zone with one pool, `api`, whose `probe` table body is `probe`.
fn zone(members: &[String], probe: &str) -> String {
    let members: Vec<String> = members.iter().map(|m| format!("\"{m}\"")).collect();
    format!(
        "{ZONE_HEAD}\n[pool.api]\nmembers = [{}]\nprobe = {{ {probe} }}\n",
        members.join(", ")
    )
}

/// A configuration directory: the main file with `[probe]` = `defaults`, the zone, and `files`
/// (name, contents) beside the zone file, where relative paths in the pool's `probe` point.
fn config_dir(
    members: &[String],
    probe: &str,
    defaults: &str,
    files: &[(&str, &str)],
) -> (TempDir, std::path::PathBuf) {
    let dir = TempDir::new("https");
    let config = dir.write(
        "apidns.toml",
        &format!("[server]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\n[probe]\n{defaults}\n"),
    );
    dir.write("zones/k8s.example.com.toml", &zone(members, probe));
    for (name, text) in files {
        dir.write(&format!("zones/{name}"), text);
    }
    (dir, config)
}

fn start(members: &[String], probe: &str, files: &[(&str, &str)]) -> TestServer {
    let (dir, config) = config_dir(members, probe, FAST_PROBE, files);
    TestServer::start_with(dir, config, &[])
}

/// Runs `apidns COMMAND --config FILE`.
fn run(command: &str, config: &std::path::Path) -> Output {
    Command::new(binary())
        .args([command, "--config"])
        .arg(config)
        .output()
        .unwrap()
}

/// Waits for a transition log line about `member` that contains `text`.
fn transition(server: &TestServer, member: &str, text: &str) -> String {
    let member = format!("member={member} ");
    server
        .wait_for_log(CHANGE_LIMIT, |line| {
            line.contains(&member) && line.contains(text)
        })
        .unwrap_or_else(|| {
            panic!(
                "no log line about {member} with {text:?}:\n{}",
                server.logs().join("\n")
            )
        })
}

#[test]
fn https_member_leaves_when_not_ready_or_hung_and_returns() {
    let ca = Authority::new("apidns test CA");
    let identity = ca.issue(&[API_NAME]);
    let a = ApiServer::https("127.0.20.1", &identity);
    let b = ApiServer::https("127.0.20.2", &identity);
    let server = start(
        &[a.member(), b.member()],
        "kind = \"https\", ca_file = \"ca.crt\"",
        &[("ca.crt", &ca.pem())],
    );
    let both = sorted(vec![a.ip(), b.ip()]);
    assert_eq!(a_sorted(server.addr(), API), both);

    // The probe asks for /readyz by the pool's name, and the certificate proved it carries it.
    let seen = a.seen();
    let first = seen.first().expect("the first round reached the server");
    assert_eq!(first.sni.as_deref(), Some(API_NAME));
    assert!(
        first.head.starts_with("GET /readyz HTTP/1.1\r\n"),
        "{first:?}"
    );
    assert!(
        first
            .head
            .to_ascii_lowercase()
            .contains(&format!("host: {API_NAME}:{}\r\n", a.address.port())),
        "{first:?}"
    );

    b.set(Mode::NotReady);
    assert!(
        eventually(CHANGE_LIMIT, || a_sorted(server.addr(), API) == [a.ip()]),
        "a member whose /readyz answers 500 still answered"
    );
    let down = transition(&server, &b.member(), "member down");
    assert!(
        down.contains(
            "from=\"up\" to=\"down\" reason=HTTP status 500 (expected 200) consecutive=2"
        ),
        "{down}"
    );

    b.set(Mode::Ready);
    assert!(
        eventually(CHANGE_LIMIT, || a_sorted(server.addr(), API) == both),
        "a member that is ready again did not return"
    );
    let up = transition(&server, &b.member(), "member up");
    assert!(up.contains("reason=HTTP 200 in "), "{up}");

    // Accepts the connection and the request, and never answers: what a wedged API server does.
    b.set(Mode::Hang);
    assert!(
        eventually(CHANGE_LIMIT, || a_sorted(server.addr(), API) == [a.ip()]),
        "a member that never answers still answered"
    );
    transition(
        &server,
        &b.member(),
        "reason=timeout after 200ms waiting for the HTTP response",
    );

    b.set(Mode::Ready);
    assert!(
        eventually(CHANGE_LIMIT, || a_sorted(server.addr(), API) == both),
        "a member that answers again did not return"
    );
}

#[test]
fn certificates_from_another_ca_or_without_the_name_are_rejected() {
    let ca = Authority::new("apidns test CA");
    let other_ca = Authority::new("someone else's CA");
    let good = ApiServer::https("127.0.20.11", &ca.issue(&[API_NAME]));
    let wrong_ca = ApiServer::https("127.0.20.12", &other_ca.issue(&[API_NAME]));
    let wrong_name = ApiServer::https(
        "127.0.20.13",
        &ca.issue(&["other.example.com", "127.0.20.13"]),
    );
    let server = start(
        &[good.member(), wrong_ca.member(), wrong_name.member()],
        "kind = \"https\", ca_file = \"ca.crt\"",
        &[("ca.crt", &ca.pem())],
    );
    // The first round already decided: only the member with a good certificate answers.
    assert_eq!(a_sorted(server.addr(), API), [good.ip()]);

    let untrusted = transition(&server, &wrong_ca.member(), "member down");
    assert!(
        untrusted.contains("from=\"pending\" to=\"down\" reason=certificate not trusted: it is not signed by the CA in "),
        "{untrusted}"
    );
    assert!(untrusted.contains("ca.crt"), "{untrusted}");
    let mismatch = transition(&server, &wrong_name.member(), "member down");
    assert!(
        mismatch.contains(
            "reason=certificate does not match server name api.k8s.example.com (it is valid for other.example.com, 127.0.20.13)"
        ),
        "{mismatch}"
    );
    // Neither server ever saw a request: the probe stops at the handshake.
    assert!(wrong_ca.seen().is_empty() && wrong_name.seen().is_empty());
}

#[test]
fn server_name_and_path_can_be_set() {
    let ca = Authority::new("apidns test CA");
    let api = ApiServer::https("127.0.20.21", &ca.issue(&["kubernetes.default.svc"]));
    let server = start(
        &[api.member()],
        "kind = \"https\", ca_file = \"ca.crt\", server_name = \"kubernetes.default.svc\", path = \"/livez?verbose\"",
        &[("ca.crt", &ca.pem())],
    );
    transition(&server, &api.member(), "to=\"up\" reason=HTTP 200 in ");
    let seen = api.seen();
    assert_eq!(seen[0].sni.as_deref(), Some("kubernetes.default.svc"));
    assert!(
        seen[0].head.starts_with("GET /livez?verbose HTTP/1.1\r\n"),
        "{:?}",
        seen[0]
    );
    api.set(Mode::NotReady);
    transition(
        &server,
        &api.member(),
        "reason=HTTP status 500 (expected 200)",
    );
}

#[test]
fn insecure_skip_verify_accepts_any_certificate_and_warns_once() {
    let other_ca = Authority::new("someone else's CA");
    let a = ApiServer::https("127.0.20.31", &other_ca.issue(&["somewhere.else"]));
    let b = ApiServer::https("127.0.20.32", &other_ca.issue(&["somewhere.else"]));
    let server = start(
        &[a.member(), b.member()],
        "kind = \"https\", insecure_skip_verify = true",
        &[],
    );
    assert_eq!(a_sorted(server.addr(), API), sorted(vec![a.ip(), b.ip()]));
    let warnings = server
        .logs()
        .iter()
        .filter(|line| line.contains("insecure_skip_verify is on") && line.contains("WARN"))
        .count();
    assert_eq!(
        warnings,
        1,
        "one warning per pool:\n{}",
        server.logs().join("\n")
    );
}

#[test]
fn plain_http_probe_checks_the_status() {
    let a = ApiServer::http("127.0.20.41");
    let b = ApiServer::http("127.0.20.42");
    let server = start(
        &[a.member(), b.member()],
        "kind = \"http\", path = \"/livez\"",
        &[],
    );
    assert_eq!(a_sorted(server.addr(), API), sorted(vec![a.ip(), b.ip()]));
    let seen = a.seen();
    assert!(
        seen[0].head.starts_with("GET /livez HTTP/1.1\r\n"),
        "{:?}",
        seen[0]
    );
    assert!(
        seen[0]
            .head
            .to_ascii_lowercase()
            .contains(&format!("host: {}\r\n", a.member())),
        "{:?}",
        seen[0]
    );
    b.set(Mode::NotReady);
    assert!(eventually(CHANGE_LIMIT, || a_sorted(server.addr(), API) == [a.ip()]));
    transition(
        &server,
        &b.member(),
        "reason=HTTP status 500 (expected 200)",
    );
}

#[test]
fn client_certificate_is_presented_when_configured() {
    let ca = Authority::new("apidns test CA");
    let client = ca.issue(&["apidns-probe"]);
    let api = ApiServer::start(
        "127.0.20.51",
        Some(server_tls(&ca.issue(&[API_NAME]), Some(&ca))),
    );
    let files = [
        ("ca.crt", ca.pem()),
        ("probe.crt", client.cert),
        ("probe.key", client.key),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();

    let (_dir, config) = config_dir(
        &[api.member()],
        "kind = \"https\", ca_file = \"ca.crt\"",
        "",
        &files,
    );
    let output = run("probe", &config);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("the server requires a client certificate"),
        "{stdout}"
    );

    let (_dir, config) = config_dir(
        &[api.member()],
        "kind = \"https\", ca_file = \"ca.crt\", client_cert = \"probe.crt\", client_key = \"probe.key\"",
        "",
        &files,
    );
    let output = run("probe", &config);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("1 of 1 members up"), "{stdout}");
}

#[test]
fn probe_command_prints_the_reasons() {
    let ca = Authority::new("apidns test CA");
    let other_ca = Authority::new("someone else's CA");
    let ready = ApiServer::https("127.0.20.61", &ca.issue(&[API_NAME]));
    let not_ready = ApiServer::https("127.0.20.62", &ca.issue(&[API_NAME]));
    not_ready.set(Mode::NotReady);
    let hung = ApiServer::https("127.0.20.63", &ca.issue(&[API_NAME]));
    hung.set(Mode::Hang);
    let untrusted = ApiServer::https("127.0.20.64", &other_ca.issue(&[API_NAME]));
    let refused = ApiServer::http("127.0.20.65");
    let refused_member = refused.member();
    drop(refused);

    let (_dir, config) = config_dir(
        &[
            ready.member(),
            not_ready.member(),
            hung.member(),
            untrusted.member(),
            refused_member,
        ],
        // Long enough that the ready member answers in time on a loaded machine (a 300 ms
        // timeout once took it down under CI's load); only the hung member waits it out.
        "kind = \"https\", ca_file = \"ca.crt\", interval = \"3s\", timeout = \"2s\"",
        "",
        &[("ca.crt", &ca.pem())],
    );
    let output = run("probe", &config);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    for reason in [
        "HTTP status 500 (expected 200)",
        "timeout after 2000ms waiting for the HTTP response",
        "certificate not trusted: it is not signed by the CA in ",
        "connection refused",
        "1 of 5 members up",
    ] {
        assert!(stdout.contains(reason), "{reason:?} missing:\n{stdout}");
    }
}

#[test]
fn bad_tls_settings_are_configuration_errors() {
    let members = ["192.0.2.10".to_string()];
    let probe = "kind = \"https\", ca_file = \"missing.crt\"";
    let line = zone(&members, probe)
        .lines()
        .position(|line| line.starts_with("probe = "))
        .unwrap()
        + 1;
    let (_dir, config) = config_dir(&members, probe, "", &[]);
    let output = run("check", &config);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    // file:line:column: field: message, the column pointing at the value.
    let column = "probe = { kind = \"https\", ca_file = ".len() + 1;
    assert!(
        stderr.contains(&format!(
            "k8s.example.com.toml:{line}:{column}: pool.api.probe.ca_file: cannot read "
        )),
        "{stderr}"
    );

    let (_dir, config) = config_dir(
        &["192.0.2.10".to_string()],
        "kind = \"tcp\", server_name = \"kubernetes\"",
        "",
        &[],
    );
    let output = run("check", &config);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("pool.api.probe.server_name: server_name applies only to kind = \"https\""),
        "{stderr}"
    );

    let ca = Authority::new("apidns test CA");
    let (_dir, config) = config_dir(
        &["192.0.2.10".to_string()],
        "kind = \"https\", ca_file = \"ca.crt\"",
        "",
        &[("ca.crt", &ca.pem())],
    );
    let output = run("check", &config);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains(
            "probe https GET /readyz expecting 200, server name api.k8s.example.com, CA file "
        ),
        "{stdout}"
    );
}
