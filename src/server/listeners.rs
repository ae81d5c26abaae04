//! The running DNS listeners: sockets bound on every configured address, and their tasks.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::answerer::Answerer;
use super::tcp::TcpLimits;
use super::{bind, connections, rrl, tcp, udp};
use crate::config::ServerSettings;

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
    /// Stops the listeners when the server is dropped without a shutdown (a start-up that
    /// failed after binding): the UDP workers are threads, and the runtime waits for them.
    _stop_on_drop: tokio_util::sync::DropGuard,
}

impl DnsServer {
    /// Binds every `listen` address on UDP and TCP and starts answering.
    /// Either every address is bound or none is served.
    pub fn start(
        settings: &ServerSettings,
        answerer: Answerer,
        shutdown: CancellationToken,
    ) -> Result<Self, BindError> {
        let shutdown = shutdown.child_token();
        // From here on, returning early (an error) stops whatever was already started.
        let stop_on_drop = shutdown.clone().drop_guard();
        let workers = udp::workers();
        let bound = settings
            .listen
            .iter()
            .map(|&address| {
                bind::bind(address, workers).map_err(|source| BindError { address, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let limits = TcpLimits::new(settings.tcp_idle_timeout, settings.tcp_max_connections);
        let connections = connections::ConnectionTable::new(limits.max_connections);
        let rrl = settings
            .rrl
            .map(|rrl| Arc::new(rrl::ResponseRateLimiter::new(rrl)));
        let mut tasks = JoinSet::new();
        let mut addresses = Vec::with_capacity(bound.len());
        for socket in bound {
            addresses.push(socket.address);
            for udp in socket.udp {
                let (answerer, rrl, shutdown) = (answerer.clone(), rrl.clone(), shutdown.clone());
                tasks.spawn_blocking(move || udp::serve(udp, answerer, rrl, shutdown));
            }
            tasks.spawn(tcp::serve(
                socket.tcp,
                answerer.clone(),
                limits,
                connections.clone(),
                shutdown.clone(),
            ));
        }
        Ok(Self {
            tasks,
            addresses,
            _stop_on_drop: stop_on_drop,
        })
    }

    /// Waits until every listener has stopped (after shutdown is cancelled).
    pub async fn wait(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}
