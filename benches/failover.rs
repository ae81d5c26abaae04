//! Failover timing: how long a killed API server stays in the answers, and how long a restarted
//! one takes to return, with the real binary and real listeners on loopback.
//!
//!     cargo bench --bench failover            # 20 trials per setting
//!     TRIALS=5 cargo bench --bench failover   # quicker
//!
//! Prints median and max per setting. These are figures, not pass/fail checks.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::backend::Backend;
use common::*;

const API: &str = "api.k8s.example.com.";

struct Setting {
    label: &'static str,
    probe: &'static str,
    interval: Duration,
    /// Pause after the member returns before the next kill. Held probes hold down a member that
    /// goes down again within 5 × interval of returning (a flap); waiting that long measures
    /// failover, not the hold-down.
    settle: Duration,
}

fn main() {
    let trials: usize = std::env::var("TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(20);
    let settings = [
        Setting {
            label: "defaults: hold = true (held connection + interval 1s, timeout 500ms, fast 200ms, rise 2, fall 2)",
            probe: "",
            interval: Duration::from_secs(1),
            settle: Duration::from_millis(5100),
        },
        Setting {
            label: "hold = false (periodic only: interval 1s, timeout 500ms, fast 200ms, rise 2, fall 2)",
            probe: "hold = false\n",
            interval: Duration::from_secs(1),
            settle: Duration::ZERO,
        },
        Setting {
            label: "hold = false, interval 250ms, timeout 200ms (fast 200ms, rise 2, fall 2)",
            probe: "hold = false\ninterval = \"250ms\"\ntimeout = \"200ms\"\n",
            interval: Duration::from_millis(250),
            settle: Duration::ZERO,
        },
    ];
    println!("failover over {trials} trials per setting (poll every 5ms)");
    for (index, setting) in settings.iter().enumerate() {
        let (down, up) = run(setting, index, trials);
        println!("{}", setting.label);
        println!("  killed  -> gone from answers: {}", summary(&down));
        println!("  restart -> back in answers:   {}", summary(&up));
    }
}

fn run(setting: &Setting, index: usize, trials: usize) -> (Vec<Duration>, Vec<Duration>) {
    let backends: Vec<Backend> = (1..=3)
        .map(|i| Backend::start(&format!("127.0.{}.{i}", 200 + index)))
        .collect();
    let members: Vec<String> = backends
        .iter()
        .map(|b| format!("\"{}\"", b.member()))
        .collect();
    let zone = format!(
        "{ZONE_HEAD}\n[pool.api]\nttl = 5\nmembers = [{}]\n",
        members.join(", ")
    );
    let mut spec = ServerSpec::zone(&zone);
    spec.probe = setting.probe.to_string();
    let server = TestServer::start(spec);
    let mut backends = backends;
    let victim_ip = backends[1].ip();
    let mut down = Vec::new();
    let mut up = Vec::new();
    for _ in 0..trials {
        // Fail at a random point of the probe schedule, as real failures do.
        std::thread::sleep(setting.interval.mul_f64(rand_unit()) + Duration::from_millis(50));
        let victim = backends.remove(1);
        let killed = Instant::now();
        let address = victim.kill();
        down.push(wait(&server, killed, |found| !found.contains(&victim_ip)));
        std::thread::sleep(setting.interval.mul_f64(rand_unit()));
        let restarted = Instant::now();
        backends.insert(1, Backend::start_at(address));
        up.push(wait(&server, restarted, |found| found.contains(&victim_ip)));
        std::thread::sleep(setting.settle);
    }
    (down, up)
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
        if since.elapsed() > Duration::from_secs(30) {
            panic!("no change within 30s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn summary(samples: &[Duration]) -> String {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = sorted[sorted.len() / 2];
    let max = sorted[sorted.len() - 1];
    let min = sorted[0];
    format!(
        "median {:.0}ms, max {:.0}ms, min {:.0}ms (n={})",
        ms(median),
        ms(max),
        ms(min),
        sorted.len()
    )
}

fn rand_unit() -> f64 {
    rand::random_range(0.0..1.0)
}
