//! Failover timing: how long a failed API server stays in the answers, and how long a restarted
//! one takes to return, with the real binary and real servers on loopback; and how many
//! connections and requests per second each API server receives from one apidns.
//!
//!     cargo bench --bench failover                 # every setting, 20 trials each
//!     cargo bench --bench failover -- https kill   # settings whose label has every word
//!     TRIALS=5 cargo bench --bench failover        # quicker
//!     SEQUENTIAL=1 cargo bench --bench failover    # one setting at a time (quieter machine)
//!
//! Settings run side by side by default (each its own apidns and servers on its own loopback
//! addresses), so that the whole run stays within a few minutes on two cores. Prints median and
//! max per setting. These are figures, not pass/fail checks.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use testkit::backend::Backend;
use testkit::https::{ApiServer, Authority, Identity, server_tls_h2};
use testkit::*;

/// Members that take turns failing; one more member never fails and counts what it receives.
const VICTIMS: usize = 3;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Tcp,
    /// A TCP stand-in that closes every connection as soon as it accepts it (a load
    /// balancer's health port): nothing can be held.
    TcpAcceptAndClose,
    Https,
}

#[derive(Clone, Copy)]
enum Failure {
    /// The process dies: listener and connections closed (FIN).
    Kill,
    /// kube-apiserver's graceful shutdown: `/readyz` 500 at once, GOAWAY and close after the
    /// delay (`--shutdown-delay-duration`).
    Graceful(Duration),
    /// The process stops answering anything, connections stay open.
    Freeze,
}

struct Setting {
    label: &'static str,
    kind: Kind,
    failure: Failure,
    probe: &'static str,
    interval: Duration,
    /// Held probes hold down a member that goes down again within 5 × interval of returning (a
    /// flap): a victim fails again only after this long back, to measure failover, not that.
    rest: Duration,
}

struct Figures {
    down: Vec<Duration>,
    up: Vec<Duration>,
    connections_per_second: f64,
    requests_per_second: Option<f64>,
}

fn settings() -> Vec<Setting> {
    let held_rest = Duration::from_millis(5100);
    let second = Duration::from_secs(1);
    let https = |label, failure, probe, rest| Setting {
        label,
        kind: Kind::Https,
        failure,
        probe,
        interval: second,
        rest,
    };
    vec![
        Setting {
            label: "kill, tcp held (defaults: interval 1s, timeout 500ms, fast 200ms, rise 2, fall 2)",
            kind: Kind::Tcp,
            failure: Failure::Kill,
            probe: "",
            interval: second,
            rest: held_rest,
        },
        Setting {
            label: "kill, tcp periodic (hold = false)",
            kind: Kind::Tcp,
            failure: Failure::Kill,
            probe: "hold = false\n",
            interval: second,
            rest: Duration::ZERO,
        },
        Setting {
            label: "kill, tcp accept-and-close peer, held (defaults)",
            kind: Kind::TcpAcceptAndClose,
            failure: Failure::Kill,
            probe: "",
            interval: second,
            rest: held_rest,
        },
        Setting {
            label: "kill, tcp accept-and-close peer, periodic (hold = false)",
            kind: Kind::TcpAcceptAndClose,
            failure: Failure::Kill,
            probe: "hold = false\n",
            interval: second,
            rest: Duration::ZERO,
        },
        https(
            "kill, https held (defaults, HTTP/2)",
            Failure::Kill,
            "",
            held_rest,
        ),
        https(
            "kill, https periodic (hold = false)",
            Failure::Kill,
            "hold = false\n",
            Duration::ZERO,
        ),
        https(
            "graceful shutdown without delay, https held",
            Failure::Graceful(Duration::ZERO),
            "",
            held_rest,
        ),
        https(
            "graceful shutdown without delay, https periodic (hold = false)",
            Failure::Graceful(Duration::ZERO),
            "hold = false\n",
            Duration::ZERO,
        ),
        https(
            "graceful shutdown with a 2s delay (/readyz 500 first), https held",
            Failure::Graceful(Duration::from_secs(2)),
            "",
            held_rest,
        ),
        https("freeze, https held", Failure::Freeze, "", held_rest),
    ]
}

fn main() {
    let trials: usize = std::env::var("TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(20);
    let sequential = std::env::var_os("SEQUENTIAL").is_some();
    // `cargo bench` passes `--bench`; other words select settings.
    let words: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    let selected: Vec<(usize, Setting)> = settings()
        .into_iter()
        .enumerate()
        .filter(|(_, setting)| {
            words
                .iter()
                .all(|word| setting.label.contains(word.as_str()))
        })
        .collect();
    println!(
        "failover over {trials} trials per setting (poll every 5ms), {}",
        if sequential {
            "one setting at a time"
        } else {
            "settings side by side"
        }
    );
    let results: Vec<(&Setting, Figures)> = if sequential {
        selected
            .iter()
            .map(|(index, setting)| (setting, run(setting, *index, trials)))
            .collect()
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = selected
                .iter()
                .map(|(index, setting)| {
                    scope.spawn(move || (setting, run(setting, *index, trials)))
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().expect("a setting panicked"))
                .collect()
        })
    };
    for (setting, figures) in results {
        println!("{}", setting.label);
        println!("  failed  -> gone from answers: {}", summary(&figures.down));
        println!("  restart -> back in answers:   {}", summary(&figures.up));
        let requests = figures
            .requests_per_second
            .map_or(String::new(), |rate| format!(", {rate:.2} requests/s"));
        println!(
            "  one API server received {:.2} connections/s{requests}",
            figures.connections_per_second
        );
    }
}

/// A member of either kind.
enum Member {
    Tcp(Backend),
    Https(ApiServer),
}

impl Member {
    fn start(kind: Kind, address: SocketAddr, identity: &Identity) -> Self {
        match kind {
            Kind::Tcp => Member::Tcp(Backend::start_at(address)),
            Kind::TcpAcceptAndClose => Member::Tcp(Backend::start_accept_and_close_at(address)),
            Kind::Https => {
                Member::Https(ApiServer::start_at(address, Some(server_tls_h2(identity))))
            }
        }
    }

    fn ip(&self) -> String {
        match self {
            Member::Tcp(backend) => backend.ip(),
            Member::Https(server) => server.ip(),
        }
    }

    fn member(&self) -> String {
        match self {
            Member::Tcp(backend) => backend.member(),
            Member::Https(server) => server.member(),
        }
    }

    /// Makes it fail; what is left of it, if anything, is stopped for good by `kill`.
    fn fail(self, failure: Failure) -> Option<Self> {
        match (failure, self) {
            (Failure::Kill, member) => {
                member.kill();
                None
            }
            (Failure::Graceful(delay), Member::Https(server)) => {
                server.shut_down_gracefully(delay);
                Some(Member::Https(server))
            }
            (Failure::Freeze, Member::Https(server)) => {
                server.freeze(true);
                Some(Member::Https(server))
            }
            (_, Member::Tcp(_)) => panic!("TCP members can only be killed"),
        }
    }

    fn kill(self) {
        match self {
            Member::Tcp(backend) => {
                backend.kill();
            }
            Member::Https(server) => {
                server.kill();
            }
        }
    }

    /// (connections accepted, `/readyz` requests) so far.
    fn counts(&self) -> (usize, Option<usize>) {
        match self {
            Member::Tcp(backend) => (backend.accepted(), None),
            Member::Https(server) => (server.accepted(), Some(server.requests("/readyz"))),
        }
    }
}

fn run(setting: &Setting, index: usize, trials: usize) -> Figures {
    let ca = Authority::new("apidns bench CA");
    let identity = ca.issue(&[API_NAME]);
    let ip = |i: usize| format!("127.0.{}.{i}", 200 + index);
    let mut members: Vec<Member> = (1..=VICTIMS + 1)
        .map(|i| {
            let address = SocketAddr::new(ip(i).parse().expect("an IP"), 0);
            Member::start(setting.kind, address, &identity)
        })
        .collect();
    let addresses: Vec<SocketAddr> = members
        .iter()
        .map(|member| member.member().parse().expect("an address"))
        .collect();
    let dir = TempDir::new("failover");
    dir.write("ca.crt", &ca.pem());
    let kind = match setting.kind {
        Kind::Tcp | Kind::TcpAcceptAndClose => "",
        Kind::Https => "kind = \"https\"\nca_file = \"ca.crt\"\n",
    };
    let config = dir.write(
        "apidns.toml",
        &format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\n[probe]\n{kind}{}\n",
            setting.probe
        ),
    );
    let quoted: Vec<String> = addresses.iter().map(|a| format!("\"{a}\"")).collect();
    dir.write(
        "zones/k8s.example.com.toml",
        &format!(
            "{ZONE_HEAD}\n[pool.api]\nttl = 5\nmembers = [{}]\n",
            quoted.join(", ")
        ),
    );
    let server = TestServer::start_with(dir, config, &[]);
    std::thread::sleep(Duration::from_secs(1));
    let counted_from = Instant::now();
    let counts_before = members[0].counts();

    let mut back_since = [Instant::now(); VICTIMS + 1];
    let mut down = Vec::new();
    let mut up = Vec::new();
    for trial in 0..trials {
        let victim = 1 + trial % VICTIMS;
        let rested = back_since[victim] + setting.rest;
        std::thread::sleep(rested.saturating_duration_since(Instant::now()));
        // Fail at a random point of the probe schedule, as real failures do.
        std::thread::sleep(setting.interval.mul_f64(rand_unit()) + Duration::from_millis(50));
        let victim_ip = members[victim].ip();
        let failing = members.remove(victim);
        let failed = Instant::now();
        let failing = failing.fail(setting.failure);
        down.push(wait(&server, failed, |found| !found.contains(&victim_ip)));
        if let Some(left) = failing {
            left.kill();
        }
        std::thread::sleep(setting.interval.mul_f64(rand_unit()));
        let restarted = Instant::now();
        members.insert(
            victim,
            Member::start(setting.kind, addresses[victim], &identity),
        );
        up.push(wait(&server, restarted, |found| found.contains(&victim_ip)));
        back_since[victim] = Instant::now();
    }

    let elapsed = counted_from.elapsed().as_secs_f64();
    let (connections, requests) = members[0].counts();
    Figures {
        down,
        up,
        connections_per_second: (connections - counts_before.0) as f64 / elapsed,
        requests_per_second: requests
            .zip(counts_before.1)
            .map(|(after, before)| (after - before) as f64 / elapsed),
    }
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
