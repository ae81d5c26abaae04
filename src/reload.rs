//! Configuration reloads: on SIGHUP and when a configuration file changes, load everything,
//! and either swap the new snapshot in whole or keep the old one serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::Name;

use crate::config::{self, Config, ZoneConfig};
use crate::health::Probers;
use crate::metrics::{Metrics, ResultLabels};
use crate::update::journal::{self, Entry, Journal};
use crate::update::{UpdateDoor, UpdateRequest};
use crate::zone::Snapshot;

/// Editors write a file in several steps (truncate, write, rename): wait this long after the
/// last change before reading, so that a half-written file is not even tried.
const DEBOUNCE: Duration = Duration::from_millis(250);

/// The daemon's mutable side: the configuration in force and the probers that follow it.
pub struct Reloader {
    path: PathBuf,
    config: Config,
    probers: Probers,
    snapshot: Arc<ArcSwap<Snapshot>>,
    metrics: Arc<Metrics>,
    /// SIGHUP, installed before the daemon says it is serving: the default action of SIGHUP
    /// is to terminate, so a signal that came before the handler would kill the daemon.
    hangup: Option<tokio::signal::unix::Signal>,
    /// Kept alive for as long as changes should trigger reloads.
    watcher: Option<notify::RecommendedWatcher>,
    file_events: mpsc::UnboundedSender<()>,
    file_changes: mpsc::UnboundedReceiver<()>,
    updates: Updates,
}

/// The dynamic-update side of the daemon's state: the files as loaded (the base that the
/// journal overlays), the journal, and the writer's end of the update door.
pub struct Updates {
    pub base: Config,
    pub journal: Journal,
    pub door: UpdateDoor,
    pub requests: mpsc::Receiver<UpdateRequest>,
}

/// The configuration in force: `base` (the files) with the journal in `state_dir` laid over it.
/// A damaged journal and superseded entries are logged; the returned journal holds the entries
/// still in force (and the damage, if any).
pub fn overlay_journal(base: &Config) -> (Config, Journal) {
    let mut journal = Journal::load(base.server.state_dir.as_deref());
    if let Some(damage) = &journal.damage {
        error!(
            %damage,
            "update journal damaged: the entries before the damage are applied, updates are refused until it is repaired (fix or remove the line, then reload)"
        );
    }
    let (config, kept, superseded) = journal::overlay(base, &journal.entries);
    for message in &superseded {
        warn!(journal = ?journal.path, "{message}");
    }
    // A superseded entry is retired for good, so that a later edit of the file that happens
    // to match its `file=` again does not bring it back.
    if let (false, None, Some(path)) = (superseded.is_empty(), &journal.damage, &journal.path) {
        if let Err(error) = journal::write(path, &kept) {
            error!(journal = %path.display(), %error, "cannot rewrite the journal without its superseded entries");
        }
    }
    journal.entries = kept;
    (config, journal)
}

impl Reloader {
    /// Starts watching the configuration files at once, so that a change made right after
    /// start-up is not missed.
    pub fn new(
        path: PathBuf,
        config: Config,
        probers: Probers,
        snapshot: Arc<ArcSwap<Snapshot>>,
        metrics: Arc<Metrics>,
        hangup: Option<tokio::signal::unix::Signal>,
        updates: Updates,
    ) -> Self {
        let (file_events, file_changes) = mpsc::unbounded_channel();
        let watcher = watch(&path, &config.server.zones_dir, file_events.clone());
        Self {
            path,
            config,
            probers,
            snapshot,
            metrics,
            hangup,
            watcher,
            file_events,
            file_changes,
            updates,
        }
    }

    /// Reloads on SIGHUP or a file change until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut hangup = self.hangup.take();
        loop {
            let trigger = tokio::select! {
                Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => "SIGHUP",
                Some(()) = self.file_changes.recv() => {
                    // Fold a burst of events into one reload.
                    while let Ok(Some(())) =
                        tokio::time::timeout(DEBOUNCE, self.file_changes.recv()).await
                    {}
                    "file change"
                }
                Some(request) = self.updates.requests.recv() => {
                    let code = self.update(&request).await;
                    let _ = request.reply.send(code);
                    continue;
                }
                () = shutdown.cancelled() => return,
            };
            let zones_dir = self.config.server.zones_dir.clone();
            self.reload(trigger).await;
            if self.config.server.zones_dir != zones_dir {
                self.watcher = watch(
                    &self.path,
                    &self.config.server.zones_dir,
                    self.file_events.clone(),
                );
            }
        }
    }

    /// Loads the configuration again and applies it, or keeps the old one on any error.
    pub async fn reload(&mut self, trigger: &str) {
        let base = match config::load(&self.path) {
            Ok(base) => base,
            Err(error) => {
                error!(trigger, %error, "configuration not reloaded; the previous one keeps serving");
                self.count("failure");
                return;
            }
        };
        let (mut next, journal) = overlay_journal(&base);
        let mut comparable = next.server.clone();
        comparable.tsig_keys = self.config.server.tsig_keys.clone();
        if comparable != self.config.server {
            warn!(
                "changes to [server] (listen, http, timeouts, state_dir) take effect at the next restart"
            );
            next.server.listen = self.config.server.listen.clone();
            next.server.http = self.config.server.http;
        }
        self.updates.base = base;
        self.updates.journal = journal;
        self.apply(next).await;
        info!(
            trigger,
            zones = self.config.zones.len(),
            members = self.probers.len(),
            "configuration reloaded"
        );
        self.count("success");
    }

    /// Makes `next` the configuration in force: the one way state changes, for reloads and
    /// dynamic updates alike. New members get their first probe before they are served, removed
    /// members' probers stop, and queries see the old snapshot or the new one, never a mix.
    async fn apply(&mut self, mut next: Config) {
        keep_serials_increasing(&self.config.zones, &mut next.zones);

        self.probers.sync(&next);
        let longest_timeout = longest_timeout(&next);
        self.probers
            .first_round(longest_timeout + Duration::from_millis(500))
            .await;
        self.updates.door = self.updates.door.with_keys(next.server.tsig_keys.clone());
        let snapshot = Snapshot::build(&next, |pool, member| {
            self.probers.status(&pool.name, member)
        })
        .with_update_door(self.updates.door.clone());
        self.snapshot.store(Arc::new(snapshot));
        // A member that changed state while the snapshot was built is caught up here.
        self.snapshot.load().refresh_live_sets();
        self.probers
            .announcer()
            .send_modify(|generation| *generation += 1);
        self.config = next;
    }

    /// Handles one authenticated RFC 2136 update: checks it, journals it durably, applies it.
    /// The response code is what the client is told; NOERROR only once the change is on disk.
    async fn update(&mut self, request: &UpdateRequest) -> ResponseCode {
        let key = &request.key.name;
        let zone_name = match crate::update::zone_name(&request.message) {
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
        if let Some(damage) = &self.updates.journal.damage {
            error!(zone = %zone_name, %damage, "update refused: the journal is damaged; repair it and reload");
            return ResponseCode::ServFail;
        }
        let changes = match crate::update::plan(&request.message, zone) {
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
        let Some(path) = self.updates.journal.path.clone() else {
            return ResponseCode::ServFail;
        };
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |age| age.as_secs());
        let mut entries = self.updates.journal.entries.clone();
        for change in &changes {
            let file_listed =
                journal::find_pool(&self.updates.base, &change.pool).is_some_and(|pool| {
                    pool.members
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
        let (next, kept, superseded) = journal::overlay(&self.updates.base, &entries);
        if !superseded.is_empty() || kept.len() != entries.len() {
            error!(zone = %zone_name, ?superseded, "update not applied: it does not apply to the zone files");
            return ResponseCode::ServFail;
        }
        if let Err(error) = journal::write(&path, &kept) {
            error!(journal = %path.display(), %error, "update not applied: cannot write the journal");
            return ResponseCode::ServFail;
        }
        self.updates.journal.entries = kept;
        for change in &changes {
            info!(zone = %zone_name, %key, pool = %change.pool, member = %change.address, operation = ?change.operation, "update journaled");
        }
        self.apply(next).await;
        info!(
            zone = %zone_name,
            serial = self.config.zones.iter().find(|z| z.origin == zone_name).map_or(0, |z| z.soa.serial),
            members = self.probers.len(),
            "update applied"
        );
        ResponseCode::NoError
    }

    fn count(&self, result: &str) {
        self.metrics
            .reloads
            .get_or_create(&ResultLabels {
                result: result.to_string(),
            })
            .inc();
    }
}

/// Installs the SIGHUP handler; call it first thing, before anything can send the signal.
pub fn listen_for_hangup() -> Option<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(hangup) => Some(hangup),
        Err(error) => {
            warn!(%error, "cannot listen for SIGHUP; reload by file change only");
            None
        }
    }
}

/// The longest probe timeout of any pool: the bound on a first probe round.
pub fn longest_timeout(config: &Config) -> Duration {
    config
        .zones
        .iter()
        .flat_map(|zone| &zone.pools)
        .map(|pool| pool.probe.timeout)
        .max()
        .unwrap_or_default()
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

/// Watches the main file's directory and the zones directory; sends `()` on relevant changes.
/// Directories rather than files are watched, because editors replace files by renaming.
fn watch(
    main_file: &Path,
    zones_dir: &Path,
    events: mpsc::UnboundedSender<()>,
) -> Option<notify::RecommendedWatcher> {
    // Events carry absolute paths: compare them with absolute directories, whatever relative
    // path the command line gave.
    let absolute = |path: &Path| std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let main_file = main_file.to_path_buf();
    let main_name = main_file.file_name().map(ToOwned::to_owned);
    let zones = absolute(zones_dir);
    let watched_zones = zones.clone();
    let handler = move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, notify::EventKind::Access(_)) {
            return;
        }
        let relevant = event.paths.iter().any(|path| {
            path.file_name() == main_name.as_deref()
                || (path.starts_with(&zones) && path.extension().is_some_and(|ext| ext == "toml"))
        });
        if relevant {
            let _ = events.send(());
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(watcher) => watcher,
        Err(error) => {
            warn!(%error, "cannot watch configuration files; reload with SIGHUP");
            return None;
        }
    };
    let main_dir = absolute(
        main_file
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    );
    for dir in [main_dir.as_path(), watched_zones.as_path()] {
        if let Err(error) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            warn!(dir = %dir.display(), %error, "cannot watch directory; reload with SIGHUP");
        }
    }
    Some(watcher)
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
