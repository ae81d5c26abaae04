//! The single writer: the one task that changes the configuration in force, whatever asks for
//! it — a reload of the files or an RFC 2136 update. Taking them one at a time keeps the order,
//! the journal and the serials consistent.
//!
//! Applying a configuration (probe new members first, then swap the snapshot) belongs to the
//! daemon, which knows the probers: the writer asks for it through [`Apply`].

use std::future::Future;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::Name;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use prometheus_client::metrics::gauge::Gauge;

use super::journal::{self, Entry, Journal};
use super::{KeyRing, plan};
use crate::config::{Config, TsigKey, ZoneConfig};
use crate::zone::Snapshot;

/// What the daemon does to put a configuration in force: new members get their first probe,
/// removed members' probers stop, and the new snapshot replaces the old one whole.
pub trait Apply: Send {
    fn apply(&mut self, next: &Config) -> impl Future<Output = ()> + Send;
    /// Members probed now, for logs.
    fn members(&self) -> usize;
}

/// A verified update on its way to the writer.
#[derive(Debug)]
pub struct UpdateRequest {
    pub message: Message,
    /// The key that signed it.
    pub key: TsigKey,
    /// Where the writer sends the response code.
    pub reply: oneshot::Sender<ResponseCode>,
}

/// Configuration files loaded again, to be put in force.
#[derive(Debug)]
pub struct Reload {
    /// The files as loaded: the base that the journal overlays.
    pub base: Config,
    /// Told once the configuration is in force.
    pub done: oneshot::Sender<Reloaded>,
}

/// What a reload put in force, for its log line.
#[derive(Debug, Clone, Copy)]
pub struct Reloaded {
    pub zones: usize,
    pub members: usize,
}

/// The writer's state: the configuration in force, the files it came from, and the journal.
pub struct Writer<A> {
    applier: A,
    config: Config,
    base: Config,
    journal: Journal,
    /// The snapshot in force: updates are planned against the zone as served.
    snapshot: Arc<ArcSwap<Snapshot>>,
    /// The keys the listeners verify with; they follow the configuration in force.
    keys: KeyRing,
    /// 1 while the journal is damaged (updates refused until it is repaired), for alerting.
    journal_damaged: Gauge,
}

impl<A: Apply> Writer<A> {
    /// A writer for `config` (already in force, from `base` and `journal`).
    pub fn new(
        applier: A,
        config: Config,
        base: Config,
        journal: Journal,
        snapshot: Arc<ArcSwap<Snapshot>>,
        keys: KeyRing,
        journal_damaged: Gauge,
    ) -> Self {
        journal_damaged.set(i64::from(journal.damage.is_some()));
        Self {
            applier,
            config,
            base,
            journal,
            snapshot,
            keys,
            journal_damaged,
        }
    }

    /// Takes reloads and updates, one at a time, until `shutdown`.
    pub async fn run(
        mut self,
        mut updates: mpsc::Receiver<UpdateRequest>,
        mut reloads: mpsc::Receiver<Reload>,
        shutdown: CancellationToken,
    ) {
        loop {
            tokio::select! {
                Some(reload) = reloads.recv() => {
                    let reloaded = self.reload(reload.base).await;
                    let _ = reload.done.send(reloaded);
                }
                Some(request) = updates.recv() => {
                    let code = self.update(&request).await;
                    let _ = request.reply.send(code);
                }
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// Puts the reloaded files, with the journal laid over them, in force. Changes to
    /// `[server]` that need new sockets wait for a restart.
    async fn reload(&mut self, base: Config) -> Reloaded {
        let (mut next, journal) = journal::load_overlaid(&base);
        let mut comparable = next.server.clone();
        comparable.tsig_keys = self.config.server.tsig_keys.clone();
        if comparable != self.config.server {
            warn!(
                "changes to [server] (listen, http, timeouts, state_dir) take effect at the next restart"
            );
            next.server.listen = self.config.server.listen.clone();
            next.server.http = self.config.server.http;
        }
        self.base = base;
        self.journal_damaged
            .set(i64::from(journal.damage.is_some()));
        self.journal = journal;
        self.apply(next).await;
        Reloaded {
            zones: self.config.zones.len(),
            members: self.applier.members(),
        }
    }

    /// Makes `next` the configuration in force: the one way state changes, for reloads and
    /// dynamic updates alike.
    async fn apply(&mut self, mut next: Config) {
        keep_serials_increasing(&self.config.zones, &mut next.zones);
        self.applier.apply(&next).await;
        self.keys.replace(next.server.tsig_keys.clone());
        self.config = next;
    }

    /// Handles one authenticated RFC 2136 update: checks it, journals it durably, applies it.
    /// The response code is what the client is told; NOERROR only once the change is on disk.
    async fn update(&mut self, request: &UpdateRequest) -> ResponseCode {
        let key = &request.key.name;
        let zone_name = match plan::zone_name(&request.message) {
            Ok(name) => name,
            Err(code) => return code,
        };
        let snapshot = self.snapshot.load_full();
        let Some(zone) = snapshot
            .zones()
            .iter()
            .find(|zone| Name::from(&zone.origin) == zone_name)
        else {
            info!(zone = %zone_name, %key, "update refused: not a zone served here");
            return ResponseCode::NotAuth;
        };
        let allowed = zone
            .config
            .update
            .as_ref()
            .is_some_and(|policy| policy.keys.contains(key));
        if !allowed {
            info!(zone = %zone_name, %key, "update refused: the zone does not take updates signed with this key");
            return ResponseCode::Refused;
        }
        if let Some(damage) = &self.journal.damage {
            error!(zone = %zone_name, %damage, "update refused: the journal is damaged; repair it and reload");
            return ResponseCode::ServFail;
        }
        let changes = match plan::plan(&request.message, zone) {
            Ok(changes) => changes,
            Err(code) => {
                info!(zone = %zone_name, %key, rcode = %code, "update not applied");
                return code;
            }
        };
        if changes.is_empty() {
            info!(zone = %zone_name, %key, "update changes nothing");
            return ResponseCode::NoError;
        }
        let Some(next) = self.journal_changes(&zone_name, &changes) else {
            return ResponseCode::ServFail;
        };
        for change in &changes {
            info!(zone = %zone_name, %key, pool = %change.pool, member = %change.address, operation = ?change.operation, "update journaled");
        }
        self.apply(next).await;
        info!(
            zone = %zone_name,
            serial = self.config.zones.iter().find(|z| z.origin == zone_name).map_or(0, |z| z.soa.serial),
            members = self.applier.members(),
            "update applied"
        );
        ResponseCode::NoError
    }

    /// Writes `changes` to the journal, durably, and returns the configuration they make;
    /// `None` (logged) when they cannot be journaled.
    fn journal_changes(&mut self, zone_name: &Name, changes: &[plan::Change]) -> Option<Config> {
        let path = self.journal.path.clone()?;
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |age| age.as_secs());
        let mut entries = self.journal.entries.clone();
        for change in changes {
            let file_listed = journal::find_pool(&self.base, &change.pool).is_some_and(|pool| {
                pool.members()
                    .iter()
                    .any(|m| m.address.ip() == change.address)
            });
            entries.push(Entry {
                operation: change.operation,
                pool: change.pool.clone(),
                address: change.address,
                file_listed,
                at,
            });
        }
        let (next, kept, superseded) = journal::overlay(&self.base, &entries);
        if !superseded.is_empty() || kept.len() != entries.len() {
            error!(zone = %zone_name, ?superseded, "update not applied: it does not apply to the zone files");
            return None;
        }
        if let Err(error) = journal::write(&path, &kept) {
            error!(journal = %path.display(), %error, "update not applied: cannot write the journal");
            return None;
        }
        self.journal.entries = kept;
        Some(next)
    }
}

/// Every zone whose content changed gets a serial above its previous one, whatever its file
/// says (a derived serial can repeat within a second, and a hand-set one can be forgotten);
/// an unchanged zone keeps its serial.
fn keep_serials_increasing(previous: &[ZoneConfig], next: &mut [ZoneConfig]) {
    for zone in next.iter_mut() {
        let Some(old) = previous.iter().find(|old| old.origin == zone.origin) else {
            continue;
        };
        let mut comparable = zone.clone();
        comparable.soa.serial = old.soa.serial;
        comparable.file = old.file.clone();
        if comparable == *old {
            zone.soa.serial = old.soa.serial;
        } else if !serial_greater(zone.soa.serial, old.soa.serial) {
            zone.soa.serial = old.soa.serial.wrapping_add(1);
        }
    }
}

/// Serial number arithmetic (RFC 1982): `a` is newer than `b`.
fn serial_greater(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < (1 << 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_arithmetic_wraps() {
        assert!(serial_greater(2, 1));
        assert!(!serial_greater(1, 1));
        assert!(!serial_greater(1, 2));
        assert!(serial_greater(0, u32::MAX));
    }
}
