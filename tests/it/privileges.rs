//! `[server] user`: started as root, apidns binds its sockets and then runs as that user (every
//! thread); started as anyone else, it refuses to run rather than run as the wrong user.

use std::process::{Command, Stdio};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use testkit::*;

const POOL: &str = r#"
[pool.api]
members = ["127.0.10.10"]
"#;

/// The uid of `name` from /etc/passwd.
fn uid_of(name: &str) -> Option<u32> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&name))
            .then(|| fields.get(2)?.parse().ok())
            .flatten()
    })
}

/// The "Uid:" and "Gid:" lines of a /proc status file: real, effective, saved, filesystem.
fn ids(status: &str, key: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|id| id.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn is_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
#[cfg_attr(
    not(apidns_is_root),
    ignore = "needs root (dropping privileges): as root, cargo test --test it privileges::"
)]
fn root_drops_to_the_configured_user_on_every_thread() {
    assert!(is_root(), "built as root but run as another user");
    let nobody = uid_of("nobody").expect("a user named nobody (every Debian system has one)");
    let mut spec = ServerSpec::zone(&format!("{ZONE_HEAD}{POOL}"));
    spec.server_extra = "user = \"nobody\"".to_string();
    let server = TestServer::start(spec);
    assert!(
        server
            .logs()
            .iter()
            .any(|line| line.contains("dropped root privileges")),
        "{:#?}",
        server.logs()
    );
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    assert_eq!(ids(&status, "Uid:"), [nobody; 4], "{status}");
    let groups = ids(&status, "Groups:");
    assert!(!groups.contains(&0), "no root group left: {groups:?}");
    assert!(ids(&status, "Gid:").iter().all(|gid| *gid != 0), "{status}");
    // Every thread, not only the main one.
    let tasks = std::fs::read_dir(format!("/proc/{}/task", server.pid())).unwrap();
    let mut threads = 0;
    for task in tasks {
        let path = task.unwrap().path().join("status");
        let status = std::fs::read_to_string(&path).unwrap();
        assert_eq!(ids(&status, "Uid:"), [nobody; 4], "{}", path.display());
        threads += 1;
    }
    assert!(threads > 1, "the runtime has worker threads");
    // And it still serves, on the sockets it bound as root.
    let reply = udp(
        server.addr(),
        &query("api.k8s.example.com.", RecordType::A, None),
    );
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    let reply = tcp(
        server.addr(),
        &query("api.k8s.example.com.", RecordType::A, None),
    );
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
}

#[test]
fn an_unknown_user_stops_the_server_with_a_clear_error() {
    let dir = TempDir::new("privileges");
    dir.write("zones/k8s.example.com.toml", &format!("{ZONE_HEAD}{POOL}"));
    let config = dir.write(
        "apidns.toml",
        "[server]\nlisten = [\"127.0.0.1:0\"]\nuser = \"apidns-no-such-user\"\n",
    );
    let output = Command::new(binary())
        .args(["serve", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .output()
        .expect("run apidns");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no user \"apidns-no-such-user\""),
        "{stderr}"
    );
}
