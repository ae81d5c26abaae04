//! Failover timing: how long a failed API server stays in the answers, and how long a restarted
//! one takes to return, with the real binary and real servers on loopback; and how many
//! connections and requests per second each API server receives from one apidns.
//!
//!     cargo bench --bench failover                 # every setting, 20 trials each
//!     cargo bench --bench failover -- https kill   # settings whose label has every word
//!     TRIALS=5 cargo bench --bench failover        # quicker
//!     SEQUENTIAL=1 cargo bench --bench failover    # one setting at a time (quieter machine)
//!     cargo bench --bench failover -- phase        # held against periodic, killed at a fixed phase
//!
//! Settings run side by side by default (each its own apidns and servers on its own loopback
//! addresses), so that the whole run stays within a few minutes on two cores. Prints median and
//! max per setting. These are figures, not pass/fail checks.
//!
//! The settings above fail a member at a random point of the probe schedule, as real failures
//! come, so a median moves by the luck of that draw (up to one interval). `phase` takes the draw
//! out: an accept-and-close member (nothing can be held) is killed at a fixed point of the
//! prober's schedule, told by the member's accepts, under default settings and with
//! `hold = false`, trials interleaved so that the machine's load falls on both alike.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use testkit::backend::Backend;
use testkit::https::{ApiServer, Authority, Identity, server_tls_h2};
use testkit::timings::{median, summary};
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
    if words.iter().any(|word| word == "phase") {
        return phased(trials);
    }
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
    let server = serve(setting.kind, setting.probe, &addresses, &ca);
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

/// Starts apidns with one pool of `addresses`, probed as `kind` and `probe` say.
fn serve(kind: Kind, probe: &str, addresses: &[SocketAddr], ca: &Authority) -> TestServer {
    let dir = TempDir::new("failover");
    dir.write("ca.crt", &ca.pem());
    let kind = match kind {
        Kind::Tcp | Kind::TcpAcceptAndClose => "",
        Kind::Https => "kind = \"https\"\nca_file = \"ca.crt\"\n",
    };
    let config = dir.write(
        "apidns.toml",
        &format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\n[probe]\n{kind}{probe}\n"
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
    TestServer::start_with(dir, config, &[])
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

fn rand_unit() -> f64 {
    rand::random_range(0.0..1.0)
}

/// Where in the prober's schedule a phased trial kills the member.
#[derive(Clone, Copy)]
enum Phase {
    /// Right after the member accepted a probe connection: the next probe is a whole interval
    /// away, the longest wait there is.
    AfterProbe,
    /// [`BEFORE_PROBE`] intervals after an accepted probe with no other since: just before the
    /// next probe, due 0.9 to 1.1 intervals after the last (±10% jitter).
    BeforeProbe,
}

/// How far into the interval a [`Phase::BeforeProbe`] kill comes, just short of the earliest
/// jittered probe (0.9).
const BEFORE_PROBE: f64 = 0.85;

/// A killed member may fail again only this long after it came back: held probes hold down a
/// member that goes down again within 5 × interval of returning (a flap). Both modes rest alike.
const PHASED_REST: Duration = Duration::from_millis(5100);

/// Held probing of an accept-and-close member re-holds after a backoff that doubles from one
/// interval to 30 s (1 + 2 + 4 + 8 + 16 s): the phased trials start once it has reached its
/// steady state, where the accepts a trial waits for are fresh probes.
const REHOLD_SETTLED: Duration = Duration::from_secs(32);

/// One apidns with accept-and-close members, for phased trials.
struct PhasedRun {
    label: &'static str,
    server: TestServer,
    /// Index 0 never fails; the others take turns. `None` only within a trial.
    members: Vec<Option<Backend>>,
    addresses: Vec<SocketAddr>,
    back_since: Vec<Instant>,
}

impl PhasedRun {
    fn start(label: &'static str, index: usize, probe: &str) -> Self {
        let ca = Authority::new("apidns bench CA");
        let members: Vec<Option<Backend>> = (1..=VICTIMS + 1)
            .map(|i| {
                let address = SocketAddr::new(
                    format!("127.0.{}.{i}", 220 + index).parse().expect("an IP"),
                    0,
                );
                Some(Backend::start_accept_and_close_at(address))
            })
            .collect();
        let addresses: Vec<SocketAddr> = members
            .iter()
            .flatten()
            .map(|member| member.address)
            .collect();
        let server = serve(Kind::TcpAcceptAndClose, probe, &addresses, &ca);
        let all: Vec<String> = addresses.iter().map(|a| a.ip().to_string()).collect();
        wait(&server, Instant::now(), |found| {
            all.iter().all(|ip| found.contains(ip))
        });
        Self {
            label,
            server,
            members,
            addresses,
            back_since: vec![Instant::now(); VICTIMS + 1],
        }
    }

    /// Kills `victim` at `phase` of its probe schedule; returns how long it stayed in the
    /// answers. Restarts it and waits until it is back before returning.
    fn trial(&mut self, victim: usize, phase: Phase, interval: Duration) -> Duration {
        let ip = self.addresses[victim].ip().to_string();
        let rested = self.back_since[victim] + PHASED_REST;
        std::thread::sleep(rested.saturating_duration_since(Instant::now()));
        let backend = self.members[victim].take().expect("the victim is up");
        // The event: the member accepted a probe. The prober connects at least once an
        // interval, so five intervals without one is a broken run.
        let none = || panic!("{}: no probe connection within 5 intervals", self.label);
        let mut seen = backend
            .wait_for_accept_beyond(backend.accepted(), interval * 5)
            .unwrap_or_else(none);
        if let Phase::BeforeProbe = phase {
            // Kill when BEFORE_PROBE of an interval has passed without another accept.
            let quiet = interval.mul_f64(BEFORE_PROBE);
            while let Some(later) = backend.wait_for_accept_beyond(seen, quiet) {
                seen = later;
            }
        }
        let failed = Instant::now();
        backend.kill();
        let took = wait(&self.server, failed, |found| !found.contains(&ip));
        self.members[victim] = Some(Backend::start_accept_and_close_at(self.addresses[victim]));
        wait(&self.server, Instant::now(), |found| found.contains(&ip));
        self.back_since[victim] = Instant::now();
        took
    }

    /// Prints a trial that took longer than predicted, with apidns's last log lines about the
    /// member (its transitions and their reasons, with their times).
    fn report_outlier(&self, victim: usize, trial: usize, took: Duration) {
        let member = self.addresses[victim].to_string();
        let logs = self.server.logs();
        let lines: Vec<&String> = logs.iter().filter(|line| line.contains(&member)).collect();
        println!(
            "  outlier: {} trial {trial}, member {member}: {:.0}ms; apidns logged:",
            self.label,
            took.as_secs_f64() * 1000.0
        );
        for line in lines.iter().rev().take(6).rev() {
            println!("    {line}");
        }
    }
}

/// `cargo bench --bench failover -- phase`: default (held) and `hold = false` probing of
/// accept-and-close members, each killed at the same fixed phases, trials interleaved.
fn phased(trials: usize) {
    // The default probe settings, which both runs use.
    let interval = Duration::from_secs(1);
    let fast = Duration::from_millis(200);
    let started = Instant::now();
    let mut runs = [
        PhasedRun::start("held (defaults)", 0, ""),
        PhasedRun::start("periodic (hold = false)", 1, "hold = false\n"),
    ];
    println!(
        "failover at a fixed phase: accept-and-close members, defaults (interval 1s, timeout \
         500ms, fast 200ms, rise 2, fall 2), {trials} trials per mode and phase, interleaved"
    );
    std::thread::sleep(REHOLD_SETTLED.saturating_sub(started.elapsed()));
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    // Expected: the kill is seen by the next fresh probe, due 0.9 to 1.1 intervals after the
    // last, and confirmed by one more `fast_interval` (±10%) later (fall = 2).
    let phases = [
        (
            Phase::AfterProbe,
            "killed right after an accepted probe",
            interval.mul_f64(0.9) + fast.mul_f64(0.9),
            interval.mul_f64(1.1) + fast.mul_f64(1.1),
        ),
        (
            Phase::BeforeProbe,
            "killed 0.85 interval after an accepted probe (just before the next)",
            interval.mul_f64(0.9 - BEFORE_PROBE) + fast.mul_f64(0.9),
            interval.mul_f64(1.1 - BEFORE_PROBE) + fast.mul_f64(1.1),
        ),
    ];
    for (phase, label, earliest, latest) in phases {
        let mut down: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
        for trial in 0..trials {
            let victim = 1 + trial % VICTIMS;
            // Alternate which mode goes first, so that neither always follows the other.
            for turn in 0..2 {
                let mode = (trial + turn) % 2;
                let took = runs[mode].trial(victim, phase, interval);
                // Past the prediction by more than a busy machine's scheduling: what apidns
                // logged of the member tells a prober that waited from a machine that stalled.
                if took > latest + Duration::from_millis(100) {
                    runs[mode].report_outlier(victim, trial, took);
                }
                down[mode].push(took);
            }
        }
        println!(
            "{label}: expected {:.0} to {:.0}ms (next probe, then fast_interval)",
            ms(earliest),
            ms(latest)
        );
        for (run, samples) in runs.iter().zip(&down) {
            println!(
                "  {:<24} gone from answers: {}",
                run.label,
                summary(samples)
            );
        }
        println!(
            "  held / periodic: median ×{:.2}, max ×{:.2}",
            ms(median(&down[0]).unwrap_or_default()) / ms(median(&down[1]).unwrap_or_default()),
            ms(maximum(&down[0])) / ms(maximum(&down[1]))
        );
    }
}

fn maximum(samples: &[Duration]) -> Duration {
    samples.iter().copied().max().unwrap_or_default()
}
