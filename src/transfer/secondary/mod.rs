//! apidns as a secondary: each zone with `primary = {...}` takes its data from its primary by
//! zone transfer ([`crate::transfer::incoming`]) and hands each complete copy to the single
//! writer, which checks it against the zone file's rules and puts it in force (pool members
//! are probed before they are answered). This is a membership source, like `crate::discover`.
//!
//! - `refresh.rs`: one zone's loop: SOA query, IXFR/AXFR, the SOA's refresh, retry and expire;
//! - `state.rs`: the last copy put in force, kept in `state_dir/secondary/` as a master file;
//! - `notify_in.rs`: NOTIFY from the primary, which starts a refresh at once, and which
//!   secondary zone an UPDATE is for;
//! - `forward.rs`: an UPDATE for a secondary zone, forwarded to its primary (RFC 2136 §6);
//! - `status.rs`: each zone's state for /status, and the metrics.
//!
//! This layer sits beside `update`: it never imports it. The daemon hands it a [`Deliver`]
//! that carries a copy to the writer.

pub mod forward;
mod notify_in;
mod refresh;
pub mod state;
mod status;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use hickory_proto::rr::Name;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{
    Config, CopyError, PrimarySource, TransferredCopies, TransferredCopy, TsigKey,
};
use crate::transfer::incoming::ZoneCopy;

pub use notify_in::SecondaryDoor;
pub use status::{
    Freshness, SecondaryMetrics, SecondaryStatus, TransferLabels, ZoneLabel, ZoneRefresh,
};

/// The way from a refresh loop to the single writer: the daemon implements it.
pub trait Deliver: Send + Sync + 'static {
    /// Puts `copy` in force for the secondary zone `origin` (`None`: withdraws the copy in
    /// force, past its expire), and waits for the writer's verdict.
    fn deliver(
        &self,
        origin: Name,
        copy: Option<ZoneCopy>,
    ) -> impl Future<Output = Result<(), CopyError>> + Send;
}

/// What every refresh loop shares.
struct Shared<D> {
    deliver: D,
    status: SecondaryStatus,
    metrics: SecondaryMetrics,
    state_dir: Option<PathBuf>,
}

/// One running loop: its settings (a reload with the same ones keeps it) and its lifetime.
struct Running {
    settings: (PrimarySource, Option<TsigKey>),
    wake: Arc<Notify>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// The refresh loops of every secondary zone, kept in step with the configuration in force.
pub struct Secondaries<D> {
    shared: Arc<Shared<D>>,
    running: BTreeMap<Name, Running>,
    door: SecondaryDoor,
    shutdown: CancellationToken,
}

impl<D: Deliver> Secondaries<D> {
    pub fn new(
        deliver: D,
        status: SecondaryStatus,
        metrics: SecondaryMetrics,
        state_dir: Option<PathBuf>,
        door: SecondaryDoor,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                deliver,
                status,
                metrics,
                state_dir,
            }),
            running: BTreeMap::new(),
            door,
            shutdown,
        }
    }

    /// Starts a loop for each secondary zone that has none with the same primary and key, and
    /// stops the loops of zones that are no longer secondaries (or whose primary changed).
    pub fn sync(&mut self, config: &Config) {
        let wanted: BTreeMap<Name, (PrimarySource, Option<TsigKey>)> = config
            .secondaries
            .iter()
            .map(|zone| {
                let key = zone.primary.key.as_ref().and_then(|name| {
                    config
                        .server
                        .tsig_keys
                        .iter()
                        .find(|key| &key.name == name)
                        .cloned()
                });
                (zone.origin.clone(), (zone.primary.clone(), key))
            })
            .collect();
        self.running.retain(|zone, running| {
            let keep = wanted.get(zone) == Some(&running.settings) && !running.task.is_finished();
            if !keep {
                running.stop.cancel();
                self.shared.status.forget(zone);
            }
            keep
        });
        for (zone, settings) in wanted {
            if self.running.contains_key(&zone) {
                continue;
            }
            tracing::info!(%zone, primary = %settings.0.address, key = ?settings.0.key.as_ref().map(ToString::to_string), "secondary zone: refresh loop started");
            let stop = self.shutdown.child_token();
            let wake = Arc::new(Notify::new());
            let task = tokio::spawn(refresh::run(
                self.shared.clone(),
                zone.clone(),
                settings.0.clone(),
                settings.1.clone(),
                wake.clone(),
                stop.clone(),
            ));
            self.running.insert(
                zone,
                Running {
                    settings,
                    wake,
                    stop,
                    task,
                },
            );
        }
        self.door.set(
            self.running
                .iter()
                .map(|(zone, running)| {
                    (
                        zone.clone(),
                        notify_in::Listener {
                            primary: running.settings.0.address,
                            key: running.settings.1.clone(),
                            wake: running.wake.clone(),
                        },
                    )
                })
                .collect::<HashMap<_, _>>(),
        );
    }
}

impl<D> Drop for Secondaries<D> {
    fn drop(&mut self) {
        for running in self.running.values() {
            running.stop.cancel();
        }
    }
}

/// The copies kept in `state_dir` for the secondary zones of `config`, to serve from the start
/// (before the primary answers). A copy past its SOA's expire is not served.
pub fn kept_copies(config: &Config) -> TransferredCopies {
    let mut copies = TransferredCopies::default();
    let Some(dir) = &config.server.state_dir else {
        return copies;
    };
    let now = SystemTime::now();
    for zone in &config.secondaries {
        let Some(kept) = state::load(dir, &zone.origin) else {
            continue;
        };
        let expire = match &kept.copy.soa.data {
            hickory_proto::rr::RData::SOA(soa) => {
                std::time::Duration::from_secs(u64::try_from(soa.expire).unwrap_or(0))
            }
            _ => std::time::Duration::ZERO,
        };
        if now.duration_since(kept.last_success).unwrap_or_default() > expire {
            tracing::warn!(zone = %zone.origin, "the kept copy is past its expire: SERVFAIL until the primary answers");
            continue;
        }
        tracing::info!(zone = %zone.origin, serial = kept.copy.serial(), "the copy kept in state_dir is served until the primary answers");
        copies.0.insert(zone.origin.clone(), transferred(kept.copy));
    }
    copies
}

/// A transfer's copy as the configuration holds it.
pub fn transferred(copy: ZoneCopy) -> TransferredCopy {
    TransferredCopy {
        soa: copy.soa,
        records: copy.records,
    }
}
