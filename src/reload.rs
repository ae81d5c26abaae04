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

use crate::config::{self, Config, ZoneConfig};
use crate::health::Probers;
use crate::metrics::{Metrics, ResultLabels};
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
        let mut next = match config::load(&self.path) {
            Ok(next) => next,
            Err(error) => {
                error!(trigger, %error, "configuration not reloaded; the previous one keeps serving");
                self.count("failure");
                return;
            }
        };
        if next.server != self.config.server {
            warn!("changes to [server] (listen, http, timeouts) take effect at the next restart");
            next.server.listen = self.config.server.listen.clone();
            next.server.http = self.config.server.http;
        }
        keep_serials_increasing(&self.config.zones, &mut next.zones);

        // New members get their first probe before they are served.
        self.probers.sync(&next);
        let longest_timeout = longest_timeout(&next);
        self.probers
            .first_round(longest_timeout + Duration::from_millis(500))
            .await;
        let snapshot = Snapshot::build(&next, |pool, member| {
            self.probers.status(&pool.name, member)
        });
        self.snapshot.store(Arc::new(snapshot));
        // A member that changed state while the snapshot was built is caught up here.
        self.snapshot.load().refresh_live_sets();
        self.probers
            .announcer()
            .send_modify(|generation| *generation += 1);
        self.config = next;
        info!(
            trigger,
            zones = self.config.zones.len(),
            members = self.probers.len(),
            "configuration reloaded"
        );
        self.count("success");
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
