//! Membership from the cluster: each pool with `discover` watches the `default/kubernetes`
//! EndpointSlice (every live kube-apiserver's advertise address, kept there by the lease
//! reconciler) through the pool's own live members, and proposes the addresses inside `allow`
//! to the single writer. The slice proposes; probes decide who is answered.
//!
//! - `slice.rs`: the addresses a set of EndpointSlices proposes (pure);
//! - `connect.rs`: a kube client that reaches the cluster through one member, by address;
//! - `watch.rs`: one pool's watch loop: the kube-rs runtime watcher, member after member;
//! - `state.rs`: the last applied set, kept in `state_dir` across restarts;
//! - `status.rs`: the watch's state for /status, and its metrics.
//!
//! This layer sits beside `update`: it never imports it. The daemon hands it a [`Propose`]
//! that carries a proposal to the writer.
//!
//! The watch (`connect.rs`, `watch.rs`: kube-rs's client and runtime) is behind the default
//! cargo feature `discover`; the fuzz crate builds without it, and [`start`] is the one place
//! that differs. Without it the parts only the watch uses are unused, hence the `allow`.
#![cfg_attr(not(feature = "discover"), allow(dead_code))]

#[cfg(feature = "discover")]
mod connect;
pub mod slice;
pub mod state;
mod status;
#[cfg(feature = "discover")]
mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::rr::Name;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Discover, DiscoveryVerdict};
use crate::zone::Snapshot;

pub use slice::ready_addresses;
pub use status::{DiscoverMetrics, PoolLabel, RefusedLabels, WatchState, WatchStatus};

/// The way from a watcher to the single writer: the daemon implements it.
pub trait Propose: Send + Sync + 'static {
    /// Proposes `addresses` (inside `allow`, never empty) as the pool's discovered members,
    /// and waits for the writer's verdict.
    fn propose(
        &self,
        pool: Name,
        addresses: BTreeSet<IpAddr>,
    ) -> impl Future<Output = DiscoveryVerdict> + Send;
}

/// What every watcher shares.
struct Shared<P> {
    proposer: P,
    snapshot: Arc<ArcSwap<Snapshot>>,
    status: WatchStatus,
    metrics: DiscoverMetrics,
    state_dir: Option<PathBuf>,
}

/// One running watch: its settings (a reload with the same ones keeps it) and its lifetime.
struct Running {
    settings: Discover,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// The watchers of every discovering pool, kept in step with the configuration in force.
pub struct Discovery<P> {
    shared: Arc<Shared<P>>,
    running: BTreeMap<Name, Running>,
    shutdown: CancellationToken,
}

impl<P: Propose> Discovery<P> {
    pub fn new(
        proposer: P,
        snapshot: Arc<ArcSwap<Snapshot>>,
        status: WatchStatus,
        metrics: DiscoverMetrics,
        state_dir: Option<PathBuf>,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                proposer,
                snapshot,
                status,
                metrics,
                state_dir,
            }),
            running: BTreeMap::new(),
            shutdown,
        }
    }

    /// Starts a watch for each pool that discovers and has none with the same settings, and
    /// stops the watches of pools that no longer discover (or whose settings changed).
    pub fn sync(&mut self, config: &Config) {
        let wanted: BTreeMap<Name, Discover> = config
            .zones
            .iter()
            .flat_map(|zone| &zone.pools)
            .filter_map(|pool| pool.discover.clone().map(|d| (pool.name.clone(), d)))
            .collect();
        self.running.retain(|pool, running| {
            let keep = wanted.get(pool) == Some(&running.settings) && !running.task.is_finished();
            if !keep {
                running.stop.cancel();
                self.shared.status.forget(pool);
            }
            keep
        });
        for (pool, settings) in wanted {
            if self.running.contains_key(&pool) {
                continue;
            }
            let stop = self.shutdown.child_token();
            let task = start(
                self.shared.clone(),
                pool.clone(),
                settings.clone(),
                stop.clone(),
            );
            self.running.insert(
                pool,
                Running {
                    settings,
                    stop,
                    task,
                },
            );
        }
    }
}

/// Starts `pool`'s watch until `stop`.
#[cfg(feature = "discover")]
fn start<P: Propose>(
    shared: Arc<Shared<P>>,
    pool: Name,
    settings: Discover,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(watch::run(shared, pool, settings, stop))
}

/// A build without the `discover` feature has no watch: the pool keeps its configured members,
/// and the log and /status say why. The task waits for `stop`, so that the error is given once
/// per configuration, not at every sync.
#[cfg(not(feature = "discover"))]
fn start<P: Propose>(
    shared: Arc<Shared<P>>,
    pool: Name,
    _settings: Discover,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    const WHY: &str = "this apidns was built without the cargo feature `discover` (cluster discovery): the pool keeps its configured members";
    tracing::error!(%pool, "{WHY}");
    shared.status.update(&pool, |state| {
        state.last_error = Some((std::time::SystemTime::now(), WHY.to_string()));
    });
    tokio::spawn(async move { stop.cancelled().await })
}

impl<P> Drop for Discovery<P> {
    fn drop(&mut self) {
        for running in self.running.values() {
            running.stop.cancel();
        }
    }
}
