//! Configuration reloads: on SIGHUP and when a configuration file changes, load everything,
//! and either hand it to the writer, which swaps the new snapshot in whole, or keep the old
//! one serving.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config;
use crate::metrics::{Metrics, ResultLabels};
use crate::update::Reload;

/// Editors write a file in several steps (truncate, write, rename): wait this long after the
/// last change before reading, so that a half-written file is not even tried.
const DEBOUNCE: Duration = Duration::from_millis(250);

/// The reload loop: it notices SIGHUP and file changes, loads the files, and hands a good
/// configuration to the writer (`crate::update::writer`), which puts it in force.
pub struct Reloader {
    path: PathBuf,
    zones_dir: PathBuf,
    /// Zone data files outside the TOML files (`records_file`s and their `$INCLUDE`s).
    data_files: Vec<PathBuf>,
    metrics: std::sync::Arc<Metrics>,
    /// SIGHUP, installed before the daemon says it is serving: the default action of SIGHUP
    /// is to terminate, so a signal that came before the handler would kill the daemon.
    hangup: Option<tokio::signal::unix::Signal>,
    /// Kept alive for as long as changes should trigger reloads.
    watcher: Option<notify::RecommendedWatcher>,
    file_events: mpsc::UnboundedSender<()>,
    file_changes: mpsc::UnboundedReceiver<()>,
    writer: mpsc::Sender<Reload>,
}

impl Reloader {
    /// Starts watching the configuration files at once, so that a change made right after
    /// start-up is not missed. `zones_dir` is the zones directory of the configuration in force
    /// and `data_files` its zones' data files (`Config::data_files`).
    pub fn new(
        path: PathBuf,
        zones_dir: PathBuf,
        data_files: Vec<PathBuf>,
        metrics: std::sync::Arc<Metrics>,
        hangup: Option<tokio::signal::unix::Signal>,
        writer: mpsc::Sender<Reload>,
    ) -> Self {
        let (file_events, file_changes) = mpsc::unbounded_channel();
        let watcher = watch(&path, &zones_dir, &data_files, file_events.clone());
        Self {
            path,
            zones_dir,
            data_files,
            metrics,
            hangup,
            watcher,
            file_events,
            file_changes,
            writer,
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
            self.reload(trigger).await;
        }
    }

    /// Loads the configuration again and has the writer apply it, or keeps the old one on any
    /// error.
    pub async fn reload(&mut self, trigger: &str) {
        let base = match config::load(&self.path) {
            Ok(base) => base,
            Err(error) => {
                error!(trigger, %error, "configuration not reloaded; the previous one keeps serving");
                self.count("failure");
                return;
            }
        };
        let zones_dir = base.server.zones_dir.clone();
        let data_files = base.data_files();
        let (done, reloaded) = oneshot::channel();
        if self.writer.send(Reload { base, done }).await.is_err() {
            // The writer has stopped: the daemon is shutting down.
            return;
        }
        let Ok(reloaded) = reloaded.await else {
            return;
        };
        if zones_dir != self.zones_dir || data_files != self.data_files {
            self.watcher = watch(
                &self.path,
                &zones_dir,
                &data_files,
                self.file_events.clone(),
            );
            self.zones_dir = zones_dir;
            self.data_files = data_files;
        }
        info!(
            trigger,
            zones = reloaded.zones,
            members = reloaded.members,
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

/// Watches the main file's directory, the zones directory and the directories of the zones'
/// data files; sends `()` on relevant changes. Directories rather than files are watched,
/// because editors replace files by renaming.
fn watch(
    main_file: &Path,
    zones_dir: &Path,
    data_files: &[PathBuf],
    events: mpsc::UnboundedSender<()>,
) -> Option<notify::RecommendedWatcher> {
    // Events carry absolute paths: compare them with absolute directories, whatever relative
    // path the command line gave.
    let absolute = |path: &Path| std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let main_file = main_file.to_path_buf();
    let main_name = main_file.file_name().map(ToOwned::to_owned);
    let zones = absolute(zones_dir);
    let watched_zones = zones.clone();
    let data_files: Vec<PathBuf> = data_files.iter().map(|file| absolute(file)).collect();
    let data_dirs: Vec<PathBuf> = data_files
        .iter()
        .filter_map(|file| file.parent().map(Path::to_path_buf))
        .collect();
    let watched_data = data_files.clone();
    let handler = move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, notify::EventKind::Access(_)) {
            return;
        }
        let relevant = event.paths.iter().any(|path| {
            path.file_name() == main_name.as_deref()
                || (path.starts_with(&zones) && path.extension().is_some_and(|ext| ext == "toml"))
                || watched_data.iter().any(|file| file == path)
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
    let mut dirs = vec![main_dir, watched_zones];
    for dir in data_dirs {
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    for dir in &dirs {
        if let Err(error) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            warn!(dir = %dir.display(), %error, "cannot watch directory; reload with SIGHUP");
        }
    }
    Some(watcher)
}
