//! NOTIFY (RFC 1996) from a secondary zone's primary: answered NOERROR with AA (signed when the
//! zone has a key) and the zone's refresh starts at once. A NOTIFY for a secondary zone from any
//! other address, or without the zone's key, is REFUSED (NOTAUTH for a bad signature) and
//! starts nothing, so that a stranger cannot make apidns hammer its primary. A NOTIFY for any
//! other zone is not this module's: the answering code gives it NOTIMP, as before.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::Name;
use tokio::sync::Notify;
use tracing::info;

use crate::config::TsigKey;
use crate::dns::tsig::{self, Signing, Verification};

/// Whom a zone's NOTIFY may come from, and the refresh loop it wakes.
#[derive(Debug, Clone)]
pub(super) struct Listener {
    pub primary: SocketAddr,
    pub key: Option<TsigKey>,
    pub wake: Arc<Notify>,
}

/// The way from the server's edge to the secondary zones: NOTIFY wakes a refresh loop, and an
/// UPDATE learns where to be forwarded. Cheap to clone, shared by every listener. Both are rare,
/// so a mutex (never held across an await) is enough.
#[derive(Debug, Clone, Default)]
pub struct SecondaryDoor(Arc<Mutex<HashMap<Name, Listener>>>);

impl SecondaryDoor {
    pub(super) fn set(&self, listeners: HashMap<Name, Listener>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = listeners;
    }

    /// A door for one secondary zone `origin` whose primary is `primary` (signed with `key`), and
    /// what a NOTIFY from it wakes. The server builds its door from the configuration; this is
    /// for fuzzing and tests, which drive the edge without a refresh loop.
    pub fn for_one_zone(
        origin: Name,
        primary: SocketAddr,
        key: Option<TsigKey>,
    ) -> (Self, Arc<Notify>) {
        let door = Self::default();
        let wake = Arc::new(Notify::new());
        door.set(HashMap::from([(
            origin.to_lowercase(),
            Listener {
                primary,
                key,
                wake: wake.clone(),
            },
        )]));
        (door, wake)
    }

    /// The primary an UPDATE (the whole message) must be forwarded to, when its zone section
    /// names a secondary zone here. Only a well-formed update signed with TSIG is forwarded:
    /// one that is not (several zones, no signature) is answered here, FORMERR or REFUSED as any
    /// update. Forwarding an unsigned update would hand it to the primary from the secondary's
    /// address, past whatever the primary allows by address.
    pub fn primary_of_update(&self, update: &[u8]) -> Option<SocketAddr> {
        let message = Message::from_vec(update).ok()?;
        let [zone] = message.queries.as_slice() else {
            return None;
        };
        message.signature()?;
        let zone = zone.name().to_lowercase();
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&zone)
            .map(|listener| listener.primary)
    }

    /// The answer to the NOTIFY `request` from `peer` (the whole message as received); `None`
    /// when it is not for a secondary zone here (or does not parse): not this module's.
    pub fn answer(&self, request: &[u8], peer: SocketAddr) -> Option<Vec<u8>> {
        let message = Message::from_vec(request).ok()?;
        let [question] = message.queries.as_slice() else {
            return None;
        };
        let zone = question.name().to_lowercase();
        let listener = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&zone)
            .cloned();
        let listener = listener?;
        if peer.ip() != listener.primary.ip() {
            info!(%zone, %peer, primary = %listener.primary, "NOTIFY refused: not from the zone's primary");
            return Some(reply(&message, ResponseCode::Refused, &Signing::Unsigned));
        }
        let signing = match (&listener.key, message.signature()) {
            (None, _) => Signing::Unsigned,
            (Some(_), None) => {
                info!(%zone, %peer, "NOTIFY refused: not signed with the zone's key");
                return Some(reply(&message, ResponseCode::Refused, &Signing::Unsigned));
            }
            (Some(key), Some(signature)) => {
                match tsig::verify(std::slice::from_ref(key), request, signature, tsig::now()) {
                    Verification::Valid { signing, .. } => signing,
                    Verification::Rejected(signing) => {
                        info!(%zone, %peer, key = %signature.name, "NOTIFY refused: bad TSIG signature, key or time");
                        return Some(reply(&message, ResponseCode::NotAuth, &signing));
                    }
                    Verification::Unusable => {
                        return Some(reply(&message, ResponseCode::ServFail, &Signing::Unsigned));
                    }
                }
            }
        };
        info!(%zone, %peer, "NOTIFY from the primary: refreshing now");
        listener.wake.notify_one();
        Some(reply(&message, ResponseCode::NoError, &signing))
    }
}

/// The answer: the request's ID, opcode and question, AA on NOERROR, signed as `signing` says.
fn reply(request: &Message, code: ResponseCode, signing: &Signing) -> Vec<u8> {
    let mut message = Message::new(request.id, MessageType::Response, OpCode::Notify);
    message.metadata.authoritative = code == ResponseCode::NoError;
    message.metadata.response_code = code;
    message.queries = request.queries.clone();
    let mut bytes = message.to_vec().unwrap_or_default();
    if let Some(signature) = signing.sign(request.id, tsig::now(), &bytes) {
        let _ = tsig::append(&mut bytes, &signature);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use hickory_proto::op::Query;
    use hickory_proto::rr::RecordType;

    use super::*;

    fn notify(zone: &str) -> Vec<u8> {
        let mut message = Message::new(7, MessageType::Query, OpCode::Notify);
        message.queries.push(Query::query(
            Name::from_str(zone).expect("a name"),
            RecordType::SOA,
        ));
        message.to_vec().expect("encoded")
    }

    #[tokio::test]
    async fn only_the_primary_wakes_the_refresh() {
        let door = SecondaryDoor::default();
        let wake = Arc::new(Notify::new());
        let primary: SocketAddr = "127.0.0.2:53".parse().unwrap();
        door.set(HashMap::from([(
            Name::from_str("k8s.example.com.").unwrap(),
            Listener {
                primary,
                key: None,
                wake: wake.clone(),
            },
        )]));
        let code = |bytes: Vec<u8>| {
            let message = Message::from_vec(&bytes).expect("an answer");
            (
                message.metadata.response_code,
                message.metadata.authoritative,
                message.id,
            )
        };
        let stranger: SocketAddr = "127.0.0.9:4000".parse().unwrap();
        let answer = door
            .answer(&notify("k8s.example.com."), stranger)
            .expect("answered");
        assert_eq!(code(answer), (ResponseCode::Refused, false, 7));
        let other = door.answer(&notify("other.example."), "127.0.0.2:4000".parse().unwrap());
        assert!(
            other.is_none(),
            "another zone's NOTIFY is the answering code's (NOTIMP)"
        );
        let from_primary = door
            .answer(
                &notify("K8S.example.com."),
                "127.0.0.2:4000".parse().unwrap(),
            )
            .expect("answered");
        assert_eq!(code(from_primary), (ResponseCode::NoError, true, 7));
        // The permit left by the primary's NOTIFY is there; the stranger's left none before it.
        tokio::time::timeout(std::time::Duration::from_secs(1), wake.notified())
            .await
            .expect("woken");
    }
}
