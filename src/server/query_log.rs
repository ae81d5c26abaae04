//! Query logging: off by default (a busy resolver would drown the log), every query, or one in
//! N. Logged at info level under the `apidns::query` target.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::dns::{Answered, Transport};
use crate::metrics::RcodeLabel;

/// Which queries are logged.
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

    /// Whether the message being answered now is one to log.
    pub fn wants(&self) -> bool {
        self.every != 0
            && self
                .seen
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(self.every)
    }
}

/// Logs one answered message: who asked, what, and what they got.
pub fn log_query(
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
