//! Secondary timing (issue #21): from an apidns primary's acknowledgement of an `nsupdate` to an
//! apidns secondary's answer that includes the new member, with the real binaries on loopback.
//!
//!     cargo bench --bench transfer        # 20 trials
//!     TRIALS=5 cargo bench --bench transfer
//!
//! Each trial adds a member (its backend already listening) at the primary with `nsupdate` and
//! times, from `nsupdate`'s exit (the primary's NOERROR), the first answer of the secondary
//! that carries the new address: the primary's NOTIFY, the secondary's SOA query and IXFR, the
//! writer putting the copy in force, and the new member's first probe (default probe settings:
//! TCP, interval 1s, timeout 500ms, rise 2, fall 2; a new member's first probe runs at once).
//! The primary probes a new member before it acknowledges the update and sends NOTIFY at once,
//! so the secondary often has the copy by the time `nsupdate` has exited; the run also gives the
//! time from `nsupdate`'s start. The secondary is polled every 5ms, so a figure is an upper
//! bound by one poll. Figures, not pass/fail checks.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use testkit::backend::Backend;
use testkit::peers::{PeerKey, nsupdate};
use testkit::timings::summary;
use testkit::*;

const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0MTIzNDU=";
/// Beyond this a trial counts as lost: the bench stops with a message, not a figure.
const STEP_LIMIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(5);

fn ip(last: u8) -> [u8; 4] {
    // Apart from the integration tests (127.0.0.x) and the other benches.
    [127, 0, 4, last]
}

fn key(name: &str) -> PeerKey {
    PeerKey {
        name: name.to_string(),
        algorithm: "hmac-sha256".to_string(),
        secret: SECRET.to_string(),
    }
}

fn start(listen: SocketAddr, state: &TempDir, zone: &str) -> TestServer {
    let dir = TempDir::new("bench-transfer");
    let mut tsig = String::new();
    for name in ["xfr-key", "ops-key"] {
        tsig.push_str(&format!(
            "\n[[tsig]]\nname = \"{name}\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{SECRET}\"\n"
        ));
    }
    let main = format!(
        "[server]\nlisten = [\"{listen}\"]\nzones = \"zones\"\nstate_dir = \"{}\"\n{tsig}",
        state.path().display()
    );
    let config = dir.write("apidns.toml", &main);
    dir.write("zones/k8s.example.com.toml", zone);
    TestServer::start_with(dir, config, &[])
}

fn main() {
    let trials: usize = std::env::var("TRIALS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(20);
    let port = free_port();
    let first = SocketAddr::from((ip(10), port));
    let mut backends = vec![Backend::start_at(first)];
    for trial in 0..trials {
        backends.push(Backend::start_at(SocketAddr::from((
            ip(11 + trial as u8),
            port,
        ))));
    }
    let secondary_address = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let (primary_state, secondary_state) = (TempDir::new("primary"), TempDir::new("secondary"));
    let primary_zone = format!(
        "transfer = {{ keys = [\"xfr-key\"], notify = [\"{secondary_address}\"] }}\nupdate = {{ keys = [\"ops-key\"], allow = \"pool-members\" }}\n{ZONE_HEAD}refresh = 3600\n\n[pool.api]\nport = {port}\nmembers = [\"{}\"]\n",
        first.ip()
    );
    let primary = start(
        SocketAddr::from(([127, 0, 0, 1], free_port())),
        &primary_state,
        &primary_zone,
    );
    let secondary_zone = format!(
        "origin = \"k8s.example.com.\"\nprimary = {{ address = \"{}\", key = \"xfr-key\" }}\n\n[pool.api]\nport = {port}\n",
        primary.addr()
    );
    let secondary = start(secondary_address, &secondary_state, &secondary_zone);
    let wait_for = |address: String| -> Option<Duration> {
        let started = Instant::now();
        while started.elapsed() < STEP_LIMIT {
            if a_sorted(secondary.addr(), API).contains(&address) {
                return Some(started.elapsed());
            }
            std::thread::sleep(POLL);
        }
        None
    };
    if wait_for(first.ip().to_string()).is_none() {
        println!("the secondary never answered the first member");
        return;
    }
    let mut samples = Vec::new();
    let mut whole = Vec::new();
    for trial in 0..trials {
        let address = std::net::IpAddr::from(ip(11 + trial as u8)).to_string();
        let sent = Instant::now();
        if let Err(error) = nsupdate(
            primary.addr(),
            &key("ops-key"),
            &format!("update add api.k8s.example.com. 5 A {address}"),
        ) {
            println!("nsupdate failed: {error}");
            return;
        }
        match wait_for(address.clone()) {
            Some(elapsed) => {
                samples.push(elapsed);
                whole.push(sent.elapsed());
            }
            None => {
                println!("trial {trial}: {address} not answered within {STEP_LIMIT:?}");
                return;
            }
        }
    }
    println!(
        "primary acknowledges an nsupdate -> secondary answers the new member (probe included)"
    );
    println!("  {}", summary(&samples));
    println!(
        "nsupdate started -> secondary answers the new member (the primary's own probe of it included)"
    );
    println!("  {}", summary(&whole));
}
