//! Query logging: off by default (a busy resolver would drown the log), every query, or one in
//! N. Logged at info level under the `apidns::query` target.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::dns::{Answered, Transport};
use crate::metrics::RcodeLabel;
use crate::transfer::Transfer;

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
    let question = question_name(query);
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

/// Logs one answered zone transfer request (AXFR, IXFR; over TCP only) as a query is logged,
/// with what only a transfer has: the messages it took, their bytes together, and the TSIG key
/// the request was signed with.
pub fn log_transfer(request: &[u8], transfer: &Transfer, peer: SocketAddr) {
    let bytes: usize = transfer.messages.iter().map(Vec::len).sum();
    tracing::info!(
        target: "apidns::query",
        client = %peer,
        transport = ?Transport::Tcp,
        zone = %question_name(request),
        qtype = %transfer.qtype.map(|t| t.to_string()).unwrap_or_default(),
        rcode = %RcodeLabel(transfer.rcode),
        messages = transfer.messages.len(),
        bytes,
        key = %transfer.key.as_ref().map(ToString::to_string).unwrap_or_default(),
        "transfer"
    );
}

/// The first question's name, or nothing when the message does not parse.
fn question_name(message: &[u8]) -> String {
    hickory_proto::op::Message::from_vec(message)
        .ok()
        .and_then(|message| message.queries.first().map(|q| q.name().to_string()))
        .unwrap_or_default()
}
