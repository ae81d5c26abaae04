//! The running daemon: configuration, snapshot and listeners wired together.

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::Config;
use crate::health::{Health, MemberStatus};
use crate::server::{BindError, DnsServer};
use crate::zone::Snapshot;

/// Serves `config` until `shutdown` is cancelled.
pub async fn serve(config: Config, shutdown: CancellationToken) -> Result<(), BindError> {
    let snapshot = Snapshot::build(&config, |_, _| Arc::new(MemberStatus::new(Health::Up)));
    let snapshot = Arc::new(ArcSwap::from_pointee(snapshot));
    let server = DnsServer::start(&config.server, snapshot, shutdown.clone())?;
    for address in &server.addresses {
        info!(%address, "listening on udp and tcp");
    }
    info!(
        zones = config.zones.len(),
        pools = config.zones.iter().map(|z| z.pools.len()).sum::<usize>(),
        "serving"
    );
    server.wait().await;
    info!("stopped");
    Ok(())
}
