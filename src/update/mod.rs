//! RFC 2136 dynamic updates, signed with TSIG (RFC 8945), that add and remove pool members.
//!
//! The listeners check the signature ([`respond_to_update`]); a signed update then goes to the
//! one writer, the [`crate::reload::Reloader`], which checks prerequisites and policy
//! ([`plan`]), writes the journal ([`journal`]) and applies the next configuration the way a
//! reload does. The listener waits for that and answers, signed, only once the change is on disk.

pub mod journal;
mod plan;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::{Name, TSigResponseContext, TSigner};
use tokio::sync::mpsc;

pub use plan::{Change, plan};

use crate::config::TsigKey;

/// How long a listener waits for the writer: a probe round of the new members and an fsync.
const WRITER_TIMEOUT: Duration = Duration::from_secs(30);
/// Updates waiting for the writer beyond this many are answered SERVFAIL at once.
const QUEUE: usize = 16;
/// The clock skew a signature may have (RFC 8945 recommends 300 seconds).
const FUDGE: u16 = 300;

/// A verified update on its way to the writer.
#[derive(Debug)]
pub struct UpdateRequest {
    pub message: Message,
    /// The key that signed it.
    pub key: TsigKey,
    /// Where the writer sends the response code.
    pub reply: std::sync::mpsc::SyncSender<ResponseCode>,
}

/// What the listeners need to take updates: the keys to verify them and the way to the writer.
#[derive(Debug, Clone)]
pub struct UpdateDoor {
    sender: mpsc::Sender<UpdateRequest>,
    keys: Arc<Vec<TsigKey>>,
}

impl UpdateDoor {
    /// A door and the writer's end of it.
    pub fn new(keys: Vec<TsigKey>) -> (Self, mpsc::Receiver<UpdateRequest>) {
        let (sender, receiver) = mpsc::channel(QUEUE);
        (
            Self {
                sender,
                keys: Arc::new(keys),
            },
            receiver,
        )
    }

    /// The same way to the writer with the keys of a reloaded configuration.
    pub fn with_keys(&self, keys: Vec<TsigKey>) -> Self {
        Self {
            sender: self.sender.clone(),
            keys: Arc::new(keys),
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |age| age.as_secs())
}

/// Answers an UPDATE message (`query`, whose header says opcode UPDATE). Blocks until the
/// writer has applied it; called on a UDP listener's update thread or a TCP task (see [`wait_for`]).
pub fn respond_to_update(door: Option<&UpdateDoor>, query: &[u8]) -> (Vec<u8>, ResponseCode) {
    let Ok(request) = Message::from_vec(query) else {
        return (bare(query, ResponseCode::FormErr), ResponseCode::FormErr);
    };
    let mut response = Message::new(request.id, MessageType::Response, OpCode::Update);
    response.queries = request.queries.clone();
    let Some(signature) = request.signature() else {
        // RFC 2136 section 3.3: an unauthenticated update is refused.
        return finish(response, ResponseCode::Refused, None);
    };
    let keys = door.map(|door| door.keys.as_slice()).unwrap_or_default();
    let tsig = &signature.data;
    let Some(key) = keys
        .iter()
        .find(|key| key.name == signature.name.to_lowercase() && key.algorithm == tsig.algorithm)
    else {
        let context = TSigResponseContext::unknown_key(request.id, now(), signature.name.clone());
        return finish(response, ResponseCode::NotAuth, Some(context));
    };
    let Ok(signer) = TSigner::new(
        key.secret.clone(),
        key.algorithm.clone(),
        key.name.clone(),
        FUDGE,
    ) else {
        return finish(response, ResponseCode::ServFail, None);
    };
    let time = now();
    // A time below the fudge cannot be right, and the library's window would underflow.
    if tsig.time < u64::from(tsig.fudge) {
        let context = TSigResponseContext::bad_signature(request.id, time, signer);
        return finish(response, ResponseCode::NotAuth, Some(context));
    }
    let (request_mac, window) = match signer.verify_message_byte(query, None, true) {
        Ok((mac, _, window)) => (mac, window),
        Err(_) => {
            let context = TSigResponseContext::bad_signature(request.id, time, signer);
            return finish(response, ResponseCode::NotAuth, Some(context));
        }
    };
    let id = request.id;
    let signed =
        |error| TSigResponseContext::new(id, time, signer.clone(), request_mac.clone(), error);
    if !(window.start..=window.end).contains(&time) {
        return finish(
            response,
            ResponseCode::NotAuth,
            Some(signed(Some(TsigError::BadTime))),
        );
    }
    let code = match door {
        Some(door) => wait_for(door, request, key.clone()),
        None => ResponseCode::Refused,
    };
    finish(response, code, Some(signed(None)))
}

/// Hands the update to the writer and waits for its verdict. The wait blocks the thread: fine on
/// the UDP update thread (off the query path), and moved off the runtime's workers on a TCP task.
fn wait_for(door: &UpdateDoor, message: Message, key: TsigKey) -> ResponseCode {
    let (reply, verdict) = std::sync::mpsc::sync_channel(1);
    let request = UpdateRequest {
        message,
        key,
        reply,
    };
    if door.sender.try_send(request).is_err() {
        return ResponseCode::ServFail;
    }
    let wait = || {
        verdict
            .recv_timeout(WRITER_TIMEOUT)
            .unwrap_or(ResponseCode::ServFail)
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(wait)
        }
        // A current-thread runtime would wait for the writer that it has to run itself.
        Ok(_) => ResponseCode::ServFail,
        Err(_) => wait(),
    }
}

/// The response with `code`, signed when `context` says so.
fn finish(
    mut response: Message,
    code: ResponseCode,
    context: Option<TSigResponseContext>,
) -> (Vec<u8>, ResponseCode) {
    response.metadata.response_code = code;
    let Ok(bytes) = response.to_vec() else {
        return (Vec::new(), code);
    };
    let Some(context) = context else {
        return (bytes, code);
    };
    match context.sign(&bytes) {
        Ok(signature) => {
            response.set_signature(signature);
            (response.to_vec().unwrap_or(bytes), code)
        }
        Err(_) => (bytes, code),
    }
}

/// A header-only response for a message that cannot be parsed.
fn bare(query: &[u8], code: ResponseCode) -> Vec<u8> {
    let id = query
        .get(..2)
        .map_or(0, |id| u16::from_be_bytes([id[0], id[1]]));
    let mut response = Message::new(id, MessageType::Response, OpCode::Update);
    response.metadata.response_code = code;
    response.to_vec().unwrap_or_default()
}

/// The zone an update names, when the zone section is well formed (one SOA question, class IN).
pub fn zone_name(message: &Message) -> Result<Name, ResponseCode> {
    match message.queries.as_slice() {
        [zone]
            if zone.query_type() == hickory_proto::rr::RecordType::SOA
                && zone.query_class() == hickory_proto::rr::DNSClass::IN =>
        {
            Ok(zone.name().to_lowercase())
        }
        _ => Err(ResponseCode::FormErr),
    }
}
