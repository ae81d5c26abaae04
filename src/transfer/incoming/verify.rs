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

#[cfg(test)]
mod tests {
    use hickory_proto::rr::rdata::tsig::{TSIG, make_tsig_record};
    use hickory_proto::rr::{Name, RecordType};

    use super::*;
    use crate::dns::tsig::{self, FUDGE};
    use crate::transfer::incoming::test_support::{answer, key, make_request, many_records, soa};

    /// A signed AXFR request and the primary side's answer in several messages, each signed.
    fn signed_transfer() -> (Chain, Vec<Vec<u8>>) {
        let request = make_request(RecordType::AXFR, None, true);
        let mut records = vec![soa(1)];
        records.extend(many_records(1000));
        records.push(soa(1));
        let messages = answer(&request, &records);
        assert!(messages.len() >= 3, "{} messages", messages.len());
        (request.chain.expect("a signed request"), messages)
    }

    fn verify_all(chain: &mut Chain, messages: &[Vec<u8>]) -> Result<(), FetchError> {
        for bytes in messages {
            let parsed = Message::from_vec(bytes).expect("the test's messages parse");
            chain.verify(bytes, &parsed, tsig::now())?;
        }
        chain.finish()
    }

    /// `bytes` without its TSIG record.
    fn strip(bytes: &[u8]) -> Vec<u8> {
        let mut message = Message::from_vec(bytes).expect("parses");
        message.signature = None;
        message.to_vec().expect("encodes")
    }

    /// `unsigned` signed as a message after the first whose MAC covers `previous_mac` and the
    /// unsigned messages `between` (RFC 8945 section 5.3.1), as a primary that signs only
    /// every so many messages does.
    fn sign_after(previous_mac: &[u8], between: &[Vec<u8>], unsigned: &[u8]) -> Vec<u8> {
        let key = key();
        let signer = TSigner::new(key.secret, key.algorithm, key.name, FUDGE).expect("signer");
        let time = tsig::now();
        let mut tbs = Vec::new();
        tbs.extend_from_slice(
            &u16::try_from(previous_mac.len())
                .expect("short")
                .to_be_bytes(),
        );
        tbs.extend_from_slice(previous_mac);
        for message in between {
            tbs.extend_from_slice(message);
        }
        tbs.extend_from_slice(unsigned);
        tbs.extend_from_slice(&((time >> 32) as u16).to_be_bytes());
        tbs.extend_from_slice(&(time as u32).to_be_bytes());
        tbs.extend_from_slice(&FUDGE.to_be_bytes());
        let mac = signer.sign(&tbs).expect("signs");
        let id = u16::from_be_bytes([unsigned[0], unsigned[1]]);
        let data = TSIG::new(
            signer.algorithm().clone(),
            time,
            FUDGE,
            mac,
            id,
            None,
            Vec::new(),
        );
        let mut signed = unsigned.to_vec();
        tsig::append(
            &mut signed,
            &make_tsig_record(signer.signer_name().clone(), data),
        )
        .expect("appends");
        signed
    }

    fn mac_of(bytes: &[u8]) -> Vec<u8> {
        let message = Message::from_vec(bytes).expect("parses");
        message.signature().expect("signed").data.mac.clone()
    }

    #[test]
    fn every_message_signed_by_the_primary_side_verifies() {
        let (mut chain, messages) = signed_transfer();
        verify_all(&mut chain, &messages).expect("the chain verifies");
    }

    #[test]
    fn a_tampered_middle_message_breaks_the_chain() {
        let (mut chain, mut messages) = signed_transfer();
        let middle = &mut messages[1];
        // A byte of a TXT record's data ('x'), far from the header and the TSIG record.
        let at = middle.len() / 2;
        assert_eq!(middle[at], b'x');
        middle[at] = b'y';
        assert!(matches!(
            verify_all(&mut chain, &messages),
            Err(FetchError::BadTsig(_))
        ));
    }

    #[test]
    fn a_last_message_without_a_signature_is_refused() {
        let (mut chain, mut messages) = signed_transfer();
        let last = messages.len() - 1;
        messages[last] = strip(&messages[last]);
        assert!(matches!(
            verify_all(&mut chain, &messages),
            Err(FetchError::BadTsig(why)) if why.contains("last message")
        ));
    }

    #[test]
    fn an_unsigned_first_message_is_refused() {
        let (mut chain, mut messages) = signed_transfer();
        messages[0] = strip(&messages[0]);
        assert!(matches!(
            verify_all(&mut chain, &messages),
            Err(FetchError::BadTsig(why)) if why.contains("first")
        ));
    }

    #[test]
    fn a_middle_message_left_unsigned_by_the_primary_is_covered_by_the_next_mac() {
        let (mut chain, messages) = signed_transfer();
        let between = vec![strip(&messages[1])];
        let next = sign_after(&mac_of(&messages[0]), &between, &strip(&messages[2]));
        let mut chain_copy = Chain::new(chain.signer.clone(), chain.previous_mac.clone());
        verify_all(
            &mut chain,
            &[messages[0].clone(), between[0].clone(), next.clone()],
        )
        .expect("an unsigned message between two signed ones");
        // The same signed message after a different unsigned one: its MAC no longer fits.
        let mut other = between[0].clone();
        let at = other.len() / 2;
        other[at] = b'y';
        assert!(verify_all(&mut chain_copy, &[messages[0].clone(), other, next]).is_err());
    }

    #[test]
    fn at_most_99_unsigned_messages_in_a_row() {
        let (mut chain, messages) = signed_transfer();
        let unsigned = strip(&messages[1]);
        let first = Message::from_vec(&messages[0]).expect("parses");
        chain
            .verify(&messages[0], &first, tsig::now())
            .expect("the first verifies");
        let parsed = Message::from_vec(&unsigned).expect("parses");
        for _ in 0..MAX_UNSIGNED_RUN {
            chain
                .verify(&unsigned, &parsed, tsig::now())
                .expect("allowed");
        }
        assert!(chain.verify(&unsigned, &parsed, tsig::now()).is_err());
    }

    #[test]
    fn an_answer_signed_with_another_key_is_refused() {
        let (_, messages) = signed_transfer();
        let mut other = key();
        other.name = Name::from_ascii("other-key.").expect("a name");
        let signer =
            TSigner::new(other.secret, other.algorithm, other.name, FUDGE).expect("signer");
        let mut chain = Chain::new(signer, vec![0; 32]);
        assert!(matches!(
            verify_all(&mut chain, &messages),
            Err(FetchError::BadTsig(why)) if why.contains("another key")
        ));
    }
}
