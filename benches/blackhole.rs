//! Black-hole detection: how long a member whose host vanishes (no FIN, no RST: its link goes
//! down) stays in the answers, per probe mode, with the real binary and a member listening in a
//! network namespace. Needs root.
//!
//!     cargo bench --bench blackhole                                 # tcp-held, tcp-periodic
//!     MODES=tcp-held,https-held,https-periodic TRIALS=5 cargo bench --bench blackhole
//!     LOGS=1 MODES=https-held cargo bench --bench blackhole       # and print apidns's log
//!
//! Modes: tcp-held (the default probe), tcp-periodic (hold = false), https-held, https-periodic
//! (`/readyz` over TLS; a mode whose configuration apidns rejects is skipped with a note).
//! Default probe timings throughout: interval 1 s, timeout 500 ms, fast 200 ms, rise 2, fall 2.
//! Prints, per mode, median and max of the time from link down to gone from the answers (polled
//! every 5 ms) and of apidns's own `detection_ms` (first failure signal to down transition).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use testkit::backend::Backend;
use testkit::https::{ApiServer, Authority};
use testkit::netns::Namespace;
use testkit::timings::summary;
use testkit::*;

struct Mode {
    name: &'static str,
    /// The pool's `probe = { ... }` table.
    probe: &'static str,
    https: bool,
    /// Pause after the member returns: held probes hold down a member that goes down again
    /// within 5 × interval of returning, which would measure the hold-down instead.
    settle: Duration,
}

const MODES: [Mode; 4] = [
    Mode {
        name: "tcp-held",
        probe: "{ kind = \"tcp\" }",
        https: false,
        settle: Duration::from_millis(5100),
    },
    Mode {
        name: "tcp-periodic",
        probe: "{ kind = \"tcp\", hold = false }",
        https: false,
        settle: Duration::ZERO,
    },
    Mode {
        name: "https-held",
        probe: "{ kind = \"https\", insecure_skip_verify = true, hold = true }",
        https: true,
        settle: Duration::from_millis(5100),
    },
    Mode {
        name: "https-periodic",
        probe: "{ kind = \"https\", insecure_skip_verify = true, hold = false }",
        https: true,
        settle: Duration::ZERO,
    },
];

/// A member in the namespace, kept alive for the whole run.
enum Member {
    Tcp(Backend),
    Https(ApiServer),
}

impl Member {
    fn address(&self) -> SocketAddr {
        match self {
            Member::Tcp(backend) => backend.address,
            Member::Https(server) => server.address,
        }
    }
}

fn main() {
    let trials: usize = std::env::var("TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(10);
    let wanted = std::env::var("MODES").unwrap_or_else(|_| "tcp-held,tcp-periodic".to_string());
    println!("black-hole detection over {trials} trials per mode");
    for name in wanted.split(',').map(str::trim) {
        let Some(mode) = MODES.iter().find(|mode| mode.name == name) else {
            println!(
                "{name}: unknown mode (known: tcp-held, tcp-periodic, https-held, https-periodic)"
            );
            continue;
        };
        match std::panic::catch_unwind(|| run(mode, trials)) {
            Ok((gone, detection)) => {
                println!("{}  probe = {}", mode.name, mode.probe);
                println!("  link down -> gone from answers: {}", summary(&gone));
                println!("  apidns detection_ms:            {}", summary(&detection));
            }
            Err(_) => println!(
                "{}: skipped (see the panic above: apidns rejected the configuration, or the run failed)",
                mode.name
            ),
        }
    }
}

fn run(mode: &Mode, trials: usize) -> (Vec<Duration>, Vec<Duration>) {
    let namespace = Namespace::create();
    let inner = namespace.inner_address().to_string();
    // HTTPS members offer HTTP/2, as kube-apiserver does: PINGs between requests need it.
    let member = if mode.https {
        let identity = Authority::new("bench CA").issue(&[&inner]);
        Member::Https(namespace.inside(move || ApiServer::https_h2(&inner, &identity)))
    } else {
        Member::Tcp(namespace.inside(move || Backend::start(&inner)))
    };
    // A member that stays up, so that the black-holed one is not kept by the all-down policy.
    let near = if mode.https {
        let identity = Authority::new("bench CA").issue(&["127.0.71.1"]);
        Member::Https(ApiServer::https_h2("127.0.71.1", &identity))
    } else {
        Member::Tcp(Backend::start("127.0.71.1"))
    };
    let zone = format!(
        "{ZONE_HEAD}\n[pool.api]\nttl = 5\nmembers = [\"{}\", \"{}\"]\nprobe = {}\n",
        near.address(),
        member.address(),
        mode.probe
    );
    let mut spec = ServerSpec::zone(&zone);
    spec.server_extra = "http = \"127.0.0.1:0\"".to_string();
    if std::env::var_os("LOGS").is_some() {
        spec.args = vec!["--log-level".to_string(), "debug".to_string()];
    }
    let server = TestServer::start(spec);
    let far_ip = member.address().ip().to_string();
    wait(&server, Instant::now(), |found| found.contains(&far_ip));
    let mut gone = Vec::new();
    let mut detection = Vec::new();
    for _ in 0..trials {
        // Fail at a random point of the keepalive and probe schedules, as real failures do.
        std::thread::sleep(Duration::from_millis(1000).mul_f64(rand::random_range(0.0..1.0)));
        let started = Instant::now();
        namespace.black_hole();
        gone.push(wait(&server, started, |found| !found.contains(&far_ip)));
        detection.push(detection_ms(&server, member.address()));
        namespace.restore();
        wait(&server, Instant::now(), |found| found.contains(&far_ip));
        std::thread::sleep(mode.settle);
    }
    if std::env::var_os("LOGS").is_some() {
        println!("apidns's log:\n{}", server.logs().join("\n"));
    }
    (gone, detection)
}

fn detection_ms(server: &TestServer, member: SocketAddr) -> Duration {
    let (_, body) = http_get(server.http.expect("http endpoint"), "/status");
    let json: serde_json::Value = serde_json::from_str(&body).expect("status is JSON");
    let milliseconds = json["zones"][0]["pools"][0]["members"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["port"] == member.port() && m["address"] == member.ip().to_string())
        .and_then(|m| m["detection_ms"].as_f64())
        .unwrap_or(f64::NAN);
    Duration::from_secs_f64(milliseconds.max(0.0) / 1000.0)
}

fn wait(server: &TestServer, since: Instant, done: impl Fn(&[String]) -> bool) -> Duration {
    loop {
        let found = addresses(&udp(
            server.addr(),
            &query(API, hickory_proto::rr::RecordType::A, None),
        ));
        if done(&found) {
            return since.elapsed();
        }
        if since.elapsed() > Duration::from_secs(60) {
            panic!(
                "no change within 60 s; apidns's log:\n{}",
                server.logs().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
