//! The running daemon: configuration, probers, snapshot, listeners and reloads wired together.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::config::{Config, CopyError, DiscoveryVerdict};
use crate::discover::{Discovery, Propose, WatchStatus};
use crate::dns::cookie::CookieSecrets;
use crate::health::{Probers, publish_changes};
use crate::http::{self, HttpState};
use crate::metrics::Metrics;
use crate::reload::{Reloader, listen_for_hangup};
use crate::server::{Answerer, BindError, DnsServer, QueryLog};
use crate::transfer::secondary::{Deliver, Secondaries, SecondaryDoor, SecondaryStatus};
use crate::transfer::{History, Notifier, NotifyCounters};
use crate::update::{Apply, Discovered, Transferred, UpdateDoor, Writer, journal};
use crate::zone::Snapshot;

/// Reloads waiting for the writer; the reload loop sends one at a time.
const RELOAD_QUEUE: usize = 1;
/// Discovered memberships waiting for the writer; each watcher sends one at a time.
const DISCOVERED_QUEUE: usize = 8;
/// Secondary zones' copies waiting for the writer; each refresh loop sends one at a time.
const TRANSFERRED_QUEUE: usize = 8;

/// Settings of `apidns serve` that come from the command line rather than the files.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Log one query in this many (1: every query, 0: none).
    pub query_log_every: u64,
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Dns(#[from] BindError),
    #[error(transparent)]
    Privileges(#[from] crate::server::PrivilegeError),
    #[error("cannot listen on {address} for HTTP: {source}")]
    Http {
        address: SocketAddr,
        source: std::io::Error,
    },
}

/// Serves `config` (loaded from `path`) until `shutdown` is cancelled.
///
/// The first probe round finishes before the DNS sockets open, so that the first answer already
/// leaves out the members that are down (PowerDNS answers as if all were down until its lazy
/// checks have run; that is the behaviour avoided here). The HTTP endpoint opens first, so that
/// The configured cookie secrets, or a random one for this run when none is configured (the
/// cookies it makes then last until a restart: clients just get new ones).
fn cookie_secrets(server: &crate::config::ServerSettings) -> CookieSecrets {
    CookieSecrets {
        current: server.cookie_secret.unwrap_or_else(rand::random),
        previous: server.cookie_secret_previous,
    }
}

/// `/healthz` answers and `/readyz` says "not yet" meanwhile.
pub async fn serve(
    path: PathBuf,
    config: Config,
    options: ServeOptions,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let hangup = listen_for_hangup();
    // The files are the base; accepted dynamic updates are laid over them.
    let base = config;
    let (mut config, journal) = journal::load_overlaid(&base);
    // The members the cluster proposed last, kept in state_dir: served from the start, so
    // that a restart while the cluster is unreachable keeps them.
    let discovered = crate::discover::state::load(&config);
    discovered.lay_over(&mut config);
    let watch_status = WatchStatus::default();
    // Transferred zones keep the serials secondaries already hold (see `History`).
    let history = Arc::new(History::load(config.server.state_dir.as_deref()));
    history.continue_serials(&mut config.zones);
    // Secondary zones' last copies, kept in state_dir: served from the start, before the
    // primary answers (after the serials above: a copy keeps its primary's serial).
    let copies = crate::transfer::secondary::kept_copies(&config);
    copies.lay_over(&mut config);
    let secondary_status = SecondaryStatus::default();
    let secondary_door = SecondaryDoor::default();
    let (door, update_requests, keys) = UpdateDoor::new(config.server.tsig_keys.clone());
    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));
    let mut probers = Probers::new(shutdown.child_token(), metrics.clone());
    probers.sync(&config);
    let changes = probers.subscribe();

    // Until the first round is done the snapshot answers as if every member were pending.
    let snapshot = Snapshot::build(&config, |pool, member| probers.status(&pool.name, member));
    let snapshot = Arc::new(ArcSwap::from_pointee(snapshot));

    let mut tasks = tokio::task::JoinSet::new();
    if let Some(address) = config.server.http {
        let state = HttpState {
            snapshot: snapshot.clone(),
            metrics: metrics.clone(),
            ready: ready.clone(),
            admin_token: config.server.admin_token.clone(),
            changes: probers.announcer(),
            discovery: watch_status.clone(),
            secondaries: secondary_status.clone(),
        };
        let listener = open_http(address).await?;
        tasks.spawn(http::serve(listener, Arc::new(state), shutdown.clone()));
    }

    probers
        .first_round(longest_timeout(&config) + Duration::from_millis(500))
        .await;
    snapshot.load().refresh_live_sets();
    tasks.spawn(publish_changes(
        snapshot.clone(),
        changes,
        metrics.clone(),
        shutdown.clone(),
    ));

    let answerer = answerer(
        &config,
        snapshot.clone(),
        door,
        history.clone(),
        secondary_door.clone(),
        metrics.clone(),
        &options,
    );
    let server = DnsServer::start(&config.server, answerer, shutdown.clone())?;
    crate::server::drop_privileges(config.server.user.as_deref())?;
    log_ready(&server, &snapshot.load());
    let zones = config.zones.len();
    let members = probers.len();
    let journal_damaged = metrics.journal_damaged.clone();
    let discover_metrics = metrics.discover.clone();
    let secondary_metrics = metrics.secondary.clone();
    tasks.spawn(
        notifier(&snapshot, &history, &keys, &metrics).run(probers.subscribe(), shutdown.clone()),
    );
    let (reloads, reload_requests) = tokio::sync::mpsc::channel(RELOAD_QUEUE);
    let reloader = Reloader::new(
        path,
        config.server.zones_dir.clone(),
        config.data_files(),
        metrics,
        hangup,
        reloads,
    );
    let (discovered_sender, discovered_requests) = tokio::sync::mpsc::channel(DISCOVERED_QUEUE);
    // Started once the first probe round has said which members are up to connect through.
    let mut discovery = Discovery::new(
        ToWriter(discovered_sender),
        snapshot.clone(),
        watch_status,
        discover_metrics,
        config.server.state_dir.clone(),
        shutdown.child_token(),
    );
    discovery.sync(&config);
    let (transferred_sender, transferred_requests) = tokio::sync::mpsc::channel(TRANSFERRED_QUEUE);
    let mut secondaries = Secondaries::new(
        CopyToWriter(transferred_sender),
        secondary_status,
        secondary_metrics,
        config.server.state_dir.clone(),
        secondary_door,
        shutdown.child_token(),
    );
    secondaries.sync(&config);
    let switchover = Switchover {
        probers,
        snapshot: snapshot.clone(),
        discovery,
        secondaries,
    };
    let writer = Writer::new(
        switchover,
        config,
        base,
        journal,
        snapshot,
        keys,
        journal_damaged,
    )
    .with_discovery(discovered, discovered_requests)
    .with_transfers(copies, transferred_requests);
    tasks.spawn(writer.run(update_requests, reload_requests, shutdown.clone()));
    tasks.spawn(reloader.run(shutdown.clone()));
    ready.store(true, Ordering::Release);
    info!(zones, members, "serving");

    server.wait().await;
    join_all(tasks).await;
    info!("stopped");
    Ok(())
}

/// Waits for the background tasks to end after shutdown, logging any that failed.
async fn join_all(mut tasks: tokio::task::JoinSet<()>) {
    while let Some(joined) = tasks.join_next().await {
        if let Err(error) = joined {
            error!(%error, "a background task failed");
        }
    }
}

/// What every DNS listener shares: the snapshot, the way to the update writer, the transfer
/// history, the metrics, the query log, and what the server adds to answers (NSID, cookies).
fn answerer(
    config: &Config,
    snapshot: Arc<ArcSwap<Snapshot>>,
    updates: UpdateDoor,
    transfer_history: Arc<History>,
    secondaries: SecondaryDoor,
    metrics: Arc<Metrics>,
    options: &ServeOptions,
) -> Answerer {
    Answerer {
        snapshot,
        updates,
        metrics,
        max_udp_payload: config.server.max_udp_payload,
        query_log: Arc::new(QueryLog::new(options.query_log_every)),
        nsid: config.server.nsid.as_deref().map(Arc::from),
        cookies: Arc::new(cookie_secrets(&config.server)),
        transfer_history,
        secondaries,
        require_server_cookie: config.server.require_server_cookie,
    }
}

/// The task that records each new serial in the transfer history and sends NOTIFY for it: it
/// reads the snapshot and the keys in force, and looks at the serials after every announced
/// change (a new snapshot is announced like a health change).
fn notifier(
    snapshot: &Arc<ArcSwap<Snapshot>>,
    history: &Arc<History>,
    keys: &crate::update::KeyRing,
    metrics: &Metrics,
) -> Notifier {
    let keys = keys.clone();
    let counters = NotifyCounters {
        acknowledged: metrics.notify_result("acknowledged"),
        retried: metrics.notify_result("retried"),
        failed: metrics.notify_result("failed"),
    };
    Notifier::new(
        snapshot.clone(),
        history.clone(),
        move || keys.load(),
        counters,
    )
}

/// Binds the HTTP endpoint (metrics, health, status, admin).
async fn open_http(address: SocketAddr) -> Result<tokio::net::TcpListener, StartError> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| StartError::Http { address, source })?;
    let bound = listener.local_addr().unwrap_or(address);
    info!(address = %bound, "http endpoint on /metrics /healthz /readyz /status");
    Ok(listener)
}

/// Says where DNS is served and what each pool answers, once the first probe round is done.
fn log_ready(server: &DnsServer, snapshot: &Snapshot) {
    for address in &server.addresses {
        info!(%address, "listening on udp and tcp");
    }
    for pool in snapshot.pools() {
        let live = pool.live();
        info!(pool = %pool.config.name, up = live.up, members = pool.members.len(), state = ?live.state, "pool ready");
    }
}

/// How the writer puts a configuration in force here (see [`Apply`]): the probers follow it
/// first, and only then is the snapshot swapped.
struct Switchover {
    probers: Probers,
    snapshot: Arc<ArcSwap<Snapshot>>,
    /// The cluster watches follow the configuration in force (kept when unchanged).
    discovery: Discovery<ToWriter>,
    /// So do the secondary zones' refresh loops.
    secondaries: Secondaries<CopyToWriter>,
}

impl Apply for Switchover {
    /// New members get their first probe before they are served, removed members' probers
    /// stop, and queries see the old snapshot or the new one, never a mix.
    async fn apply(&mut self, next: &Config) {
        self.probers.sync(next);
        self.probers
            .first_round(longest_timeout(next) + Duration::from_millis(500))
            .await;
        let snapshot =
            Snapshot::build(next, |pool, member| self.probers.status(&pool.name, member));
        self.snapshot.store(Arc::new(snapshot));
        // A member that changed state while the snapshot was built is caught up here.
        self.snapshot.load().refresh_live_sets();
        self.probers
            .announcer()
            .send_modify(|generation| *generation += 1);
        self.discovery.sync(next);
        self.secondaries.sync(next);
    }

    fn members(&self) -> usize {
        self.probers.len()
    }
}

/// How a cluster watch reaches the single writer (see [`Propose`]).
struct ToWriter(tokio::sync::mpsc::Sender<Discovered>);

impl Propose for ToWriter {
    async fn propose(
        &self,
        pool: hickory_proto::rr::Name,
        addresses: std::collections::BTreeSet<std::net::IpAddr>,
    ) -> DiscoveryVerdict {
        let (reply, verdict) = tokio::sync::oneshot::channel();
        let request = Discovered {
            pool,
            addresses,
            reply,
        };
        if self.0.send(request).await.is_err() {
            // The writer has stopped: the daemon is shutting down.
            return DiscoveryVerdict::NotDiscovering;
        }
        verdict.await.unwrap_or(DiscoveryVerdict::NotDiscovering)
    }
}

/// How a secondary zone's refresh loop reaches the single writer (see [`Deliver`]).
struct CopyToWriter(tokio::sync::mpsc::Sender<Transferred>);

impl Deliver for CopyToWriter {
    async fn deliver(
        &self,
        origin: hickory_proto::rr::Name,
        copy: Option<crate::transfer::incoming::ZoneCopy>,
    ) -> Result<(), CopyError> {
        let (reply, verdict) = tokio::sync::oneshot::channel();
        let request = Transferred {
            origin,
            copy: copy.map(crate::transfer::secondary::transferred),
            reply,
        };
        let stopped = || CopyError::new("the writer has stopped (shutting down)");
        if self.0.send(request).await.is_err() {
            return Err(stopped());
        }
        verdict.await.unwrap_or_else(|_| Err(stopped()))
    }
}

/// The longest probe timeout of any pool: the bound on a first probe round.
fn longest_timeout(config: &Config) -> Duration {
    config
        .zones
        .iter()
        .flat_map(|zone| &zone.pools)
        .map(|pool| pool.probe.timeout)
        .max()
        .unwrap_or_default()
}
