//! TSIG (RFC 8945) for any message the server answers: checking a request's signature against
//! the configured keys (section 5.2) and signing the answer as the check decided (section 5.3).
//! Signed queries (here, in `message`) and signed updates (`crate::update::tsig`) share it.

use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::rr::rdata::tsig::{TSIG, TsigError};
use hickory_proto::rr::{Name, Record, TSigResponseContext, TSigner};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use crate::config::TsigKey;

/// The clock skew a signature may have (RFC 8945 recommends 300 seconds).
pub const FUDGE: u16 = 300;

/// The largest MAC a configured algorithm makes (HMAC-SHA512), for the room a signature takes.
const LARGEST_MAC: usize = 64;

/// How an answer is signed (RFC 8945 section 5.3).
#[derive(Clone)]
pub enum Signing {
    /// Not signed: the request carried no signature.
    Unsigned,
    /// BADKEY: an unsigned TSIG record naming the key the client used.
    UnknownKey(Name),
    /// BADSIG: an unsigned TSIG record.
    BadSignature(TSigner),
    /// Signed with the client's key, over the client's MAC.
    Signed {
        signer: TSigner,
        request_mac: Vec<u8>,
        /// BADTIME, signed, when the request's time is outside the fudge.
        error: Option<TsigError>,
    },
}

/// What the check of a signed request decided.
pub enum Verification {
    /// A correct signature, in time, by `key`: the answer is signed with `signing`.
    Valid { key: TsigKey, signing: Signing },
    /// NOTAUTH (BADKEY, BADSIG or BADTIME), its TSIG record made as `signing` says.
    Rejected(Signing),
    /// The key cannot be used: SERVFAIL, unsigned.
    Unusable,
}

/// Checks the signature of `request` (the whole message as received, its last additional
/// record `signature`) against `keys`, at `time` (seconds since the epoch).
pub fn verify(
    keys: &[TsigKey],
    request: &[u8],
    signature: &Record<TSIG>,
    time: u64,
) -> Verification {
    let tsig = &signature.data;
    let Some(key) = keys
        .iter()
        .find(|key| key.name == signature.name.to_lowercase() && key.algorithm == tsig.algorithm)
    else {
        return Verification::Rejected(Signing::UnknownKey(signature.name.clone()));
    };
    let Ok(signer) = TSigner::new(
        key.secret.clone(),
        key.algorithm.clone(),
        key.name.clone(),
        FUDGE,
    ) else {
        return Verification::Unusable;
    };
    // A time below the fudge cannot be right, and the library's window would underflow.
    if tsig.time < u64::from(tsig.fudge) {
        return Verification::Rejected(Signing::BadSignature(signer));
    }
    let (request_mac, window) = match signer.verify_message_byte(request, None, true) {
        Ok((mac, _, window)) => (mac, window),
        Err(_) => return Verification::Rejected(Signing::BadSignature(signer)),
    };
    if !(window.start..=window.end).contains(&time) {
        // RFC 8945 section 5.2.3: BADTIME is signed, so the client can trust the server's time.
        return Verification::Rejected(Signing::Signed {
            signer,
            request_mac,
            error: Some(TsigError::BadTime),
        });
    }
    Verification::Valid {
        key: key.clone(),
        signing: Signing::Signed {
            signer,
            request_mac,
            error: None,
        },
    }
}

impl Signing {
    /// The TSIG record for the answer `unsigned` (encoded without it) to request `id`, made at
    /// `time`; `None` for an unsigned answer, or when signing fails.
    pub fn sign(&self, id: u16, time: u64, unsigned: &[u8]) -> Option<Box<Record<TSIG>>> {
        let context = match self.clone() {
            Signing::Unsigned => return None,
            Signing::UnknownKey(name) => TSigResponseContext::unknown_key(id, time, name),
            Signing::BadSignature(signer) => TSigResponseContext::bad_signature(id, time, signer),
            Signing::Signed {
                signer,
                request_mac,
                error,
            } => TSigResponseContext::new(id, time, signer, request_mac, error),
        };
        context.sign(unsigned).ok()
    }

    /// At most how many bytes the TSIG record adds to an answer: the room to leave for it when
    /// the answer must fit the client's size limit. 0 for an unsigned answer.
    pub fn room(&self) -> usize {
        // `Name::len` is the text length; the wire form is one byte longer.
        let (name, algorithm) = match self {
            Signing::Unsigned => return 0,
            // The client's algorithm, echoed, can be any name: up to 255 bytes.
            Signing::UnknownKey(name) => (name.len() + 1, 255),
            Signing::BadSignature(signer) | Signing::Signed { signer, .. } => (
                signer.signer_name().len() + 1,
                signer.algorithm().to_name().len() + 1,
            ),
        };
        // Owner, type, class, TTL, RDLENGTH; algorithm name, time, fudge, MAC size, MAC,
        // original ID, error, other length, other data (BADTIME's time).
        name + 10 + algorithm + 6 + 2 + 2 + LARGEST_MAC + 2 + 2 + 2 + 6
    }

    /// True when the answer is signed (or carries an unsigned TSIG error record).
    pub fn is_signed(&self) -> bool {
        !matches!(self, Signing::Unsigned)
    }
}

/// Appends `record` to the encoded message `message` as its last additional record.
/// `None` (and `message` unchanged) when it cannot be encoded.
pub fn append(message: &mut Vec<u8>, record: &Record<TSIG>) -> Option<()> {
    let additional_count = u16::from_be_bytes([*message.get(10)?, *message.get(11)?]);
    let count = additional_count.checked_add(1)?.to_be_bytes();
    let mut encoded = Vec::with_capacity(128);
    let mut encoder = BinEncoder::new(&mut encoded);
    record.emit(&mut encoder).ok()?;
    message.extend_from_slice(&encoded);
    message[10..12].copy_from_slice(&count);
    Some(())
}

/// Seconds since the epoch, the time TSIG speaks in.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |age| age.as_secs())
}
