//! RFC 2136 dynamic updates, signed with TSIG (RFC 8945), that add and remove pool members.
//!
//! The server's edge sends every UPDATE message here, through an [`UpdateDoor`]: [`tsig`]
//! checks the header and the signature on the listener, without waiting; a signed update then
//! goes to the one [`writer`], which checks prerequisites and policy ([`plan`]), writes the
//! journal ([`journal`], cut down to the entries that matter by [`compact`]) and puts the next
//! configuration in force. The listener awaits the writer's verdict and answers, signed, only
//! once the change is on disk.

mod compact;
pub mod journal;
mod plan;
pub mod tsig;
pub mod writer;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hickory_proto::op::ResponseCode;
use tokio::sync::{mpsc, oneshot};

pub use plan::{Change, plan, zone_name};
pub use tsig::{Checked, UpdateReply, Verified};
pub use writer::{Apply, Discovered, Reload, Reloaded, Transferred, UpdateRequest, Writer};

use crate::config::TsigKey;

/// How long a listener waits for the writer: a probe round of the new members and an fsync.
const WRITER_TIMEOUT: Duration = Duration::from_secs(30);
/// Updates waiting for the writer beyond this many are answered SERVFAIL at once.
const QUEUE: usize = 16;

/// The TSIG keys of the configuration in force: the writer replaces them when it applies a
/// configuration, and the listeners read them for every update.
#[derive(Debug, Clone)]
pub struct KeyRing(Arc<ArcSwap<Vec<TsigKey>>>);

impl KeyRing {
    pub fn new(keys: Vec<TsigKey>) -> Self {
        Self(Arc::new(ArcSwap::from_pointee(keys)))
    }

    pub fn replace(&self, keys: Vec<TsigKey>) {
        self.0.store(Arc::new(keys));
    }

    pub fn load(&self) -> Arc<Vec<TsigKey>> {
        self.0.load_full()
    }

    /// The keys in force, for a reader that loads them only when it needs them (signed queries).
    pub fn current(&self) -> &ArcSwap<Vec<TsigKey>> {
        &self.0
    }
}

/// What the listeners need to take updates: the keys to verify them and the way to the writer.
#[derive(Debug, Clone)]
pub struct UpdateDoor {
    sender: mpsc::Sender<UpdateRequest>,
    keys: KeyRing,
}

impl UpdateDoor {
    /// A door and the writer's end of it: the requests, and the keys it keeps current.
    pub fn new(keys: Vec<TsigKey>) -> (Self, mpsc::Receiver<UpdateRequest>, KeyRing) {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let keys = KeyRing::new(keys);
        (
            Self {
                sender,
                keys: keys.clone(),
            },
            receiver,
            keys,
        )
    }

    /// The TSIG keys in force: they sign queries too (RFC 8945 section 5.2).
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// Answers an UPDATE message (`query`, whose header says opcode UPDATE) in at most `limit`
    /// bytes. A signed update waits for the writer's verdict: awaited, never blocking a thread.
    pub async fn answer(&self, query: &[u8], limit: u16) -> UpdateReply {
        let checked = tsig::check(&self.keys.load(), query, limit);
        let Verified {
            message,
            key,
            answer,
        } = match checked {
            Checked::Answered(reply) => return reply,
            Checked::Verified(verified) => *verified,
        };
        let code = self.submit(message, key).await;
        answer.finish(code, limit)
    }

    /// Hands the update to the writer and awaits its verdict; SERVFAIL when the writer's queue
    /// is full or it does not answer in time.
    async fn submit(&self, message: hickory_proto::op::Message, key: TsigKey) -> ResponseCode {
        let (reply, verdict) = oneshot::channel();
        let request = UpdateRequest {
            message,
            key,
            reply,
        };
        if self.sender.try_send(request).is_err() {
            return ResponseCode::ServFail;
        }
        match tokio::time::timeout(WRITER_TIMEOUT, verdict).await {
            Ok(Ok(code)) => code,
            Ok(Err(_)) | Err(_) => ResponseCode::ServFail,
        }
    }
}

/// What a server with no writer answers: every answer the listener decides alone (FORMERR,
/// REFUSED, NOTAUTH), and REFUSED for a correctly signed update. For fuzzing and tests.
pub fn answer_without_writer(keys: &[TsigKey], query: &[u8], limit: u16) -> UpdateReply {
    match tsig::check(keys, query, limit) {
        Checked::Answered(reply) => reply,
        Checked::Verified(verified) => verified.answer.finish(ResponseCode::Refused, limit),
    }
}
