//! NOTIFY (RFC 1996): whenever a zone's serial changes (an update, a reload that changes its
//! data) and once at startup, each address in its `transfer.notify` is told over UDP, signed
//! with the zone's first transfer key, so that secondaries transfer the zone at once rather
//! than at their next SOA refresh.
//!
//! Each message is retried with a doubling wait until the secondary acknowledges it (a
//! response with the same ID, correctly signed), at most [`ATTEMPTS`] times. A newer serial
//! replaces a NOTIFY still being retried for the same zone and address.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, Record, RecordType, TSigVerifier, TSigner};
use prometheus_client::metrics::counter::Counter;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::history::History;
use crate::config::TsigKey;
use crate::dns::tsig::{FUDGE, now};
use crate::zone::Snapshot;

/// Sends of one NOTIFY before giving up: with the first wait of [`FIRST_WAIT`] doubling each
/// time, about a minute in all (BIND retries 5 times, Knot 5 times too by default).
const ATTEMPTS: u32 = 6;
/// The wait for an acknowledgement after the first send; a secondary on the same network
/// answers within milliseconds.
const FIRST_WAIT: Duration = Duration::from_secs(1);
/// The largest acknowledgement read: the echo of our question and SOA, and a TSIG record.
const MAX_ACK: usize = 4096;

/// Where NOTIFY outcomes are counted (handles into `apidns_notifies{result}`).
#[derive(Clone, Debug, Default)]
pub struct NotifyCounters {
    /// Acknowledged by the secondary.
    pub acknowledged: Counter,
    /// Sent again after no (valid) acknowledgement in time.
    pub retried: Counter,
    /// Given up after every attempt, or not sent at all (no key, no socket).
    pub failed: Counter,
}

/// The task that watches serials: records each new one in the [`History`] and sends NOTIFY
/// messages for it.
pub struct Notifier {
    snapshot: Arc<ArcSwap<Snapshot>>,
    /// Where each new serial is recorded before it is notified, for IXFR.
    history: Arc<History>,
    /// The TSIG keys in force.
    keys: Box<dyn Fn() -> Arc<Vec<TsigKey>> + Send + Sync>,
    counters: NotifyCounters,
    /// The serial last notified, per zone.
    notified: HashMap<Name, u32>,
    /// The NOTIFY being sent, per zone and address.
    sending: HashMap<(Name, SocketAddr), AbortHandle>,
    tasks: JoinSet<()>,
}

impl Notifier {
    pub fn new(
        snapshot: Arc<ArcSwap<Snapshot>>,
        history: Arc<History>,
        keys: impl Fn() -> Arc<Vec<TsigKey>> + Send + Sync + 'static,
        counters: NotifyCounters,
    ) -> Self {
        Self {
            snapshot,
            history,
            keys: Box::new(keys),
            counters,
            notified: HashMap::new(),
            sending: HashMap::new(),
            tasks: JoinSet::new(),
        }
    }

    /// Notifies at startup, then after every change that `changes` announces (a new snapshot
    /// or a health change: only a changed serial sends anything), until `shutdown`.
    pub async fn run(mut self, mut changes: watch::Receiver<u64>, shutdown: CancellationToken) {
        loop {
            self.notify_changed_zones();
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
                () = shutdown.cancelled() => break,
            }
        }
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }

    /// Starts a NOTIFY to every listed address of every zone whose serial is not the one last
    /// notified.
    fn notify_changed_zones(&mut self) {
        let snapshot = self.snapshot.load_full();
        // Recorded first, so that the IXFR a NOTIFY brings finds the new version.
        self.history.record(&snapshot);
        for zone in snapshot.zones() {
            let Some(policy) = &zone.config.transfer else {
                continue;
            };
            let origin = zone.config.origin.clone();
            let serial = zone.config.soa.serial;
            if policy.notify.is_empty() || self.notified.get(&origin) == Some(&serial) {
                continue;
            }
            self.notified.insert(origin.clone(), serial);
            let keys = (self.keys)();
            let key = policy
                .keys
                .first()
                .and_then(|name| keys.iter().find(|key| &key.name == name));
            let Some(key) = key else {
                warn!(zone = %origin, "cannot send NOTIFY: the zone's first transfer key is not defined");
                self.counters.failed.inc();
                continue;
            };
            for &target in &policy.notify {
                if let Some(previous) = self.sending.remove(&(origin.clone(), target)) {
                    previous.abort();
                }
                let send = notify(
                    origin.clone(),
                    zone.soa.clone(),
                    key.clone(),
                    target,
                    self.counters.clone(),
                );
                let handle = self.tasks.spawn(send);
                self.sending.insert((origin.clone(), target), handle);
            }
        }
    }
}

/// Sends one NOTIFY for `origin` (whose SOA is `soa`) to `target` until it is acknowledged.
async fn notify(
    origin: Name,
    soa: Record,
    key: TsigKey,
    target: SocketAddr,
    counters: NotifyCounters,
) {
    let serial = match &soa.data {
        hickory_proto::rr::RData::SOA(data) => data.serial,
        _ => 0,
    };
    let local: SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = match UdpSocket::bind(local).await {
        Ok(socket) => socket,
        Err(error) => {
            warn!(zone = %origin, %target, %error, "cannot send NOTIFY: no UDP socket");
            counters.failed.inc();
            return;
        }
    };
    let Ok(signer) = TSigner::new(key.secret, key.algorithm, key.name, FUDGE) else {
        warn!(zone = %origin, %target, "cannot send NOTIFY: the key cannot sign");
        counters.failed.inc();
        return;
    };
    let mut wait = FIRST_WAIT;
    for attempt in 1..=ATTEMPTS {
        if attempt > 1 {
            counters.retried.inc();
        }
        let id: u16 = rand::random();
        let mut message = Message::new(id, MessageType::Query, OpCode::Notify);
        message.metadata.authoritative = true;
        message.queries = vec![Query::query(origin.clone(), RecordType::SOA)];
        message.answers = vec![soa.clone()];
        let Ok((signature, verifier)) = signer.sign_message(&message, now()) else {
            warn!(zone = %origin, %target, "cannot send NOTIFY: signing failed");
            counters.failed.inc();
            return;
        };
        message.set_signature(signature);
        let Ok(bytes) = message.to_vec() else {
            counters.failed.inc();
            return;
        };
        if let Err(error) = socket.send_to(&bytes, target).await {
            debug!(zone = %origin, %target, %error, attempt, "NOTIFY not sent");
        } else if let Ok(Some(code)) =
            tokio::time::timeout(wait, acknowledgement(&socket, target, id, verifier)).await
        {
            counters.acknowledged.inc();
            info!(zone = %origin, %target, serial, attempt, rcode = %code, "NOTIFY acknowledged");
            return;
        }
        debug!(zone = %origin, %target, serial, attempt, "NOTIFY not acknowledged in time");
        wait *= 2;
    }
    counters.failed.inc();
    warn!(zone = %origin, %target, serial, attempts = ATTEMPTS, "NOTIFY never acknowledged; the secondary will see the change at its next SOA refresh");
}

/// Waits for the response to NOTIFY `id` from `target`, correctly signed; its response code.
/// Anything else that arrives on the socket is ignored.
async fn acknowledgement(
    socket: &UdpSocket,
    target: SocketAddr,
    id: u16,
    verifier: Option<TSigVerifier>,
) -> Option<ResponseCode> {
    let mut verifier = verifier?;
    let mut buffer = vec![0u8; MAX_ACK];
    loop {
        let (length, from) = socket.recv_from(&mut buffer).await.ok()?;
        let reply = buffer.get(..length)?;
        if from != target {
            continue;
        }
        match acknowledged(reply, id, &mut verifier) {
            Ok(code) => return Some(code),
            Err(why) => debug!(%target, why, "NOTIFY response ignored"),
        }
    }
}

/// Whether `reply` acknowledges the NOTIFY `id` whose signature `verifier` holds: a NOERROR
/// response with that ID, correctly signed (RFC 1996 section 4.7); or why it does not count.
/// A signed error (REFUSED, NOTAUTH, SERVFAIL) is not an acknowledgement: the NOTIFY is sent
/// again, as for no answer.
pub fn acknowledged(
    reply: &[u8],
    id: u16,
    verifier: &mut TSigVerifier,
) -> Result<ResponseCode, &'static str> {
    if reply.len() < 12 || reply[..2] != id.to_be_bytes() {
        return Err("not a response to this NOTIFY");
    }
    // Parsed first: hickory's TSIG verifier adds the header's answer and authority counts
    // without checking, which panics (debug) or wraps (release) on counts a message that parses
    // cannot have.
    if Message::from_vec(reply).is_err() {
        return Err("not a DNS message");
    }
    let Ok(response) = verifier.verify(reply) else {
        return Err("its signature does not verify");
    };
    if response.metadata.message_type != MessageType::Response {
        return Err("not a response");
    }
    match response.metadata.response_code {
        ResponseCode::NoError => Ok(ResponseCode::NoError),
        _ => Err("the secondary answered with an error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::tsig::{self, Verification};
    use hickory_proto::rr::RData;
    use hickory_proto::rr::rdata::SOA;
    use hickory_proto::rr::rdata::tsig::TsigAlgorithm;

    /// A NOTIFY signed with the key, its bytes, and the verifier of its answer.
    fn signed_notify(key: &TsigKey, id: u16) -> (Vec<u8>, TSigVerifier) {
        let origin = Name::from_ascii("k8s.example.com.").unwrap();
        let soa = Record::from_rdata(
            origin.clone(),
            60,
            RData::SOA(SOA::new(
                origin.clone(),
                origin.clone(),
                42,
                3600,
                600,
                86400,
                5,
            )),
        );
        let mut message = Message::new(id, MessageType::Query, OpCode::Notify);
        message.queries = vec![Query::query(origin, RecordType::SOA)];
        message.answers = vec![soa];
        let signer = TSigner::new(
            key.secret.clone(),
            key.algorithm.clone(),
            key.name.clone(),
            FUDGE,
        )
        .unwrap();
        let (signature, verifier) = signer.sign_message(&message, now()).unwrap();
        message.set_signature(signature);
        (message.to_vec().unwrap(), verifier.unwrap())
    }

    /// The secondary's answer with `code`, signed over the NOTIFY's MAC.
    fn signed_answer(key: &TsigKey, request: &[u8], code: ResponseCode) -> Vec<u8> {
        let parsed = Message::from_vec(request).unwrap();
        let Verification::Valid { signing, .. } = tsig::verify(
            std::slice::from_ref(key),
            request,
            parsed.signature().unwrap(),
            now(),
        ) else {
            panic!("the NOTIFY verifies");
        };
        let mut answer = Message::new(parsed.id, MessageType::Response, OpCode::Notify);
        answer.metadata.response_code = code;
        answer.queries = parsed.queries.clone();
        let mut bytes = answer.to_vec().unwrap();
        let record = signing.sign(parsed.id, now(), &bytes).unwrap();
        tsig::append(&mut bytes, &record).unwrap();
        bytes
    }

    // Found by the notify_reply fuzz target: a correctly signed REFUSED (or NOTAUTH,
    // SERVFAIL) counted as acknowledged, and the NOTIFY was not sent again.
    #[test]
    fn only_a_signed_noerror_answer_acknowledges() {
        let key = TsigKey {
            name: Name::from_ascii("xfr-key.").unwrap(),
            algorithm: TsigAlgorithm::HmacSha256,
            secret: b"secret-secret-secret-secret12345".to_vec(),
        };
        for code in [
            ResponseCode::Refused,
            ResponseCode::NotAuth,
            ResponseCode::ServFail,
        ] {
            let (request, mut verifier) = signed_notify(&key, 7);
            let answer = signed_answer(&key, &request, code);
            assert!(acknowledged(&answer, 7, &mut verifier).is_err(), "{code}");
        }
        let (request, mut verifier) = signed_notify(&key, 7);
        let answer = signed_answer(&key, &request, ResponseCode::NoError);
        assert!(
            acknowledged(&answer, 8, &mut verifier).is_err(),
            "another ID"
        );
        let mut bare = Message::from_vec(&answer).unwrap();
        bare.signature = None;
        let unsigned = bare.to_vec().unwrap();
        assert!(
            acknowledged(&unsigned, 7, &mut verifier).is_err(),
            "unsigned"
        );
        assert_eq!(
            acknowledged(&answer, 7, &mut verifier),
            Ok(ResponseCode::NoError)
        );
    }

    // Found by the notify_reply fuzz target: a header claiming 0x6100 answers and 0xff00
    // authority records (a sum above 65,535) panicked inside hickory's TSIG verifier.
    #[test]
    fn counts_that_overflow_are_no_acknowledgement() {
        let key = TsigKey {
            name: Name::from_ascii("xfr-key.").unwrap(),
            algorithm: TsigAlgorithm::HmacSha256,
            secret: b"secret-secret-secret-secret12345".to_vec(),
        };
        let (_, mut verifier) = signed_notify(&key, 0x4e4f);
        let reply = [
            0x4e, 0x4f, 0xa4, 0x00, 0x00, 0x00, 0x61, 0x00, 0xff, 0x00, 0x01, 0x00, 0x78, 0x61,
            0x6d, 0x70, 0xc0, 0x0c, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x06, 0x00, 0x01,
        ];
        assert!(acknowledged(&reply, 0x4e4f, &mut verifier).is_err());
    }
}
