//! Membership discovered from the cluster (`discover` on a pool), against the real binary and
//! the stand-in Kubernetes API (`testkit::kube_api`) on loopback. Each stand-in API server
//! listens on 127.0.0.x:PORT and the pool probes TCP on PORT, so the members are the stand-ins
//! themselves: a stopped API server is both a dead member and a dead way to the cluster.

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use testkit::kube_api::{ApiServer, Auth, KubeCluster, Verb};
use testkit::*;

/// Generous: a probe round and a watch event on a loaded machine, not a measurement.
const LIMIT: Duration = Duration::from_secs(30);
const SERVER_NAME: &str = "api.k8s.example.com";
const POOL: &str = "api.k8s.example.com";

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// The stand-in cluster, its API servers by last octet, and the port they all listen on.
struct Cluster {
    cluster: KubeCluster,
    servers: Vec<(u8, ApiServer)>,
    port: u16,
}

impl Cluster {
    /// API servers on 127.0.0.<each of `lasts`>, all in the slice.
    fn new(lasts: &[u8]) -> Self {
        let cluster = KubeCluster::new(SERVER_NAME);
        let port = free_port();
        let mut this = Self {
            cluster,
            servers: Vec::new(),
            port,
        };
        for last in lasts {
            this.start(*last);
        }
        this.set(lasts);
        this
    }

    fn start(&mut self, last: u8) {
        let server = self.cluster.serve(SocketAddr::new(ip(last), self.port));
        self.servers.push((last, server));
    }

    fn stop(&mut self, last: u8) {
        if let Some(position) = self.servers.iter().position(|(l, _)| *l == last) {
            self.servers.remove(position).1.stop();
        }
    }

    fn set(&self, lasts: &[u8]) {
        let addresses: Vec<IpAddr> = lasts.iter().map(|last| ip(*last)).collect();
        self.cluster.set_addresses(&addresses);
    }

    fn kubeconfig(&self, auth: Auth) -> String {
        self.cluster
            .kubeconfig(&format!("https://{SERVER_NAME}:{}", self.port), auth)
    }
}

/// The zone: pool `api` with bootstrap members `bootstrap`, probed by TCP on the cluster's
/// port, discovering through `discover.kubeconfig` (written beside the zone file).
fn zone(port: u16, bootstrap: &[u8]) -> String {
    let members: Vec<String> = bootstrap
        .iter()
        .map(|l| format!("\"{}\"", ip(*l)))
        .collect();
    format!(
        "{ZONE_HEAD}\n[pool.api]\nport = {port}\nmembers = [{}]\ndiscover = {{ kubeconfig = \"discover.kubeconfig\", allow = [\"127.0.0.0/28\"] }}\n",
        members.join(", ")
    )
}

fn spec(cluster: &Cluster, state: &TempDir, auth: Auth) -> ServerSpec {
    let mut spec = ServerSpec::zone(&zone(cluster.port, &[11, 12]));
    spec.zones
        .push(("discover.kubeconfig".to_string(), cluster.kubeconfig(auth)));
    spec.server_extra = format!(
        "state_dir = \"{}\"\nhttp = \"127.0.0.1:0\"\n",
        state.path().display()
    );
    spec.probe =
        "interval = \"200ms\"\ntimeout = \"100ms\"\nfast_interval = \"50ms\"\nrise = 1\nfall = 1"
            .to_string();
    spec
}

fn answered(server: &TestServer) -> Vec<String> {
    a_sorted(server.addr(), POOL)
}

fn answers(server: &TestServer, lasts: &[u8]) -> bool {
    let want: Vec<String> = sorted(lasts.iter().map(|l| ip(*l).to_string()).collect());
    eventually(LIMIT, || answered(server) == want)
}

fn discover_status(server: &TestServer) -> serde_json::Value {
    status(server)["zones"][0]["pools"][0]["discover"].clone()
}

/// The pool's members in /status, with their sources.
fn members(server: &TestServer) -> Vec<(String, String)> {
    let document = status(server);
    let mut members: Vec<(String, String)> = document["zones"][0]["pools"][0]["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["address"].as_str().unwrap_or_default().to_string(),
                m["source"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    members.sort();
    members
}

fn member_list(entries: &[(u8, &str)]) -> Vec<(String, String)> {
    let mut list: Vec<(String, String)> = entries
        .iter()
        .map(|(last, source)| (ip(*last).to_string(), source.to_string()))
        .collect();
    list.sort();
    list
}

fn counter(server: &TestServer, name: &str, labels: &str) -> f64 {
    metric(server, &format!("apidns_{name}_total{{{labels}}} ")).unwrap_or(0.0)
}

#[test]
fn a_joined_api_server_is_answered_and_a_removed_one_leaves() {
    let mut cluster = Cluster::new(&[11, 12, 13]);
    let state = TempDir::new("discover-state");
    let server = TestServer::start(spec(&cluster, &state, Auth::Token));
    assert!(answers(&server, &[11, 12, 13]), "{:?}", answered(&server));
    let zone_file = std::fs::read_to_string(server.dir.path().join("zones/k8s.example.com.toml"))
        .expect("the zone file");

    cluster.start(14);
    cluster.set(&[11, 12, 13, 14]);
    assert!(
        answers(&server, &[11, 12, 13, 14]),
        "{:?}",
        answered(&server)
    );
    assert_eq!(
        members(&server),
        member_list(&[
            (11, "file"),
            (12, "file"),
            (13, "discovered"),
            (14, "discovered")
        ])
    );

    cluster.set(&[11, 12, 14]);
    assert!(answers(&server, &[11, 12, 14]), "{:?}", answered(&server));
    assert_eq!(
        members(&server),
        member_list(&[(11, "file"), (12, "file"), (14, "discovered")])
    );
    // A file member the slice drops stays: the files are the bootstrap.
    cluster.set(&[12, 14]);
    assert!(eventually(LIMIT, || discover_status(&server)["proposed"]
        == serde_json::json!(["127.0.0.12", "127.0.0.14"])));
    assert!(answers(&server, &[11, 12, 14]), "{:?}", answered(&server));
    assert_eq!(
        std::fs::read_to_string(server.dir.path().join("zones/k8s.example.com.toml"))
            .expect("the zone file"),
        zone_file,
        "no apidns file changes"
    );
    assert!(counter(&server, "discover_applied", &format!("pool=\"{POOL}.\"")) >= 2.0);
    assert!(counter(&server, "discover_events", &format!("pool=\"{POOL}.\"")) >= 3.0);
    let status = discover_status(&server);
    assert_eq!(status["connected"], true, "{status}");
    assert!(status["last_event"].is_number(), "{status}");
}

#[test]
fn an_address_outside_allow_is_never_answered_and_an_empty_slice_changes_nothing() {
    let mut cluster = Cluster::new(&[11, 12]);
    // 127.0.0.20 serves the API (its probe would pass) but is outside 127.0.0.0/28.
    cluster.start(20);
    let state = TempDir::new("discover-state");
    let server = TestServer::start(spec(&cluster, &state, Auth::ClientCert));
    cluster.start(13);
    cluster.set(&[11, 12, 13, 20]);
    assert!(answers(&server, &[11, 12, 13]), "{:?}", answered(&server));
    assert!(eventually(
        LIMIT,
        || discover_status(&server)["outside_allow"] == serde_json::json!(["127.0.0.20"])
    ));
    assert!(!answered(&server).contains(&ip(20).to_string()));
    assert!(
        !members(&server)
            .iter()
            .any(|(address, _)| *address == ip(20).to_string())
    );
    assert!(
        counter(
            &server,
            "discover_outside_allow",
            &format!("pool=\"{POOL}.\"")
        ) >= 1.0
    );
    assert!(
        server
            .logs()
            .iter()
            .any(|line| line.contains("outside allow") && line.contains("127.0.0.20")),
        "logged with the address"
    );

    cluster.set(&[]);
    let refused = format!("pool=\"{POOL}.\",reason=\"empty\"");
    assert!(eventually(LIMIT, || counter(
        &server,
        "discover_refused",
        &refused
    ) >= 1.0));
    assert!(discover_status(&server)["last_refused"].is_string());
    assert!(answers(&server, &[11, 12, 13]), "{:?}", answered(&server));
}

#[test]
fn a_change_that_would_leave_no_member_up_is_not_applied() {
    let mut cluster = Cluster::new(&[11, 12, 13]);
    let state = TempDir::new("discover-state");
    let server = TestServer::start(spec(&cluster, &state, Auth::Token));
    assert!(answers(&server, &[11, 12, 13]), "{:?}", answered(&server));
    let before = member_list(&[(11, "file"), (12, "file"), (13, "discovered")]);
    assert_eq!(members(&server), before);

    // The bootstrap members go down: the discovered one is the only member up, and the one
    // way left to the cluster.
    cluster.stop(11);
    cluster.stop(12);
    assert!(answers(&server, &[13]), "{:?}", answered(&server));
    let through_13 = SocketAddr::new(ip(13), cluster.port).to_string();
    assert!(
        eventually(LIMIT, || {
            let status = discover_status(&server);
            status["connected"] == true && status["through"] == through_13.as_str()
        }),
        "{}",
        discover_status(&server)
    );

    // The slice moves to two addresses where nothing listens and drops the member that is up.
    let applied = || counter(&server, "discover_applied", &format!("pool=\"{POOL}.\""));
    let applied_before = applied();
    cluster.set(&[14, 15]);
    let refused = format!("pool=\"{POOL}.\",reason=\"no_member_up\"");
    assert!(
        eventually(LIMIT, || counter(&server, "discover_refused", &refused)
            >= 1.0),
        "{}",
        discover_status(&server)
    );
    let status = discover_status(&server);
    assert_eq!(
        status["proposed"],
        serde_json::json!(["127.0.0.14", "127.0.0.15"]),
        "{status}"
    );
    let refusal = status["last_refused"].to_string();
    assert!(
        refusal.contains("127.0.0.13") && refusal.contains("no member up"),
        "{status}"
    );
    assert!(
        server
            .logs()
            .iter()
            .any(|line| line.contains("would leave no member up")),
        "logged"
    );
    // The last good membership stays, and its member that is up is still answered.
    assert_eq!(members(&server), before);
    assert!(answers(&server, &[13]), "{:?}", answered(&server));
    assert_eq!(applied(), applied_before, "nothing applied");
}

#[test]
fn discovery_goes_through_another_member_when_its_member_stops() {
    let mut cluster = Cluster::new(&[11, 12, 13]);
    let state = TempDir::new("discover-state");
    let server = TestServer::start(spec(&cluster, &state, Auth::Token));
    assert!(answers(&server, &[11, 12, 13]));
    assert!(eventually(LIMIT, || discover_status(&server)["connected"] == true));
    let through: SocketAddr = discover_status(&server)["through"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("through a member");
    let IpAddr::V4(v4) = through.ip() else {
        panic!("an IPv4 member")
    };
    cluster.stop(v4.octets()[3]);
    assert!(
        eventually(LIMIT, || {
            let status = discover_status(&server);
            status["connected"] == true && status["through"] != through.to_string()
        }),
        "{}",
        discover_status(&server)
    );
    // And it still follows the slice.
    cluster.start(14);
    let mut lasts = vec![11, 12, 13, 14];
    lasts.retain(|l| *l != v4.octets()[3]);
    cluster.set(&[11, 12, 13, 14]);
    assert!(answers(&server, &lasts), "{:?}", answered(&server));
}

#[test]
fn discovery_leaves_a_member_that_hangs_within_seconds() {
    let mut cluster = Cluster::new(&[11, 12, 13]);
    let state = TempDir::new("discover-state");
    let server = TestServer::start(spec(&cluster, &state, Auth::Token));
    assert!(answers(&server, &[11, 12, 13]));
    assert!(eventually(LIMIT, || discover_status(&server)["connected"] == true));
    let through: SocketAddr = discover_status(&server)["through"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("through a member");
    let frozen = cluster
        .servers
        .iter()
        .find(|(_, api)| api.addr() == through)
        .map(|(_, api)| api)
        .expect("the member it goes through");
    // It accepts connections and answers nothing: its TCP probes still pass.
    let since = std::time::Instant::now();
    frozen.freeze(true);
    let moved = wait_until(LIMIT, || {
        let status = discover_status(&server);
        status["connected"] == true && status["through"] != through.to_string()
    });
    let status = discover_status(&server);
    // Well within the watcher's own idle timeout (65 s).
    assert!(
        moved.is_some_and(|took| took < Duration::from_secs(20)),
        "{status} after {:?}: {:#?}",
        since.elapsed(),
        server.logs()
    );
    assert!(
        status["last_error"].to_string().contains("hangs"),
        "{status}"
    );
    // And it follows the slice through the other member.
    cluster.start(14);
    cluster.set(&[11, 12, 13, 14]);
    assert!(
        answers(&server, &[11, 12, 13, 14]),
        "{:?}",
        answered(&server)
    );
}

#[test]
fn an_unreachable_cluster_keeps_the_last_membership_also_across_a_restart() {
    let mut cluster = Cluster::new(&[11, 12, 13]);
    let state = TempDir::new("discover-state");
    let server = TestServer::start(spec(&cluster, &state, Auth::Token));
    assert!(answers(&server, &[11, 12, 13]));
    let before = member_list(&[(11, "file"), (12, "file"), (13, "discovered")]);
    assert_eq!(members(&server), before);
    for last in [11, 12, 13] {
        cluster.stop(last);
    }
    assert!(eventually(LIMIT, || discover_status(&server)["connected"] == false));
    assert!(eventually(LIMIT, || counter(
        &server,
        "discover_watch_errors",
        &format!("pool=\"{POOL}.\"")
    ) >= 2.0));
    assert_eq!(members(&server), before, "the last membership stays");

    // A restart while the cluster is still unreachable serves the kept set.
    server.signal("TERM");
    drop(server);
    let restarted = TestServer::start(spec(&cluster, &state, Auth::Token));
    assert_eq!(members(&restarted), before);
    // All down: the pool answers every member (all_down = "all"), the discovered one too.
    assert!(
        answers(&restarted, &[11, 12, 13]),
        "{:?}",
        answered(&restarted)
    );
}

#[test]
fn a_cut_watch_resumes_and_an_expired_history_lists_again() {
    let mut cluster = Cluster::new(&[11, 12]);
    let state = TempDir::new("discover-state");
    let server = TestServer::start(spec(&cluster, &state, Auth::Token));
    assert!(
        cluster.cluster.wait_for_watchers(1, LIMIT),
        "a watch is open"
    );
    let lists = |cluster: &Cluster| {
        cluster
            .cluster
            .requests()
            .iter()
            .filter(|r| r.verb == Verb::List)
            .count()
    };
    let lists_before = lists(&cluster);

    cluster.cluster.cut_watches();
    cluster.start(13);
    cluster.set(&[11, 12, 13]);
    assert!(answers(&server, &[11, 12, 13]), "{:?}", answered(&server));
    assert_eq!(
        lists(&cluster),
        lists_before,
        "a cut watch resumes from its resourceVersion"
    );

    cluster.cluster.expire_history();
    cluster.cluster.cut_watches();
    assert!(
        eventually(LIMIT, || lists(&cluster) > lists_before),
        "410 Gone lists again"
    );
    cluster.start(14);
    cluster.set(&[11, 12, 13, 14]);
    assert!(
        answers(&server, &[11, 12, 13, 14]),
        "{:?}",
        answered(&server)
    );
}

/// `apidns check` on a zone whose pool discovers with `discover` (and kubeconfig `kubeconfig`).
fn check(discover: &str, kubeconfig: Option<&str>, members: &str) -> String {
    let dir = TempDir::new("discover-check");
    let config = dir.write("apidns.toml", "[server]\nlisten = [\"127.0.0.1:0\"]\n");
    dir.write(
        "zones/k8s.toml",
        &format!("{ZONE_HEAD}\n[pool.api]\nmembers = [{members}]\ndiscover = {discover}\n"),
    );
    if let Some(text) = kubeconfig {
        dir.write("zones/discover.kubeconfig", text);
    }
    let output = Command::new(binary())
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .expect("run check");
    assert_eq!(output.status.code(), Some(1));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn bad_discover_settings_are_errors_with_file_line_and_field() {
    let cluster = KubeCluster::new(SERVER_NAME);
    let good = cluster.kubeconfig(&format!("https://{SERVER_NAME}:6443"), Auth::Token);
    let line = ZONE_HEAD.matches('\n').count() + 4;
    let at = format!("zones/k8s.toml:{line}:");
    let discover =
        |allow: &str| format!("{{ kubeconfig = \"discover.kubeconfig\", allow = [{allow}] }}");

    let stderr = check(&discover("\"192.0.2.0/33\""), Some(&good), "\"192.0.2.10\"");
    assert!(
        stderr.contains(&at)
            && stderr.contains("pool.api.discover.allow[0]")
            && stderr.contains("192.0.2.0/33"),
        "{stderr}"
    );

    let stderr = check(
        &discover("\"192.0.2.0/24\""),
        Some("clusters: [unclosed"),
        "\"192.0.2.10\"",
    );
    assert!(
        stderr.contains(&at) && stderr.contains("pool.api.discover.kubeconfig"),
        "{stderr}"
    );

    let stderr = check(&discover("\"192.0.2.0/24\""), None, "\"192.0.2.10\"");
    assert!(
        stderr.contains(&at)
            && stderr.contains("pool.api.discover.kubeconfig")
            && stderr.contains("discover.kubeconfig"),
        "{stderr}"
    );

    let no_ca: String = good
        .lines()
        .filter(|line| !line.contains("certificate-authority"))
        .collect::<Vec<_>>()
        .join("\n");
    let stderr = check(
        &discover("\"192.0.2.0/24\""),
        Some(&no_ca),
        "\"192.0.2.10\"",
    );
    assert!(
        stderr.contains(&at) && stderr.contains("has no CA"),
        "{stderr}"
    );

    let no_user: String = good
        .lines()
        .filter(|line| !line.contains("token"))
        .collect::<Vec<_>>()
        .join("\n");
    let stderr = check(
        &discover("\"192.0.2.0/24\""),
        Some(&no_user),
        "\"192.0.2.10\"",
    );
    assert!(
        stderr.contains(&at) && stderr.contains("neither a token nor a client certificate"),
        "{stderr}"
    );

    let stderr = check(&discover("\"192.0.2.0/24\""), Some(&good), "");
    assert!(
        stderr.contains(&at)
            && stderr.contains("pool.api.discover")
            && stderr.contains("bootstrap member"),
        "{stderr}"
    );
}

#[test]
fn a_reload_keeps_the_watch_and_a_bad_kubeconfig_keeps_the_old_configuration() {
    let mut cluster = Cluster::new(&[11, 12, 13]);
    let state = TempDir::new("discover-state");
    let server = TestServer::start(spec(&cluster, &state, Auth::Token));
    assert!(answers(&server, &[11, 12, 13]));
    let starts = |server: &TestServer| {
        server
            .synced_logs()
            .iter()
            .filter(|line| line.contains("discovering members from the cluster"))
            .count()
    };
    assert_eq!(starts(&server), 1);
    // synced_logs reloads (SIGHUP) with the same files: the watch is kept.
    assert_eq!(
        starts(&server),
        1,
        "a reload with the same settings keeps the watch"
    );

    server
        .dir
        .write("zones/discover.kubeconfig", "clusters: [unclosed");
    server.signal("HUP");
    let error = server.wait_for_log(LIMIT, |line| line.contains("configuration not reloaded"));
    let error = error.expect("the reload fails");
    assert!(error.contains("pool.api.discover.kubeconfig"), "{error}");
    cluster.start(14);
    cluster.set(&[11, 12, 13, 14]);
    assert!(
        answers(&server, &[11, 12, 13, 14]),
        "the old configuration keeps discovering"
    );
}
