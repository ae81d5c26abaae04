//! What every listener shares: the message goes to its module (see [`super::dispatch`]), and its
//! answer is counted, logged when the query log wants it, and passed by the rate limiter.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use hickory_proto::rr::RecordType;

use super::dispatch::{Route, route};
use super::query_log::{QueryLog, log_query, log_transfer};
use super::rrl::{ResponseRateLimiter, Verdict};
use crate::dns::cookie::CookieSecrets;
use crate::dns::{
    Answered, Extensions, Transport, respond_into_with, respond_limited, size_limit, truncated,
};
use crate::metrics::Metrics;
use crate::update::UpdateDoor;
use crate::zone::Snapshot;

/// The snapshot to answer queries from, the door to the update writer, the metrics to count
/// in, and the query log.
#[derive(Clone)]
pub struct Answerer {
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    pub updates: UpdateDoor,
    pub metrics: Arc<Metrics>,
    pub max_udp_payload: u16,
    pub query_log: Arc<QueryLog>,
    /// The name server identifier sent to queries that ask for it (`[server] nsid`).
    pub nsid: Option<Arc<[u8]>>,
    /// The secrets server cookies (RFC 7873, RFC 9018) are made with.
    pub cookies: Arc<CookieSecrets>,
    /// The zones' recent versions, for IXFR.
    pub transfer_history: Arc<crate::transfer::History>,
    /// Secondary zones: NOTIFY from a primary starts a refresh, an UPDATE is forwarded to it.
    pub secondaries: crate::transfer::secondary::SecondaryDoor,
    /// Over UDP, a client cookie without a valid server cookie gets BADCOOKIE
    /// (`[server] require_server_cookie`).
    pub require_server_cookie: bool,
}

impl Answerer {
    /// Answers one message of any opcode and counts it; `None` when nothing is to be sent.
    /// An UPDATE awaits the writer's verdict.
    pub async fn answer(
        &self,
        message: &[u8],
        transport: Transport,
        peer: SocketAddr,
    ) -> Option<Vec<u8>> {
        let mut bytes = Vec::with_capacity(512);
        match route(message) {
            // Over UDP a transfer request is a query like any other (REFUSED).
            Route::Answer | Route::Transfer | Route::Notify => {
                self.answer_query_into(message, transport, peer, &mut bytes, None)?
            }
            Route::Update => {
                self.answer_update_into(message, transport, peer, &mut bytes, None)
                    .await?
            }
        }
        Some(bytes)
    }

    /// Answers one message received over TCP: a zone transfer in as many messages as it takes,
    /// anything else as [`Self::answer`] does. Empty when nothing is to be sent.
    pub async fn answer_tcp(&self, message: &[u8], peer: SocketAddr) -> Vec<Vec<u8>> {
        if route(message) != Route::Transfer {
            return self
                .answer(message, Transport::Tcp, peer)
                .await
                .into_iter()
                .collect();
        }
        let started = self.metrics.should_time().then(Instant::now);
        // A zone of thousands of members takes milliseconds to encode and sign: off the
        // runtime's workers, so that the queries they serve meanwhile do not wait.
        let snapshot = self.snapshot.load_full();
        let history = self.transfer_history.clone();
        let keys = self.updates.keys().load();
        let request = message.to_vec();
        let Ok(transfer) = tokio::task::spawn_blocking(move || {
            crate::transfer::answer(&snapshot, &history, &keys, &request, peer)
        })
        .await
        else {
            return Vec::new();
        };
        self.metrics.count_query(
            transfer.zone.as_ref(),
            transfer.qtype.unwrap_or(RecordType::ZERO),
            transfer.rcode,
            Transport::Tcp,
        );
        if let Some(started) = started {
            self.metrics
                .observe_response(Transport::Tcp, started.elapsed());
        }
        if self.query_log.wants() {
            log_transfer(message, &transfer, peer);
        }
        transfer.messages
    }

    /// Answers one message that is not an UPDATE (see [`route`]) into `out` and counts it; with
    /// `rrl`, answers past the rate limit are dropped or replaced by a truncated one. `None`
    /// means send nothing, and leaves `out` in an unspecified state. A caller that keeps `out`
    /// from one query to the next answers fast-path queries without allocating. Never waits.
    pub fn answer_query_into(
        &self,
        query: &[u8],
        transport: Transport,
        peer: SocketAddr,
        out: &mut Vec<u8>,
        rrl: Option<&ResponseRateLimiter>,
    ) -> Option<()> {
        if route(query) == Route::Notify
            && let Some(answer) = self.secondaries.answer(query, peer)
        {
            *out = answer;
            return Some(());
        }
        let started = self.metrics.should_time().then(Instant::now);
        let snapshot = self.snapshot.load();
        let extensions = self.extensions(peer);
        let answered = respond_into_with(
            &snapshot,
            query,
            transport,
            self.max_udp_payload,
            &extensions,
            out,
        )?;
        // The rate limiter's slip is made from the query, so that it carries a cookie and a
        // signature like any answer (see `respond_limited`).
        let slip = |out: &mut Vec<u8>| {
            let slip = respond_limited(
                &snapshot,
                query,
                transport,
                self.max_udp_payload,
                &extensions,
            )?;
            *out = slip.bytes;
            Some(())
        };
        self.record(query, answered, transport, peer, started, out, rrl, slip)
    }

    /// What the server adds to an answer to `peer` beyond its zone data.
    fn extensions(&self, peer: SocketAddr) -> Extensions<'_> {
        Extensions {
            nsid: self.nsid.as_deref(),
            tsig_keys: Some(self.updates.keys().current()),
            cookies: Some(&self.cookies),
            client: Some(peer.ip()),
            require_server_cookie: self.require_server_cookie,
            now: None,
        }
    }

    /// Answers one UPDATE message into `out` once the writer has decided, and counts it like a
    /// query (type SOA, the zone section's type); `rrl` as for [`Self::answer_query_into`].
    pub async fn answer_update_into(
        &self,
        update: &[u8],
        transport: Transport,
        peer: SocketAddr,
        out: &mut Vec<u8>,
        rrl: Option<&ResponseRateLimiter>,
    ) -> Option<()> {
        let started = self.metrics.should_time().then(Instant::now);
        // An update's answer carries no OPT record, so over UDP it keeps to 512 bytes whatever
        // size the client advertised.
        let limit = size_limit(transport, None, self.max_udp_payload);
        let rcode = if let Some(primary) = self.secondaries.primary_of_update(update) {
            // A secondary zone's update is its primary's to decide (RFC 2136 section 6).
            let (bytes, rcode) = forward_update(primary, update, peer).await?;
            // The primary's answer is relayed as it is, but never above the client's limit: a
            // longer one goes back truncated, and the client asks again over TCP.
            *out = if bytes.len() > usize::from(limit) {
                truncated(&bytes)?
            } else {
                bytes
            };
            rcode
        } else {
            let reply = self.updates.answer(update, limit).await;
            *out = reply.bytes;
            reply.rcode
        };
        let answered = Answered {
            address_proven: false,
            rcode,
            qtype: Some(RecordType::SOA),
            zone: None,
        };
        let slip = |out: &mut Vec<u8>| {
            *out = truncated(out)?;
            Some(())
        };
        self.record(update, answered, transport, peer, started, out, rrl, slip)
    }

    /// Counts, times and logs the answer in `out`, then applies the rate limiter to it; `slip`
    /// replaces the answer in `out` by what a limited client gets when one slips through.
    #[allow(clippy::too_many_arguments)] // each is one fact about the answer just made
    fn record(
        &self,
        message: &[u8],
        answered: Answered<'_>,
        transport: Transport,
        peer: SocketAddr,
        started: Option<Instant>,
        out: &mut Vec<u8>,
        rrl: Option<&ResponseRateLimiter>,
        slip: impl FnOnce(&mut Vec<u8>) -> Option<()>,
    ) -> Option<()> {
        self.metrics.count_query(
            answered.zone.as_deref(),
            answered.qtype.unwrap_or(RecordType::ZERO),
            answered.rcode,
            transport,
        );
        if let Some(started) = started {
            self.metrics.observe_response(transport, started.elapsed());
        }
        if self.query_log.wants() {
            log_query(message, &answered, out.len(), transport, peer);
        }
        match rrl {
            Some(rrl) => rate_limited(rrl, peer, message, answered, out, slip),
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
    slip: impl FnOnce(&mut Vec<u8>) -> Option<()>,
) -> Option<()> {
    // The limiter reads the answer in its owned form; moving the buffer in and out is free.
    let reply = answered.into_reply(std::mem::take(out));
    let verdict = rrl.check(peer.ip(), query, &reply);
    *out = reply.bytes;
    match verdict {
        Verdict::Send => Some(()),
        Verdict::Slip => slip(out),
        Verdict::Drop => None,
    }
}

/// Forwards `update` from `peer` to the secondary zone's `primary`, and gives back the primary's
/// answer with its response code; SERVFAIL when the primary cannot be asked.
async fn forward_update(
    primary: SocketAddr,
    update: &[u8],
    peer: SocketAddr,
) -> Option<(Vec<u8>, hickory_proto::op::ResponseCode)> {
    use crate::transfer::secondary::forward;
    match forward::forward(primary, update).await {
        Ok(answer) => {
            let rcode =
                hickory_proto::op::ResponseCode::from_low(answer.get(3).map_or(0, |b| b & 0x0f));
            tracing::info!(%peer, %primary, %rcode, "update for a secondary zone forwarded to its primary");
            Some((answer, rcode))
        }
        Err(error) => {
            tracing::warn!(%peer, %primary, %error, "update for a secondary zone not forwarded: SERVFAIL");
            Some((
                forward::failure(update)?,
                hickory_proto::op::ResponseCode::ServFail,
            ))
        }
    }
}
