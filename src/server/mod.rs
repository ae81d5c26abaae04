//! DNS over UDP and TCP on every configured address.

mod batch;
mod bind;
mod connections;
pub mod framing;
mod privileges;
pub mod rrl;
mod tcp;
mod udp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use arc_swap::ArcSwap;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use privileges::{Plan as PrivilegePlan, PrivilegeError, drop_privileges};
pub use tcp::TcpLimits;

use crate::config::ServerSettings;
use crate::dns::{Answered, Transport, respond_into, truncated};
use crate::metrics::{Metrics, RcodeLabel};
use crate::zone::Snapshot;
use rrl::{ResponseRateLimiter, Verdict};

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address}: {source}")]
pub struct BindError {
    pub address: SocketAddr,
    pub source: std::io::Error,
}

/// What every listener shares: the snapshot to answer from, the metrics to count in, and the
/// query log.
#[derive(Clone)]
pub struct Answerer {
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    pub metrics: Arc<Metrics>,
    pub max_udp_payload: u16,
    pub query_log: Arc<QueryLog>,
}

/// Query logging: off by default (a busy resolver would drown the log), every query, or one in
/// N. Logged at info level under the `apidns::query` target.
#[derive(Debug, Default)]
pub struct QueryLog {
    /// Log one query in this many; 0 logs none.
    every: u64,
    seen: AtomicU64,
}

impl QueryLog {
    pub fn new(every: u64) -> Self {
        Self {
            every,
            seen: AtomicU64::new(0),
        }
    }

    fn wants(&self) -> bool {
        self.every != 0 && self.seen.fetch_add(1, Ordering::Relaxed) % self.every == 0
    }
}

impl Answerer {
    /// Answers one message and counts it; `None` when nothing is to be sent.
    pub fn answer(&self, query: &[u8], transport: Transport, peer: SocketAddr) -> Option<Vec<u8>> {
        let mut bytes = Vec::with_capacity(512);
        self.answer_into(query, transport, peer, &mut bytes, None)?;
        Some(bytes)
    }

    /// Answers one message into `out` and counts it; with `rrl`, answers past the rate limit
    /// are dropped or replaced by a truncated one. `None` means send nothing, and leaves `out`
    /// in an unspecified state. A caller that keeps `out` from one query to the next answers
    /// fast-path queries without allocating.
    pub fn answer_into(
        &self,
        query: &[u8],
        transport: Transport,
        peer: SocketAddr,
        out: &mut Vec<u8>,
        rrl: Option<&ResponseRateLimiter>,
    ) -> Option<()> {
        let started = self.metrics.should_time().then(Instant::now);
        let snapshot = self.snapshot.load();
        let answered = respond_into(&snapshot, query, transport, self.max_udp_payload, out)?;
        self.metrics.count_query(
            answered.zone.as_deref(),
            answered
                .qtype
                .unwrap_or(hickory_proto::rr::RecordType::ZERO),
            answered.rcode,
            transport,
        );
        if let Some(started) = started {
            self.metrics.observe_response(transport, started.elapsed());
        }
        if self.query_log.wants() {
            log_query(query, &answered, out.len(), transport, peer);
        }
        match rrl {
            Some(rrl) => rate_limited(rrl, peer, query, answered, out),
            None => Some(()),
        }
    }
}

/// Applies the rate limiter's verdict to the answer in `out`.
fn rate_limited(
    rrl: &ResponseRateLimiter,
    peer: SocketAddr,
    query: &[u8],
    answered: Answered<'_>,
    out: &mut Vec<u8>,
) -> Option<()> {
    // The limiter reads the answer in its owned form; moving the buffer in and out is free.
    let reply = answered.into_reply(std::mem::take(out));
    let verdict = rrl.check(peer.ip(), query, &reply);
    *out = reply.bytes;
    match verdict {
        Verdict::Send => Some(()),
        Verdict::Slip => {
            *out = truncated(out)?;
            Some(())
        }
        Verdict::Drop => None,
    }
}

fn log_query(
    query: &[u8],
    answered: &Answered<'_>,
    bytes: usize,
    transport: Transport,
    peer: SocketAddr,
) {
    let question = hickory_proto::op::Message::from_vec(query)
        .ok()
        .and_then(|message| message.queries.first().map(|q| q.name().to_string()))
        .unwrap_or_default();
    tracing::info!(
        target: "apidns::query",
        client = %peer,
        transport = ?transport,
        name = %question,
        qtype = %answered.qtype.map(|t| t.to_string()).unwrap_or_default(),
        rcode = %RcodeLabel(answered.rcode),
        bytes,
        "query"
    );
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
