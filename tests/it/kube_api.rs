//! The stand-in Kubernetes API (`testkit::kube_api`) checked against the real kubectl, so that
//! what the discovery tests build on speaks what client-go expects: list with a label
//! selector, watch that follows a change, both kinds of authentication, and Unauthorized for
//! a wrong token. The wire details kubectl does not show (410 Gone in a watch stream,
//! bookmarks, cut streams) are checked with a plain HTTPS client.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use testkit::TempDir;
use testkit::kube_api::client::Client;
use testkit::kube_api::{ApiServer, Auth, KubeCluster, Verb};

/// Generous: kubectl's start and discovery on a loaded machine, not a measurement.
const LIMIT: Duration = Duration::from_secs(30);
const SERVER_NAME: &str = "api.standin.test";
const SLICES: &str = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices";
const SELECTOR: &str = "kubernetes.io/service-name=kubernetes";

fn ip(text: &str) -> IpAddr {
    text.parse().expect("an IP address")
}

fn cluster() -> (KubeCluster, ApiServer) {
    let cluster = KubeCluster::new(SERVER_NAME);
    cluster.set_addresses(&[ip("10.0.0.1"), ip("10.0.0.2")]);
    let server = cluster.serve("127.0.0.1:0".parse().expect("an address"));
    (cluster, server)
}

/// A kubectl run against `kubeconfig`, with its discovery cache in the scratch directory.
fn kubectl(dir: &TempDir, kubeconfig: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("kubectl");
    command
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .arg("--request-timeout=20s")
        .args(args)
        .env("HOME", dir.path());
    command
}

fn write_kubeconfig(
    dir: &TempDir,
    cluster: &KubeCluster,
    server: &ApiServer,
    auth: Auth,
) -> PathBuf {
    dir.write("kubeconfig", &cluster.kubeconfig(&server.url(), auth))
}

fn list_addresses(auth: Auth) {
    let (cluster, server) = cluster();
    let dir = TempDir::new("kubectl");
    let kubeconfig = write_kubeconfig(&dir, &cluster, &server, auth);
    let output = kubectl(
        &dir,
        &kubeconfig,
        &[
            "get",
            "endpointslices",
            "-n",
            "default",
            "-l",
            SELECTOR,
            "-o",
            "json",
        ],
    )
    .output()
    .expect("run kubectl");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "kubectl failed: {stderr}");
    let list: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("kubectl prints JSON");
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{list}");
    let slice = &items[0];
    assert_eq!(slice["metadata"]["name"], "kubernetes");
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(slice["ports"][0]["name"], "https");
    assert_eq!(slice["ports"][0]["port"], 6443);
    let addresses: Vec<&str> = slice["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .filter_map(|endpoint| endpoint["addresses"][0].as_str())
        .collect();
    assert_eq!(addresses, ["10.0.0.1", "10.0.0.2"]);
    let lists: Vec<_> = cluster
        .requests()
        .into_iter()
        .filter(|request| request.verb == Verb::List)
        .collect();
    assert!(
        !lists.is_empty(),
        "kubectl listed: {:?}",
        cluster.requests()
    );
    assert!(
        lists.iter().all(|request| request.auth == Some(auth)),
        "{lists:?}"
    );
}

#[test]
#[cfg_attr(
    not(apidns_has_kubectl),
    ignore = "needs kubectl: apt-get install kubectl, then cargo test --test it kube_api::"
)]
fn kubectl_lists_the_addresses_with_a_token() {
    list_addresses(Auth::Token);
}

#[test]
#[cfg_attr(
    not(apidns_has_kubectl),
    ignore = "needs kubectl: apt-get install kubectl, then cargo test --test it kube_api::"
)]
fn kubectl_lists_the_addresses_with_a_client_certificate() {
    list_addresses(Auth::ClientCert);
}

/// kubectl's stdout, line by line, on a channel that a test waits on.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    receiver
}

/// Reads lines until one contains `text`; false when the output ends or `LIMIT` passes.
fn wait_for_line(lines: &mpsc::Receiver<String>, text: &str) -> bool {
    let deadline = std::time::Instant::now() + LIMIT;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(text) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

#[test]
#[cfg_attr(
    not(apidns_has_kubectl),
    ignore = "needs kubectl: apt-get install kubectl, then cargo test --test it kube_api::"
)]
fn kubectl_watch_prints_the_slice_then_follows_a_change() {
    let (cluster, server) = cluster();
    let dir = TempDir::new("kubectl");
    let kubeconfig = write_kubeconfig(&dir, &cluster, &server, Auth::Token);
    let mut child = kubectl(
        &dir,
        &kubeconfig,
        &["get", "endpointslices", "-n", "default", "-w", "-o", "json"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start kubectl");
    let lines = lines_of(&mut child);
    assert!(
        wait_for_line(&lines, "\"10.0.0.2\""),
        "kubectl printed the slice"
    );
    assert!(
        cluster.wait_for_watchers(1, LIMIT),
        "kubectl opened a watch"
    );
    cluster.set_addresses(&[ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.3")]);
    let followed = wait_for_line(&lines, "\"10.0.0.3\"");
    let _ = child.kill();
    let output = child.wait_with_output().expect("kubectl ends");
    assert!(
        followed,
        "kubectl printed the change; stderr: {}; requests: {:?}",
        String::from_utf8_lossy(&output.stderr),
        cluster.requests()
    );
    let watches: Vec<_> = cluster
        .requests()
        .into_iter()
        .filter(|request| request.verb == Verb::Watch)
        .collect();
    assert!(
        watches.iter().all(|watch| watch.resource_version.is_some()),
        "kubectl watches from its list's resourceVersion: {watches:?}"
    );
    assert!(
        watches.iter().all(|watch| watch.http2),
        "client-go took HTTP/2 by ALPN, as with kube-apiserver: {watches:?}"
    );
}

#[test]
#[cfg_attr(
    not(apidns_has_kubectl),
    ignore = "needs kubectl: apt-get install kubectl, then cargo test --test it kube_api::"
)]
fn kubectl_reports_unauthorized_for_a_wrong_token() {
    let (cluster, server) = cluster();
    let dir = TempDir::new("kubectl");
    let kubeconfig = cluster
        .kubeconfig(&server.url(), Auth::Token)
        .replace(&cluster.token(), "not-the-token");
    let kubeconfig = dir.write("kubeconfig", &kubeconfig);
    let output = kubectl(
        &dir,
        &kubeconfig,
        &["get", "endpointslices", "-n", "default"],
    )
    .output()
    .expect("run kubectl");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "kubectl succeeded without a valid token"
    );
    // kubectl's report of a 401, word for word what it says to a real cluster (client-go
    // words the discovery error itself rather than quote the Status).
    assert!(
        stderr.contains("You must be logged in to the server"),
        "kubectl said: {stderr}"
    );
    assert!(
        cluster
            .requests()
            .iter()
            .all(|request| request.status == 401)
    );
}

fn client(cluster: &KubeCluster, server: &ApiServer) -> Client {
    Client::new(cluster, server.addr(), SERVER_NAME, Some(Auth::Token))
}

fn list_resource_version(client: &Client) -> String {
    let (status, body) = client
        .get(&format!(
            "{SLICES}?labelSelector=kubernetes.io%2Fservice-name%3Dkubernetes"
        ))
        .expect("list");
    assert_eq!(status, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).expect("a JSON list");
    assert_eq!(list["kind"], "EndpointSliceList");
    list["metadata"]["resourceVersion"]
        .as_str()
        .expect("a resourceVersion")
        .to_string()
}

#[test]
fn a_watch_from_before_expired_history_gets_410_in_its_stream() {
    let (cluster, server) = cluster();
    let client = client(&cluster, &server);
    let old = list_resource_version(&client);
    let since = cluster.requests().len();
    cluster.expire_history();
    let mut watch = client
        .watch(&format!("{SLICES}?watch=1&resourceVersion={old}"))
        .expect("watch");
    assert_eq!(
        watch.status(),
        200,
        "the watch cache reports 410 inside the stream"
    );
    let event = watch.next_event().expect("an event").expect("not the end");
    assert_eq!(event["type"], "ERROR", "{event}");
    assert_eq!(event["object"]["kind"], "Status");
    assert_eq!(event["object"]["code"], 410);
    assert_eq!(event["object"]["reason"], "Expired");
    assert!(watch.next_event().expect("a clean end").is_none());
    let request = cluster
        .wait_for_request(since, LIMIT, |request| request.verb == Verb::Watch)
        .expect("the watch is recorded");
    assert_eq!(request.resource_version.as_deref(), Some(old.as_str()));
    assert_eq!((request.status, request.auth), (200, Some(Auth::Token)));

    // A fresh list's resourceVersion can be watched from again.
    let fresh = list_resource_version(&client);
    assert_ne!(fresh, old);
    let mut watch = client
        .watch(&format!(
            "{SLICES}?watch=true&resourceVersion={fresh}&allowWatchBookmarks=true"
        ))
        .expect("watch");
    let event = watch.next_event().expect("an event").expect("not the end");
    assert_eq!(event["type"], "BOOKMARK", "{event}");
    assert_eq!(
        event["object"]["metadata"]["resourceVersion"],
        fresh.as_str()
    );

    // An exact list from before is gone too; a list from it with the default semantics
    // ("not older than") is served from the current state.
    let (status, body) = client
        .get(&format!(
            "{SLICES}?resourceVersion={old}&resourceVersionMatch=Exact"
        ))
        .expect("list");
    assert_eq!(status, 410, "{body}");
    let (status, _) = client
        .get(&format!("{SLICES}?resourceVersion={old}"))
        .expect("list");
    assert_eq!(status, 200);
}

#[test]
fn a_watch_gets_added_events_then_changes_then_is_cut() {
    let (cluster, server) = cluster();
    let client = Client::new(&cluster, server.addr(), SERVER_NAME, Some(Auth::ClientCert));
    let mut watch = client
        .watch(&format!(
            "{SLICES}?watch=true&labelSelector=kubernetes.io%2Fservice-name%3Dkubernetes"
        ))
        .expect("watch");
    let added = watch.next_event().expect("an event").expect("not the end");
    assert_eq!(added["type"], "ADDED", "{added}");
    assert_eq!(added["object"]["kind"], "EndpointSlice");
    assert_eq!(added["object"]["apiVersion"], "discovery.k8s.io/v1");
    assert!(cluster.wait_for_watchers(1, LIMIT));

    cluster.set_addresses(&[ip("10.0.0.1"), ip("fd00::1")]);
    let mut seen = Vec::new();
    for _ in 0..2 {
        let event = watch.next_event().expect("an event").expect("not the end");
        seen.push((
            event["type"].as_str().unwrap_or_default().to_string(),
            event["object"]["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        ));
    }
    assert_eq!(
        seen,
        [
            ("MODIFIED".to_string(), "kubernetes".to_string()),
            ("ADDED".to_string(), "kubernetes-ipv6".to_string())
        ]
    );

    cluster.cut_watches();
    assert!(
        watch.next_event().is_err(),
        "a cut stream ends without its last chunk"
    );
    assert!(testkit::eventually(LIMIT, || cluster.open_watches() == 0));
}

#[test]
fn no_credentials_get_401_and_stopped_servers_refuse() {
    let (cluster, server) = cluster();
    let anonymous = Client::new(&cluster, server.addr(), SERVER_NAME, None);
    let (status, body) = anonymous.get(SLICES).expect("answered");
    assert_eq!(status, 401);
    let status_object: serde_json::Value = serde_json::from_str(&body).expect("a Status");
    assert_eq!(status_object["reason"], "Unauthorized");
    let (status, _) = client(&cluster, &server)
        .with_token("wrong")
        .get(SLICES)
        .expect("answered");
    assert_eq!(status, 401);

    // Two servers on one cluster, on two loopback addresses with the same port.
    let second: SocketAddr = SocketAddr::new(ip("127.0.0.2"), server.addr().port());
    let second = cluster.serve(second);
    let (status, _) = client(&cluster, &second).get(SLICES).expect("answered");
    assert_eq!(status, 200);
    let address = second.addr();
    second.stop();
    assert!(client(&cluster, &server).get(SLICES).is_ok());
    assert!(
        Client::new(&cluster, address, SERVER_NAME, Some(Auth::Token))
            .get(SLICES)
            .is_err()
    );
    let servers: Vec<SocketAddr> = cluster.requests().iter().map(|r| r.server).collect();
    assert!(servers.contains(&address) && servers.contains(&server.addr()));
}

#[test]
fn a_streaming_list_ends_its_initial_events_with_a_bookmark_and_times_out() {
    let (cluster, server) = cluster();
    cluster.set_bookmark_interval(Duration::from_secs(3600));
    let client = client(&cluster, &server);
    let mut watch = client
        .watch(&format!(
            "{SLICES}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1"
        ))
        .expect("watch");
    let added = watch.next_event().expect("an event").expect("not the end");
    assert_eq!(added["type"], "ADDED", "{added}");
    let bookmark = watch.next_event().expect("an event").expect("not the end");
    assert_eq!(bookmark["type"], "BOOKMARK", "{bookmark}");
    assert_eq!(
        bookmark["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    assert_eq!(
        bookmark["object"]["metadata"]["resourceVersion"],
        cluster.resource_version().to_string().as_str()
    );
    // timeoutSeconds=1 ends the stream cleanly, with its last chunk.
    assert!(watch.next_event().expect("a clean end").is_none());

    let (status, body) = client
        .get(&format!("{SLICES}?watch=true&sendInitialEvents=true"))
        .expect("answered");
    assert_eq!(
        status, 422,
        "sendInitialEvents needs NotOlderThan and bookmarks: {body}"
    );
}

#[test]
fn no_addresses_leave_the_slice_with_no_endpoints() {
    let (cluster, server) = cluster();
    let client = client(&cluster, &server);
    let before = list_resource_version(&client);
    let mut watch = client
        .watch(&format!("{SLICES}?watch=1&resourceVersion={before}"))
        .expect("watch");
    cluster.set_addresses(&[]);
    let event = watch.next_event().expect("an event").expect("not the end");
    assert_eq!(event["type"], "MODIFIED", "{event}");
    assert_eq!(event["object"]["endpoints"], serde_json::json!([]));
    assert_eq!(event["object"]["ports"][0]["name"], "https");
    assert!(cluster.addresses().is_empty());
    let (status, body) = client
        .get(&format!("{SLICES}/kubernetes"))
        .expect("get by name");
    assert_eq!(status, 200, "{body}");
    let (status, _) = client.get(&format!("{SLICES}/other")).expect("answered");
    assert_eq!(status, 404);
}

#[test]
fn a_watch_from_a_resource_version_not_reached_waits_then_reports_it_too_large() {
    let (cluster, server) = cluster();
    let client = client(&cluster, &server);
    let ahead = cluster.resource_version() + 1;
    let mut watch = client
        .watch(&format!("{SLICES}?watch=1&resourceVersion={ahead}"))
        .expect("watch");
    // Reached by a write while it waits: the watch starts from it, and sees the next change.
    assert!(cluster.wait_for_watchers(1, LIMIT));
    cluster.set_addresses(&[ip("10.0.0.9")]);
    cluster.set_addresses(&[ip("10.0.0.8")]);
    let event = watch.next_event().expect("an event").expect("not the end");
    assert_eq!(event["type"], "MODIFIED", "{event}");
    assert_eq!(event["object"]["endpoints"][0]["addresses"][0], "10.0.0.8");

    let far = cluster.resource_version() + 100;
    let mut watch = client
        .watch(&format!("{SLICES}?watch=1&resourceVersion={far}"))
        .expect("watch");
    let event = watch.next_event().expect("an event").expect("not the end");
    assert_eq!(event["type"], "ERROR", "{event}");
    assert_eq!(event["object"]["code"], 504);
    assert_eq!(
        event["object"]["details"]["causes"][0]["reason"],
        "ResourceVersionTooLarge"
    );
}

#[test]
#[cfg_attr(
    not(apidns_has_kubectl),
    ignore = "needs kubectl: apt-get install kubectl, then cargo test --test it kube_api::"
)]
fn kubectl_checks_the_certificate_for_the_tls_server_name() {
    let (cluster, server) = cluster();
    let dir = TempDir::new("kubectl");
    // `localhost` is not in the certificate; the server name is.
    let url = format!("https://localhost:{}", server.addr().port());
    let named = cluster.kubeconfig_with_tls_server_name(&url, SERVER_NAME, Auth::Token);
    let named = dir.write("named.kubeconfig", &named);
    let output = kubectl(
        &dir,
        &named,
        &["get", "endpointslices", "-n", "default", "-o", "name"],
    )
    .output()
    .expect("run kubectl");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.trim(), "endpointslice.discovery.k8s.io/kubernetes");

    let unnamed = dir.write("unnamed.kubeconfig", &cluster.kubeconfig(&url, Auth::Token));
    let output = kubectl(&dir, &unnamed, &["get", "endpointslices", "-n", "default"])
        .output()
        .expect("run kubectl");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("certificate"), "kubectl said: {stderr}");
}

#[test]
#[cfg_attr(
    not(apidns_has_ipv6_loopback),
    ignore = "this machine has no IPv6 loopback (::1): enable IPv6 on lo to run it"
)]
fn a_server_on_ipv6_loopback_is_verified_by_its_address() {
    let cluster = KubeCluster::new(SERVER_NAME);
    let server = cluster.serve("[::1]:0".parse().expect("an address"));
    assert_eq!(
        server.url(),
        format!("https://[::1]:{}", server.addr().port())
    );
    let by_address = Client::new(&cluster, server.addr(), "::1", Some(Auth::Token));
    let (status, body) = by_address.get(SLICES).expect("answered");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn another_slice_with_the_label_is_listed_and_watched_besides_the_servers_own() {
    let (cluster, server) = cluster();
    let client = client(&cluster, &server);
    let before = list_resource_version(&client);
    let mut watch = client
        .watch(&format!(
            "{SLICES}?watch=1&resourceVersion={before}&labelSelector=kubernetes.io%2Fservice-name%3Dkubernetes"
        ))
        .expect("watch");
    cluster.put_slice("kubernetes-stray", &[ip("192.0.2.66")]);
    cluster.delete_slice("kubernetes-stray");
    for kind in ["ADDED", "DELETED"] {
        let event = watch.next_event().expect("an event").expect("not the end");
        assert_eq!(event["type"], kind, "{event}");
        assert_eq!(event["object"]["metadata"]["name"], "kubernetes-stray");
        assert_eq!(
            event["object"]["endpoints"][0]["addresses"][0],
            "192.0.2.66"
        );
    }
    assert_eq!(cluster.addresses(), [ip("10.0.0.1"), ip("10.0.0.2")]);
}

#[test]
fn a_frozen_server_answers_nothing_until_thawed() {
    let (cluster, server) = cluster();
    let client = client(&cluster, &server);
    let mut watch = client
        .watch(&format!("{SLICES}?watch=1&allowWatchBookmarks=true"))
        .expect("watch");
    let added = watch.next_event().expect("an event").expect("not the end");
    assert_eq!(added["type"], "ADDED");
    server.freeze(true);
    let since = cluster.requests().len();
    let (answered, answer) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = answered.send(client.get(SLICES).map(|(status, _)| status));
    });
    // A bounded look for something that must not happen: a frozen server records no request.
    assert!(
        cluster
            .wait_for_request(since, Duration::from_millis(300), |_| true)
            .is_none()
    );
    server.freeze(false);
    let status = answer.recv_timeout(LIMIT).expect("answered once thawed");
    assert_eq!(status.expect("a response"), 200);
    // The watch goes on, with its bookmarks.
    let bookmark = watch.next_event().expect("an event").expect("not the end");
    assert_eq!(bookmark["type"], "BOOKMARK", "{bookmark}");
}
