//! Turns changes of member health into new live sets.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::rr::Name;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::metrics::{Metrics, PoolLabels};
use crate::zone::{LiveState, Snapshot};

/// Rebuilds live sets whenever `changes` moves, until `shutdown`. Changes that arrive while a
/// rebuild runs are folded into the next one, so a burst of failures costs one rebuild.
pub async fn publish_changes(
    snapshot: Arc<ArcSwap<Snapshot>>,
    mut changes: watch::Receiver<u64>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut last_state: HashMap<Name, LiveState> = HashMap::new();
    for pool in snapshot.load().pools() {
        export(&metrics, pool);
    }
    loop {
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            () = shutdown.cancelled() => return,
        }
        let current = snapshot.load();
        for pool in current.pools() {
            let changed = pool.refresh();
            export(&metrics, pool);
            if !changed {
                continue;
            }
            let live = pool.live();
            let name = &pool.config.name;
            let members = pool.members.len();
            let previous = last_state.insert(name.clone(), live.state);
            match live.state {
                LiveState::Healthy => {
                    info!(pool = %name, up = live.up, members, "pool answers the members that are up")
                }
                LiveState::AllAnswered if previous != Some(LiveState::AllAnswered) => warn!(
                    pool = %name, up = live.up, members, min_up = pool.config.min_up(),
                    "too few members up: answering with every member (all_down = \"all\")"
                ),
                LiveState::NoneAnswered if previous != Some(LiveState::NoneAnswered) => warn!(
                    pool = %name, up = live.up, members, min_up = pool.config.min_up(),
                    "too few members up: answering NODATA (all_down = \"none\")"
                ),
                _ => {}
            }
        }
    }
}

fn export(metrics: &Metrics, pool: &crate::zone::Pool) {
    let live = pool.live();
    let labels = PoolLabels {
        pool: pool.config.name.to_string(),
    };
    metrics
        .pool_members_up
        .get_or_create(&labels)
        .set(live.up as i64);
    metrics
        .pool_fallback
        .get_or_create(&labels)
        .set(i64::from(live.state != LiveState::Healthy));
}
