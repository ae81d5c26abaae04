//! DNS over UDP and TCP on every configured address.

mod bind;
mod tcp;
mod udp;

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use tcp::TcpLimits;

use crate::config::ServerSettings;
use crate::zone::Snapshot;

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address}: {source}")]
pub struct BindError {
    pub address: SocketAddr,
    pub source: std::io::Error,
}

/// The running DNS listeners.
pub struct DnsServer {
    tasks: JoinSet<()>,
    /// The bound addresses (port 0 in the configuration is resolved here).
    pub addresses: Vec<SocketAddr>,
}

impl DnsServer {
    /// Binds every `listen` address on UDP and TCP and starts answering from `snapshot`.
    /// Either every address is bound or none is served.
    pub fn start(
        settings: &ServerSettings,
        snapshot: Arc<ArcSwap<Snapshot>>,
        shutdown: CancellationToken,
    ) -> Result<Self, BindError> {
        let bound = settings
            .listen
            .iter()
            .map(|&address| bind::bind(address).map_err(|source| BindError { address, source }))
            .collect::<Result<Vec<_>, _>>()?;
        let limits = TcpLimits {
            idle_timeout: settings.tcp_idle_timeout,
            max_connections: settings.tcp_max_connections,
            max_udp_payload: settings.max_udp_payload,
        };
        let mut tasks = JoinSet::new();
        let mut addresses = Vec::with_capacity(bound.len());
        for socket in bound {
            addresses.push(socket.address);
            tasks.spawn(udp::serve(
                socket.udp,
                snapshot.clone(),
                settings.max_udp_payload,
                shutdown.clone(),
            ));
            tasks.spawn(tcp::serve(
                socket.tcp,
                snapshot.clone(),
                limits,
                shutdown.clone(),
            ));
        }
        Ok(Self { tasks, addresses })
    }

    /// Waits until every listener has stopped (after shutdown is cancelled).
    pub async fn wait(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}
