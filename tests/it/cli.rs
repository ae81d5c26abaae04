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
