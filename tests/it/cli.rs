//! The command line: `check`, `--version`, `--help`, and signals on `serve`.

use std::process::Command;
use std::time::Duration;

use hickory_proto::rr::RecordType;
use testkit::*;

#[test]
fn check_accepts_the_example_and_prints_a_summary() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/apidns.toml");
    let output = Command::new(binary())
        .args(["check", "--config", example])
        .output()
        .expect("run check");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("zone k8s.example.com."), "{stdout}");
    assert!(stdout.contains("pool api.k8s.example.com."), "{stdout}");
    assert!(stdout.contains("member [::1]:6443"), "{stdout}");
}

#[test]
fn check_rejects_a_bad_zone_with_file_line_and_field() {
    let dir = TempDir::new("check");
    let config = dir.write("apidns.toml", "[server]\nlisten = [\"127.0.0.1:0\"]\n");
    dir.write(
        "zones/k8s.toml",
        &format!("{ZONE_HEAD}\n[pool.api]\nmembers = [\"192.0.2.10\", \"192.0.2.300\"]\n"),
    );
    let output = Command::new(binary())
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .expect("run check");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = ZONE_HEAD.matches('\n').count() + 3;
    assert!(
        stderr.contains(&format!("zones/k8s.toml:{line}:")),
        "names file and line: {stderr}"
    );
    assert!(
        stderr.contains("pool.api.members[1]"),
        "names the field: {stderr}"
    );
    assert!(stderr.contains("192.0.2.300"), "quotes the value: {stderr}");
}

#[test]
fn serve_with_a_bad_config_exits_with_the_error() {
    let dir = TempDir::new("serve-bad");
    let config = dir.write(
        "apidns.toml",
        "[server]\nlisten = [\"127.0.0.1:0\"]\nport = 53\n",
    );
    let output = Command::new(binary())
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .expect("run serve");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("apidns.toml:3:1"), "{stderr}");
    assert!(stderr.contains("unknown field `port`"), "{stderr}");
}

#[test]
fn version_and_help() {
    let version = Command::new(binary())
        .arg("--version")
        .output()
        .expect("run");
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("apidns {}", env!("CARGO_PKG_VERSION"))
    );
    let help = Command::new(binary())
        .args(["serve", "--help"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("--config") && text.contains("Example"),
        "{text}"
    );
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let mut server = TestServer::start(ServerSpec::zone(&format!(
        "{ZONE_HEAD}\n[pool.api]\nmembers = [\"127.0.0.1\"]\n"
    )));
    let reply = udp(
        server.addr(),
        &query("ns1.k8s.example.com.", RecordType::A, None),
    );
    assert_eq!(addresses(&reply), ["192.0.2.53"]);
    server.signal("TERM");
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
}

/// `apidns status --config FILE` for a server started by the kit: the kit's file asks for an
/// ephemeral HTTP port, so the command gets a copy that names the port the server took.
fn status_command(server: &TestServer, extra: &[&str]) -> std::process::Output {
    let http = server.http.expect("the server logged its http endpoint");
    let text = std::fs::read_to_string(&server.config).expect("read the server's config");
    let text = text.replace("http = \"127.0.0.1:0\"", &format!("http = \"{http}\""));
    let config = server.dir.write("status.toml", &text);
    Command::new(binary())
        .args(["status", "--config"])
        .arg(&config)
        .args(extra)
        .output()
        .expect("run apidns status")
}

#[test]
fn status_shows_every_member_and_exits_by_the_pools_health() {
    let up = testkit::backend::Backend::start("127.0.3.1");
    let gone = testkit::backend::Backend::start("127.0.3.2");
    let gone_member = gone.member();
    drop(gone);
    let mut spec = ServerSpec::zone(&format!(
        "{ZONE_HEAD}\n[pool.api]\nmembers = [\"{}\", \"{gone_member}\"]\n",
        up.member()
    ));
    spec.server_extra = "http = \"127.0.0.1:0\"".to_string();
    spec.probe = FAST_PROBE.to_string();
    let mut server = TestServer::start(spec);

    let output = status_command(&server, &[]);
    let table = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{table}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with(&format!("{API} (zone k8s.example.com.")),
        "{table}"
    );
    assert!(lines[0].contains("1 of 2 up"), "{table}");
    assert!(
        lines[1].starts_with("MEMBER") && lines[1].contains("SOURCE"),
        "{table}"
    );
    let row = |member: &str| {
        lines
            .iter()
            .find(|line| line.starts_with(member))
            .unwrap_or_else(|| panic!("no row for {member} in\n{table}"))
            .to_string()
    };
    let up_row = row(&up.member());
    assert!(
        up_row.contains("up, answered") && up_row.contains("ok in"),
        "{up_row}"
    );
    assert!(up_row.ends_with("file"), "{up_row}");
    let gone_row = row(&gone_member);
    assert!(
        gone_row.contains("down") && gone_row.contains("connection refused"),
        "{gone_row}"
    );
    assert!(gone_row.contains("refused"), "down signal: {gone_row}");

    let output = status_command(&server, &["--json"]);
    assert_eq!(output.status.code(), Some(0));
    let document: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("--json prints JSON");
    let members = &document["zones"][0]["pools"][0]["members"];
    assert_eq!(members.as_array().map(Vec::len), Some(2), "{document}");
    assert_eq!(members[0]["source"], "file", "{document}");

    // With no member up the pool answers all of them, and status says so with exit status 1.
    drop(up);
    let mut last = String::new();
    let down = eventually(Duration::from_secs(10), || {
        let output = status_command(&server, &[]);
        last = String::from_utf8_lossy(&output.stdout).into_owned();
        output.status.code() == Some(1)
    });
    assert!(
        down,
        "status never exited 1 with every member down:\n{last}"
    );
    assert!(last.contains("0 of 2 up"), "{last}");

    // A daemon that is not running: exit status 2, naming the address tried.
    let http = server.http.expect("http endpoint");
    server.signal("TERM");
    assert!(
        server.wait_exit(Duration::from_secs(10)).is_some(),
        "server did not stop"
    );
    let output = status_command(&server, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("http://{http}")),
        "names the address: {stderr}"
    );
    assert!(stderr.contains("is apidns running?"), "{stderr}");
}

#[test]
fn generate_writes_the_man_page_and_completions() {
    let output = Command::new(binary())
        .args(["generate", "man"])
        .output()
        .expect("run generate man");
    assert!(output.status.success());
    let page = String::from_utf8_lossy(&output.stdout);
    assert!(page.contains(".TH apidns 1"), "{page}");
    for shell in ["bash", "zsh", "fish"] {
        let output = Command::new(binary())
            .args(["generate", "completions", shell])
            .output()
            .expect("run generate completions");
        assert!(output.status.success(), "{shell}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("undrain"),
            "{shell}"
        );
    }
}
