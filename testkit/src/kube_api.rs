//! A stand-in Kubernetes API server for EndpointSlice list and watch, written from the API
//! reference (<https://kubernetes.io/docs/reference/using-api/api-concepts/>): HTTPS with a
//! cluster CA (HTTP/2 by ALPN, as kube-apiserver), bearer-token and client-certificate
//! authentication, discovery documents for kubectl, lists with a resourceVersion, chunked watch
//! streams of newline-delimited WatchEvents with bookmarks, and 410 Gone once the history a
//! watch would replay is compacted.
//!
//! A [`KubeCluster`] is the shared state (what etcd holds); [`KubeCluster::serve`] starts one
//! API server on an address, several of which may serve the same cluster at once, as the
//! control-plane nodes of a real one do. Checked against the real kubectl in
//! `tests/it/kube_api.rs`.
//!
//! What the stand-in does not do: write verbs, set-based label selectors, paging (`limit` and
//! `continue` are accepted and ignored: the whole list is one page), Table output (kubectl
//! falls back to plain JSON and prints NAME and AGE), and a list's wait for a resourceVersion
//! newer than the current one (it is served the current state; a watch does wait).

pub mod client;
mod pki;
mod routes;
mod serve;
mod store;
mod watch;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

pub use pki::{Auth, CLIENT_NAME};

/// What the stand-in was asked for, of which server, for assertions.
#[derive(Debug, Clone)]
pub struct Request {
    /// The address of the API server that answered.
    pub server: SocketAddr,
    pub verb: Verb,
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// The `resourceVersion` parameter, if any.
    pub resource_version: Option<String>,
    /// How the client authenticated (`None`: it did not, and got 401).
    pub auth: Option<Auth>,
    /// The status code answered (200 for a watch, even one that reports 410 in its stream).
    pub status: u16,
    pub http2: bool,
}

/// What a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    List,
    Watch,
    /// One slice by name.
    Get,
    /// `/version`, `/api`, `/apis` and the group documents.
    Discovery,
    /// Anything else: answered 404 (or 405 for a method other than GET) and logged.
    Unknown,
}

/// The state the stand-in API servers share, as etcd behind several kube-apiservers.
pub struct KubeCluster {
    shared: Arc<Shared>,
}

struct Shared {
    pki: pki::Pki,
    store: Mutex<store::Store>,
    /// The current resourceVersion, sent after every write so that watches wake.
    changed: tokio::sync::watch::Sender<u64>,
    /// Bumped by `cut_watches`: every open watch ends abruptly.
    cuts: tokio::sync::watch::Sender<u64>,
    requests: Mutex<Vec<Request>>,
    requests_changed: Condvar,
    watchers: Mutex<usize>,
    watchers_changed: Condvar,
    bookmark_interval: Mutex<Duration>,
}

impl KubeCluster {
    /// A cluster whose API servers present certificates for `server_name` (and the address
    /// each serves on), signed by a new CA; it accepts the client certificate
    /// (CN=`apidns-discover`) and bearer token that [`KubeCluster::kubeconfig`] writes. Its
    /// `default/kubernetes` EndpointSlice exists with no endpoints until
    /// [`KubeCluster::set_addresses`].
    pub fn new(server_name: &str) -> Self {
        let store = store::Store::new();
        let resource_version = store.resource_version();
        Self {
            shared: Arc::new(Shared {
                pki: pki::Pki::new(server_name),
                store: Mutex::new(store),
                changed: tokio::sync::watch::Sender::new(resource_version),
                cuts: tokio::sync::watch::Sender::new(0),
                requests: Mutex::new(Vec::new()),
                requests_changed: Condvar::new(),
                watchers: Mutex::new(0),
                watchers_changed: Condvar::new(),
                bookmark_interval: Mutex::new(Duration::from_secs(1)),
            }),
        }
    }

    /// One API server on `address` (port 0: a free one), HTTPS, sharing this cluster's state.
    /// Panics when the address is taken; see [`KubeCluster::try_serve`].
    pub fn serve(&self, address: SocketAddr) -> ApiServer {
        self.try_serve(address)
            .unwrap_or_else(|error| panic!("serve the stand-in API on {address}: {error}"))
    }

    /// Like [`KubeCluster::serve`], with the bind error. Callable from inside a tokio runtime:
    /// each server runs on its own.
    pub fn try_serve(&self, address: SocketAddr) -> std::io::Result<ApiServer> {
        serve::start(self.shared.clone(), address)
    }

    /// Writes the `default/kubernetes` EndpointSlice(s) with `addresses`, as the API servers'
    /// lease reconciler does: one endpoint per address, port `https` (6443, or
    /// [`KubeCluster::set_port`]), one slice per address family (`kubernetes`, plus
    /// `kubernetes-ipv6` when both are given). A changed slice gets a new resourceVersion and
    /// every open watch a MODIFIED (or ADDED, DELETED) event; an unchanged one is not written.
    /// No addresses leaves the `kubernetes` slice with no endpoints.
    pub fn set_addresses(&self, addresses: &[IpAddr]) {
        self.write(|store| store.set_addresses(addresses));
    }

    /// Writes another slice labelled `kubernetes.io/service-name=kubernetes` in `default`, as
    /// anyone allowed to create EndpointSlices there could: what a client that selects by
    /// label sees besides the API servers' own (a stray or hostile object). Its addresses
    /// must be of one family. `set_addresses` leaves it alone.
    pub fn put_slice(&self, name: &str, addresses: &[IpAddr]) {
        assert!(
            addresses.iter().all(|a| a.is_ipv4()) || addresses.iter().all(|a| a.is_ipv6()),
            "an EndpointSlice holds one address family: {addresses:?}"
        );
        self.write(|store| store.put_slice(name, addresses));
    }

    /// Deletes the slice `name` (a DELETED event), if there is one.
    pub fn delete_slice(&self, name: &str) {
        self.write(|store| store.delete_slice(name));
    }

    /// The port the slices announce (default 6443); rewrites them with it.
    pub fn set_port(&self, port: u16) {
        self.write(|store| {
            store.set_port(port);
            let addresses = store.addresses();
            store.set_addresses(&addresses);
        });
    }

    /// The port the slices announce.
    pub fn port(&self) -> u16 {
        self.shared.store.lock().expect("store").port()
    }

    /// The addresses the API servers' own slices now hold.
    pub fn addresses(&self) -> Vec<IpAddr> {
        self.shared.store.lock().expect("store").addresses()
    }

    /// Compacts the history: a watch from any resourceVersion handed out so far (and a list
    /// with `resourceVersionMatch=Exact` for one) now gets 410 Gone, reason Expired — a watch
    /// as an ERROR event in its stream, as kube-apiserver's watch cache sends it. The global
    /// resourceVersion moves on (as writes to other objects move it in a real cluster), so a
    /// fresh list returns one that can be watched from. Open watches go on.
    pub fn expire_history(&self) {
        self.write(store::Store::expire);
    }

    /// Ends every open watch stream abruptly (HTTP/1.1: the connection closes without the last
    /// chunk; HTTP/2: the stream is reset), as when an API server's connection breaks.
    pub fn cut_watches(&self) {
        self.shared.cuts.send_modify(|cuts| *cuts += 1);
    }

    /// How often watches that asked for bookmarks get one (default 1 s; kube-apiserver sends
    /// one about every minute). Applies to watches started afterwards.
    pub fn set_bookmark_interval(&self, interval: Duration) {
        *self.shared.bookmark_interval.lock().expect("interval") = interval;
    }

    /// A kubeconfig (YAML) for `server_url` (`https://host:port`) with the CA as
    /// `certificate-authority-data`, and the bearer token or the client certificate and key.
    pub fn kubeconfig(&self, server_url: &str, auth: Auth) -> String {
        self.shared.pki.kubeconfig(server_url, None, auth)
    }

    /// Like [`KubeCluster::kubeconfig`], with `tls-server-name`: clients connect to the
    /// URL's host and check the certificate for this name (the server name the cluster was
    /// made with, or an address one of its servers serves on).
    pub fn kubeconfig_with_tls_server_name(
        &self,
        server_url: &str,
        tls_server_name: &str,
        auth: Auth,
    ) -> String {
        self.shared
            .pki
            .kubeconfig(server_url, Some(tls_server_name), auth)
    }

    pub fn ca_pem(&self) -> String {
        self.shared.pki.ca_pem()
    }

    pub fn token(&self) -> String {
        self.shared.pki.token().to_string()
    }

    pub fn client_cert_pem(&self) -> String {
        self.shared.pki.client_cert_pem().to_string()
    }

    pub fn client_key_pem(&self) -> String {
        self.shared.pki.client_key_pem().to_string()
    }

    /// The cluster's current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store.lock().expect("store").resource_version()
    }

    /// Every request so far, in the order they arrived.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().expect("requests").clone()
    }

    /// The first request from the `since`-th on (`requests().len()` taken before an action)
    /// that `matches`, waiting up to `timeout` for it; wakes on each request.
    pub fn wait_for_request(
        &self,
        since: usize,
        timeout: Duration,
        mut matches: impl FnMut(&Request) -> bool,
    ) -> Option<Request> {
        let requests = self.shared.requests.lock().expect("requests");
        let found = |requests: &Vec<Request>, matches: &mut dyn FnMut(&Request) -> bool| {
            requests.iter().skip(since).find(|r| matches(r)).cloned()
        };
        let (requests, _) = self
            .shared
            .requests_changed
            .wait_timeout_while(requests, timeout, |requests| {
                found(requests, &mut matches).is_none()
            })
            .expect("requests");
        found(&requests, &mut matches)
    }

    /// Watch streams open now.
    pub fn open_watches(&self) -> usize {
        *self.shared.watchers.lock().expect("watchers")
    }

    /// Whether at least `count` watch streams are open within `timeout`; wakes on each watch
    /// that opens or closes.
    pub fn wait_for_watchers(&self, count: usize, timeout: Duration) -> bool {
        let watchers = self.shared.watchers.lock().expect("watchers");
        let (watchers, _) = self
            .shared
            .watchers_changed
            .wait_timeout_while(watchers, timeout, |open| *open < count)
            .expect("watchers");
        *watchers >= count
    }

    fn write(&self, change: impl FnOnce(&mut store::Store)) {
        let resource_version = {
            let mut store = self.shared.store.lock().expect("store");
            change(&mut store);
            store.resource_version()
        };
        self.shared.changed.send_replace(resource_version);
    }
}

/// One stand-in API server. [`ApiServer::stop`] (or dropping it) closes its listener and every
/// open connection, as a killed process would.
pub struct ApiServer {
    address: SocketAddr,
    frozen: tokio::sync::watch::Sender<bool>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl ApiServer {
    pub fn addr(&self) -> SocketAddr {
        self.address
    }

    /// `https://address` (IPv6 in brackets).
    pub fn url(&self) -> String {
        format!("https://{}", self.address)
    }

    /// Freezes (or thaws) the server, as a stopped process or a hung host: while frozen it
    /// accepts, reads and writes nothing on any connection (watch streams included, so
    /// bookmarks stop), and the connections stay open. Thawed, it goes on where it was.
    pub fn freeze(&self, frozen: bool) {
        self.frozen.send_replace(frozen);
    }

    /// Stops the server: when this returns, the listener and every connection are closed.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Shut down from a thread of its own, which may block where a test's async
            // context may not, so that every socket is closed when this returns wherever it
            // is called from.
            std::thread::scope(|scope| {
                scope.spawn(move || runtime.shutdown_timeout(Duration::from_secs(2)));
            });
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}
