//! The TSIG chain of a transfer's responses (RFC 8945 section 5.3.1), from the requester's
//! side: the first message's MAC covers the request's MAC and the whole first message with its
//! TSIG variables; each later signed message's MAC covers the previous MAC, every unsigned
//! message since, and itself, with only the TSIG timers. The first and last messages must be
//! signed, and at most [`MAX_UNSIGNED_RUN`] in a row may not be.
//!
//! hickory's `TSigVerifier` checks a chain where every message is signed; Knot and BIND sign
//! every message too, but the RFC lets a primary sign only every hundredth, so the unsigned
//! messages between are kept here and fed into the next MAC.

use hickory_proto::op::Message;
use hickory_proto::rr::TSigner;
use hickory_proto::rr::rdata::tsig::signed_bitmessage_to_buf;
use hickory_proto::serialize::binary::BinEncoder;

use super::error::FetchError;

/// Unsigned messages allowed in a row (RFC 8945 section 5.3.1: the client must accept up to
/// 99; a signed message at least every hundredth).
pub const MAX_UNSIGNED_RUN: usize = 99;

/// The state of the chain: what the next signed message's MAC must cover.
pub struct Chain {
    signer: TSigner,
    /// The request's MAC until the first response is verified, then the last verified MAC.
    previous_mac: Vec<u8>,
    /// The unsigned messages since the last signed one, as received, concatenated.
    unsigned: Vec<u8>,
    unsigned_run: usize,
    /// Whether the first response message has been verified.
    started: bool,
}

impl Chain {
    /// The chain of the responses to a request signed by `signer` with MAC `request_mac`.
    pub fn new(signer: TSigner, request_mac: Vec<u8>) -> Self {
        Self {
            signer,
            previous_mac: request_mac,
            unsigned: Vec::new(),
            unsigned_run: 0,
            started: false,
        }
    }

    /// Checks the next response message, `bytes` as received and `parsed` from them (parsed
    /// first: hickory's TSIG code adds the header's counts unchecked, which a message that
    /// parses cannot make overflow), at `now` (seconds since the epoch).
    pub fn verify(&mut self, bytes: &[u8], parsed: &Message, now: u64) -> Result<(), FetchError> {
        let Some(signature) = parsed.signature() else {
            if !self.started {
                return Err(bad("the first response is not signed"));
            }
            self.unsigned_run += 1;
            if self.unsigned_run > MAX_UNSIGNED_RUN {
                return Err(bad("more than 99 unsigned messages in a row"));
            }
            self.unsigned.extend_from_slice(bytes);
            return Ok(());
        };
        let tsig = &signature.data;
        if let Some(error) = tsig.error {
            return Err(FetchError::BadTsig(format!(
                "the primary rejected our signature ({error:?})"
            )));
        }
        if signature.name != *self.signer.signer_name()
            || tsig.algorithm != *self.signer.algorithm()
        {
            return Err(FetchError::BadTsig(format!(
                "signed with another key ({} {})",
                signature.name, tsig.algorithm
            )));
        }
        let to_verify = if self.started {
            self.following_digest(bytes)?
        } else {
            signed_bitmessage_to_buf(bytes, Some(&self.previous_mac), true)
                .map_err(|_| bad("the signed message cannot be read"))?
                .0
        };
        self.signer
            .verify(&to_verify, &tsig.mac)
            .map_err(|_| bad("the MAC does not verify"))?;
        let earliest = tsig.time.saturating_sub(u64::from(tsig.fudge));
        let latest = tsig.time.saturating_add(u64::from(tsig.fudge));
        if !(earliest..=latest).contains(&now) {
            return Err(bad("the signature's time is outside its fudge"));
        }
        self.previous_mac.clone_from(&tsig.mac);
        self.unsigned.clear();
        self.unsigned_run = 0;
        self.started = true;
        Ok(())
    }

    /// Whether the chain may end here: the last message received was signed.
    pub fn finish(&self) -> Result<(), FetchError> {
        if self.started && self.unsigned_run == 0 {
            Ok(())
        } else {
            Err(bad("the last message is not signed"))
        }
    }

    /// What a message after the first is signed over: the previous MAC with its size, the
    /// unsigned messages since, this message without its TSIG record, and the TSIG timers.
    fn following_digest(&self, bytes: &[u8]) -> Result<Vec<u8>, FetchError> {
        let (message_and_timers, _) = signed_bitmessage_to_buf(bytes, None, false)
            .map_err(|_| bad("the signed message cannot be read"))?;
        let mac_size = u16::try_from(self.previous_mac.len()).map_err(|_| bad("MAC too long"))?;
        let mut digest = Vec::with_capacity(
            2 + self.previous_mac.len() + self.unsigned.len() + message_and_timers.len(),
        );
        let mut encoder = BinEncoder::new(&mut digest);
        encoder
            .emit_u16(mac_size)
            .map_err(|_| bad("cannot encode the MAC size"))?;
        digest.extend_from_slice(&self.previous_mac);
        digest.extend_from_slice(&self.unsigned);
        digest.extend_from_slice(&message_and_timers);
        Ok(digest)
    }
}

fn bad(why: &str) -> FetchError {
    FetchError::BadTsig(why.to_string())
}
