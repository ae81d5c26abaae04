//! Discovery timing (issue #20): how long from a change of the `kubernetes` EndpointSlice to the
//! answers, with the real binary watching the stand-in Kubernetes API (`testkit::kube_api`)
//! through the pool's own members on loopback.
//!
//!     cargo bench --bench discover        # 20 trials
//!     TRIALS=5 cargo bench --bench discover
//!
//! Each trial adds a fourth API server (already listening, as after `kubeadm join`) to the
//! slice, and times: the watch event seen (the address in /status `proposed`), its first
//! passing probe (the member in /status with a passing result), and the name answering it;
//! then removes it and times the event and its leaving the answers. Probes are the defaults
//! (TCP, interval 1s, timeout 500ms, rise 2, fall 2). /status and the DNS name are polled every
//! 5ms from `set_addresses`; the event and the probe are timed by the server's own clock
//! (/status `last_event`, the member's `last_probe`), the answers by the poll that first saw
//! them, an upper bound by the time of one poll. Figures, not pass/fail checks.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use testkit::kube_api::{ApiServer, Auth, KubeCluster};
use testkit::timings::summary;
use testkit::*;

/// The bootstrap members (in the files) and the third, discovered from the start.
const MEMBERS: [u8; 3] = [11, 12, 13];
/// The API server that joins and leaves.
const JOINER: u8 = 14;
/// Beyond this a step counts as lost: the bench stops with a message, not a figure.
const STEP_LIMIT: Duration = Duration::from_secs(30);
/// The whole run stops starting trials after this, and reports the ones it has.
const RUN_LIMIT: Duration = Duration::from_secs(300);
/// The default probe interval: trials start at a random point of it, as real changes do.
const INTERVAL: Duration = Duration::from_secs(1);

fn ip(last: u8) -> IpAddr {
    // Apart from the integration tests (127.0.0.x) and the failover bench (127.0.200+.x).
    IpAddr::from([127, 0, 3, last])
}

#[derive(Default)]
struct Figures {
    joined_event: Vec<Duration>,
    joined_probe: Vec<Duration>,
    joined_answered: Vec<Duration>,
    removed_event: Vec<Duration>,
    removed_gone: Vec<Duration>,
}

/// What one poll saw of the joiner.
struct Seen {
    proposed: bool,
    /// When the watch last had an event (server clock).
    last_event: Option<SystemTime>,
    probed_ok: bool,
    /// When its first passing probe ended (server clock), if the one seen is the first.
    first_probe: Option<SystemTime>,
    answered: bool,
}

/// A step seen in a poll: whether it happened, and when by the server's clock if it says.
type Step = (bool, Option<SystemTime>);

fn main() {
    let trials: usize = std::env::var("TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(20);
    let cluster = KubeCluster::new(API_NAME);
    let port = free_port();
    let _servers: Vec<ApiServer> = MEMBERS
        .iter()
        .chain(&[JOINER])
        .map(|last| cluster.serve(SocketAddr::new(ip(*last), port)))
        .collect();
    let member_ips: Vec<IpAddr> = MEMBERS.iter().map(|last| ip(*last)).collect();
    let with_joiner: Vec<IpAddr> = member_ips.iter().copied().chain([ip(JOINER)]).collect();
    cluster.set_addresses(&member_ips);

    let state = TempDir::new("discover-bench-state");
    let mut spec = ServerSpec::zone(&format!(
        "{ZONE_HEAD}\n[pool.api]\nport = {port}\nmembers = [\"{}\", \"{}\"]\ndiscover = {{ kubeconfig = \"discover.kubeconfig\", allow = [\"127.0.3.0/28\"] }}\n",
        ip(MEMBERS[0]),
        ip(MEMBERS[1])
    ));
    spec.zones.push((
        "discover.kubeconfig".to_string(),
        cluster.kubeconfig(&format!("https://{API_NAME}:{port}"), Auth::Token),
    ));
    spec.server_extra = format!(
        "state_dir = \"{}\"\nhttp = \"127.0.0.1:0\"\n",
        state.path().display()
    );
    let server = TestServer::start(spec);
    let want: Vec<String> = sorted(member_ips.iter().map(ToString::to_string).collect());
    assert!(
        eventually(STEP_LIMIT, || a_sorted(server.addr(), API) == want),
        "the three members are not answered: {:?}",
        a_sorted(server.addr(), API)
    );

    println!(
        "discovery over {trials} trials (poll every 5ms; default probes: tcp, interval 1s, rise 2, fall 2)"
    );
    let joiner = ip(JOINER).to_string();
    let started = Instant::now();
    let mut figures = Figures::default();
    for _ in 0..trials {
        if started.elapsed() > RUN_LIMIT {
            println!("stopped early: the run took over {RUN_LIMIT:?}");
            break;
        }
        std::thread::sleep(INTERVAL.mul_f64(rand_unit()));
        let changed = (Instant::now(), SystemTime::now());
        cluster.set_addresses(&with_joiner);
        let [event, probe, answered] = times(&server, &joiner, changed, |seen| {
            [
                (seen.proposed, seen.last_event),
                (seen.probed_ok, seen.first_probe),
                (seen.answered, None),
            ]
        });
        figures.joined_event.push(event);
        figures.joined_probe.push(probe);
        figures.joined_answered.push(answered);

        std::thread::sleep(INTERVAL.mul_f64(rand_unit()));
        let changed = (Instant::now(), SystemTime::now());
        cluster.set_addresses(&member_ips);
        let [event, gone] = times(&server, &joiner, changed, |seen| {
            [(!seen.proposed, seen.last_event), (!seen.answered, None)]
        });
        figures.removed_event.push(event);
        figures.removed_gone.push(gone);
    }

    println!("joined (slice gains a fourth API server)");
    println!(
        "  -> watch event seen:      {}",
        summary(&figures.joined_event)
    );
    println!(
        "  -> first passing probe:   {}",
        summary(&figures.joined_probe)
    );
    println!(
        "  -> answered:              {}",
        summary(&figures.joined_answered)
    );
    println!("removed (slice drops it)");
    println!(
        "  -> watch event seen:      {}",
        summary(&figures.removed_event)
    );
    println!(
        "  -> gone from answers:     {}",
        summary(&figures.removed_gone)
    );
}

/// Polls until every step `done` makes of a poll has happened; returns, per step, the time
/// from `since` to when it happened: by the server's clock when it says, else the first poll
/// that saw it.
fn times<const N: usize>(
    server: &TestServer,
    joiner: &str,
    since: (Instant, SystemTime),
    done: impl Fn(&Seen) -> [Step; N],
) -> [Duration; N] {
    let mut first: [Option<Duration>; N] = [None; N];
    loop {
        let seen = look(server, joiner);
        let elapsed = since.0.elapsed();
        for (slot, (happened, at)) in first.iter_mut().zip(done(&seen)) {
            if happened && slot.is_none() {
                let by_server = at.and_then(|at| at.duration_since(since.1).ok());
                *slot = Some(by_server.unwrap_or(elapsed));
            }
        }
        if first.iter().all(Option::is_some) {
            return first.map(|slot| slot.unwrap_or_default());
        }
        if elapsed > STEP_LIMIT {
            panic!("no change within {STEP_LIMIT:?} (polls so far: {first:?})");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn look(server: &TestServer, joiner: &str) -> Seen {
    let document = status(server);
    let pool = &document["zones"][0]["pools"][0];
    let proposed = pool["discover"]["proposed"]
        .as_array()
        .is_some_and(|list| list.iter().any(|a| a == joiner));
    let member = pool["members"]
        .as_array()
        .and_then(|members| members.iter().find(|m| m["address"] == joiner));
    let probed_ok = member.is_some_and(|m| m["last_result"] == "ok");
    let first_probe = member
        .filter(|m| m["consecutive_successes"] == 1)
        .and_then(|m| unix(&m["last_probe"]));
    let answered = a_sorted(server.addr(), API).iter().any(|a| a == joiner);
    Seen {
        proposed,
        last_event: unix(&pool["discover"]["last_event"]),
        probed_ok,
        first_probe,
        answered,
    }
}

/// A /status time (seconds since the epoch, fractional).
fn unix(value: &serde_json::Value) -> Option<SystemTime> {
    value
        .as_f64()
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .map(|since_epoch| SystemTime::UNIX_EPOCH + since_epoch)
}

fn rand_unit() -> f64 {
    rand::random_range(0.0..1.0)
}
