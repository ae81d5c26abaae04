//! The running daemon: configuration, probers, snapshot and listeners wired together.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::Config;
use crate::health::{Probers, publish_changes};
use crate::metrics::Metrics;
use crate::server::{Answerer, BindError, DnsServer};
use crate::zone::Snapshot;

/// Serves `config` until `shutdown` is cancelled.
///
/// The first probe round finishes before the DNS sockets open, so that the first answer already
/// leaves out the members that are down (PowerDNS answers as if all were down until its lazy
/// checks have run; that is the behaviour avoided here).
pub async fn serve(config: Config, shutdown: CancellationToken) -> Result<(), BindError> {
    let mut probers = Probers::new(shutdown.child_token());
    probers.sync(&config);
    let changes = probers.subscribe();
    let longest_timeout = config
        .zones
        .iter()
        .flat_map(|zone| &zone.pools)
        .map(|pool| pool.probe.timeout)
        .max()
        .unwrap_or_default();
    probers
        .first_round(longest_timeout + Duration::from_millis(500))
        .await;

    let snapshot = Snapshot::build(&config, |pool, member| probers.status(&pool.name, member));
    let snapshot = Arc::new(ArcSwap::from_pointee(snapshot));
    let publisher = tokio::spawn(publish_changes(snapshot.clone(), changes, shutdown.clone()));

    let answerer = Answerer {
        snapshot: snapshot.clone(),
        metrics: Arc::new(Metrics::new()),
        max_udp_payload: config.server.max_udp_payload,
    };
    let server = DnsServer::start(&config.server, answerer, shutdown.clone())?;
    for address in &server.addresses {
        info!(%address, "listening on udp and tcp");
    }
    for pool in snapshot.load().pools() {
        let live = pool.live();
        info!(pool = %pool.config.name, up = live.up, members = pool.members.len(), state = ?live.state, "pool ready");
    }
    info!(
        zones = config.zones.len(),
        members = probers.len(),
        "serving"
    );
    server.wait().await;
    let _ = publisher.await;
    info!("stopped");
    Ok(())
}
