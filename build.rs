//! Tells the integration tests which real tools this machine has, so that a test that needs
//! a missing one is reported by `cargo test` as ignored, with the reason and the command that
//! installs it, rather than failing for a reason unrelated to apidns or passing without running.
//! CI (`.ci/run`, as root) installs every tool first, so there nothing is ignored.
//!
//! Each finding becomes a `cfg` that the tests read in `#[cfg_attr(not(...), ignore = "...")]`.
//! The script runs again when PATH changes or a package adds programs to the usual directories.

use std::path::Path;

/// Directories searched besides PATH: Debian puts daemons (haproxy, knotd, ip) in sbin, which
/// an ordinary user's PATH often lacks.
const SYSTEM_DIRS: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// (cfg name, programs that must all be present, needs root)
const FINDINGS: &[(&str, &[&str], bool)] = &[
    ("apidns_has_haproxy", &["haproxy", "curl"], false),
    ("apidns_has_nsupdate", &["nsupdate"], false),
    ("apidns_has_dig", &["dig", "kdig"], false),
    ("apidns_has_named_checkzone", &["named-checkzone"], false),
    ("apidns_has_knotd", &["knotd"], false),
    ("apidns_has_named", &["named"], false),
    ("apidns_has_kubectl", &["kubectl"], false),
    ("apidns_is_root", &[], true),
    ("apidns_has_netns", &["ip"], true),
];

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=PATH");
    for dir in SYSTEM_DIRS {
        if Path::new(dir).is_dir() {
            println!("cargo::rerun-if-changed={dir}");
        }
    }
    let root = is_root();
    for &(cfg, programs, needs_root) in FINDINGS {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        if programs.iter().all(|program| found(program)) && (root || !needs_root) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
    println!("cargo::rustc-check-cfg=cfg(apidns_has_ipv6_loopback)");
    if std::net::UdpSocket::bind("[::1]:0").is_ok() {
        println!("cargo::rustc-cfg=apidns_has_ipv6_loopback");
    }
}

fn found(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SYSTEM_DIRS.iter().map(Into::into))
        .any(|dir| dir.join(program).is_file())
}

/// Whether the build (and so, in practice, `cargo test`) runs as root: read from
/// /proc/self/status rather than a libc call, so that the build script needs no dependency.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}
