//! What /status and /metrics show of discovery: each pool's watch (through which member, the
//! last event, the last error, the last refused change) and counters.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use hickory_proto::rr::Name;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

/// One pool's watch, as /status shows it.
#[derive(Debug, Clone, Default)]
pub struct WatchState {
    /// The member the watch goes through now; `None` while it is looking for one.
    pub through: Option<SocketAddr>,
    /// The slice has been listed through `through` and is being watched.
    pub connected: bool,
    pub last_event: Option<SystemTime>,
    pub last_error: Option<(SystemTime, String)>,
    /// The addresses the slice proposes now (inside `allow`).
    pub proposed: Vec<IpAddr>,
    /// Addresses the slice holds that `allow` does not.
    pub outside_allow: Vec<IpAddr>,
    pub last_applied: Option<SystemTime>,
    pub last_refused: Option<(SystemTime, String)>,
}

/// Every discovering pool's watch state, shared by the watchers (writing) and /status
/// (reading). A plain mutex: neither side is on the query path.
#[derive(Debug, Clone, Default)]
pub struct WatchStatus(Arc<Mutex<BTreeMap<Name, WatchState>>>);

impl WatchStatus {
    pub fn update(&self, pool: &Name, change: impl FnOnce(&mut WatchState)) {
        let mut pools = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        change(pools.entry(pool.clone()).or_default());
    }

    pub fn get(&self, pool: &Name) -> Option<WatchState> {
        let pools = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        pools.get(pool).cloned()
    }

    pub(super) fn forget(&self, pool: &Name) {
        let mut pools = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        pools.remove(pool);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PoolLabel {
    pub pool: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RefusedLabels {
    pub pool: String,
    /// `empty` (an empty slice) or `no_member_up` (a change that would leave none up).
    pub reason: String,
}

/// Discovery's counters, registered by `crate::metrics` and recorded here.
#[derive(Debug, Clone, Default)]
pub struct DiscoverMetrics {
    /// Watch events (listed, added, modified, deleted slices).
    pub events: Family<PoolLabel, Counter>,
    /// Memberships the writer applied.
    pub applied: Family<PoolLabel, Counter>,
    /// Memberships not applied, by reason.
    pub refused: Family<RefusedLabels, Counter>,
    /// Addresses the slice proposed outside `allow`, each time it proposed them.
    pub outside_allow: Family<PoolLabel, Counter>,
    /// Failed connections, lists and watches.
    pub watch_errors: Family<PoolLabel, Counter>,
}

impl DiscoverMetrics {
    pub(super) fn pool(pool: &Name) -> PoolLabel {
        PoolLabel {
            pool: pool.to_string(),
        }
    }

    pub(super) fn refused(&self, pool: &Name, reason: &str) {
        self.refused
            .get_or_create(&RefusedLabels {
                pool: pool.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }
}
