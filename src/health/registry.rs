//! The set of running probers, kept in step with the configuration.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::Name;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::prober;
use super::report::MemberProbe;
use crate::config::{Config, ProbeSettings};
use crate::metrics::{DownLabels, MemberLabels, Metrics};
use crate::zone::{Health, MemberStatus, Signal};

type MemberKey = (Name, SocketAddr);

struct Running {
    settings: ProbeSettings,
    status: Arc<MemberStatus>,
    stop: CancellationToken,
}

/// One prober task per (pool, member). A member that stays in the configuration keeps its
/// prober and its health; only new members start from `Pending`.
pub struct Probers {
    running: HashMap<MemberKey, Running>,
    tasks: JoinSet<()>,
    changes: watch::Sender<u64>,
    shutdown: CancellationToken,
    metrics: Arc<Metrics>,
}

impl Probers {
    /// Probers stop when `shutdown` is cancelled.
    pub fn new(shutdown: CancellationToken, metrics: Arc<Metrics>) -> Self {
        Self {
            running: HashMap::new(),
            tasks: JoinSet::new(),
            changes: watch::Sender::new(0),
            shutdown,
            metrics,
        }
    }

    /// A sender for changes made outside the probers (a reload, a drain), so that the publisher
    /// refreshes live sets and gauges.
    pub fn announcer(&self) -> watch::Sender<u64> {
        self.changes.clone()
    }

    /// A receiver that sees a new value after every change of any member's health.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Starts probers for new members, stops those of removed members, and restarts (keeping
    /// the health) those whose probe settings changed.
    pub fn sync(&mut self, config: &Config) {
        let mut previous: HashMap<MemberKey, Arc<MemberStatus>> = HashMap::new();
        let mut wanted: HashMap<MemberKey, ProbeSettings> = HashMap::new();
        for pool in config.zones.iter().flat_map(|zone| &zone.pools) {
            for member in pool.members().iter().map(|m| m.address) {
                wanted.insert((pool.name.clone(), member), pool.probe.clone());
            }
        }
        self.running.retain(|key, running| {
            let keep = wanted.get(key) == Some(&running.settings);
            if !keep {
                previous.insert(key.clone(), running.status.clone());
                running.stop.cancel();
                if !wanted.contains_key(key) {
                    forget_member(&self.metrics, key);
                }
            }
            keep
        });
        for (key, settings) in wanted {
            if self.running.contains_key(&key) {
                continue;
            }
            // A member whose probe settings changed keeps its health and drain state.
            let status = previous
                .remove(&key)
                .unwrap_or_else(|| Arc::new(MemberStatus::new(Health::Pending)));
            self.start(key, settings, status);
        }
        while self.tasks.try_join_next().is_some() {}
    }

    fn start(&mut self, key: MemberKey, settings: ProbeSettings, status: Arc<MemberStatus>) {
        let stop = self.shutdown.child_token();
        let probe = MemberProbe {
            pool: key.0.clone(),
            target: key.1,
            settings: settings.clone(),
            status: status.clone(),
            metrics: self.metrics.clone(),
        };
        self.tasks
            .spawn(prober::run(probe, self.changes.clone(), stop.clone()));
        self.running.insert(
            key,
            Running {
                settings,
                status,
                stop,
            },
        );
    }

    /// The health cell of a member; a fresh `Pending` one for a member without a prober.
    pub fn status(&self, pool: &Name, member: SocketAddr) -> Arc<MemberStatus> {
        self.running
            .get(&(pool.clone(), member))
            .map(|running| running.status.clone())
            .unwrap_or_else(|| Arc::new(MemberStatus::new(Health::Pending)))
    }

    /// Waits until every member has a first result, or until `limit` has passed.
    pub async fn first_round(&self, limit: Duration) {
        let mut changes = self.subscribe();
        let pending = || {
            self.running
                .values()
                .any(|running| running.status.health() == Health::Pending)
        };
        let _ = tokio::time::timeout(limit, async {
            while pending() {
                if changes.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
    }

    pub fn len(&self) -> usize {
        self.running.len()
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }
}

/// Drops a removed member's series, so that /metrics does not list it for ever.
fn forget_member(metrics: &Metrics, (pool, member): &MemberKey) {
    let (pool, member) = (pool.to_string(), member.to_string());
    for signal in Signal::ALL {
        metrics.member_down.remove(&DownLabels {
            pool: pool.clone(),
            member: member.clone(),
            signal,
        });
    }
    metrics.member_up.remove(&MemberLabels { pool, member });
}
