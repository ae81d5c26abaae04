//! Response rate limiting (RRL), as in BIND and Knot: UDP answers are cheap to trigger with a
//! spoofed source address, so identical answers to one client network are limited to
//! `responses_per_second`. Past the limit, every `slip`th answer is replaced by a truncated one
//! (TC=1, no records: no larger than the query), which sends a real client to TCP, where a
//! spoofer cannot follow; the rest are dropped. TCP is never limited.
//!
//! "Identical" means the same client network (an IPv4 /24 or IPv6 /56 by default) and:
//!
//! | answer | counted per |
//! |---|---|
//! | records (NOERROR with answers) | name and type |
//! | NODATA | name |
//! | NXDOMAIN, referral | zone: random names cannot each get their own allowance |
//! | errors (REFUSED, FORMERR, NOTIMP, ...) | client network alone |
//!
//! Each counter is a token bucket, as in BIND: it earns `responses_per_second` per second up to
//! one second's worth, every answer spends one, and its debt is capped at `window` seconds'
//! worth, so that a flood stays limited for up to `window` after it stops instead of being let
//! through in bursts.
//!
//! The table has a fixed size: [`SETS`] sets of [`WAYS`] counters, a counter's set chosen by a
//! keyed hash (SipHash with a random per-process key, so that nobody can aim collisions), and
//! the least recently used counter in a set is recycled. Memory stays the same whatever the
//! traffic. Each set has its own mutex, held for a few arithmetic operations, so that two UDP
//! sockets answering at once practically never wait for each other.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use hickory_proto::op::ResponseCode;

use crate::config::RrlSettings;
use crate::dns::Reply;

/// Sets in the table.
pub const SETS: usize = 4096;
/// Counters per set.
pub const WAYS: usize = 4;

/// What to do with one UDP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit: send the answer.
    Send,
    /// Limited, but this one is sent truncated so that a real client retries over TCP.
    Slip,
    /// Limited: send nothing.
    Drop,
}

/// One fixed-point token is a thousand of these, so that a millisecond earns whole units.
const UNITS_PER_RESPONSE: i64 = 1000;

#[derive(Debug, Clone, Copy, Default)]
struct Counter {
    /// 0 marks an unused counter; keys are never 0 (see `key`).
    key: u64,
    /// Milliseconds since the limiter's epoch of the last answer counted.
    last: u64,
    /// Allowance left, in units; negative is debt.
    balance: i64,
    /// Limited answers since the last slip.
    limited: u32,
}

/// The limiter shared by every UDP socket.
#[derive(Debug)]
pub struct ResponseRateLimiter {
    settings: RrlSettings,
    sets: Box<[Mutex<[Counter; WAYS]>]>,
    hasher: RandomState,
    epoch: Instant,
}

impl ResponseRateLimiter {
    pub fn new(settings: RrlSettings) -> Self {
        Self {
            settings,
            sets: (0..SETS)
                .map(|_| Mutex::new([Counter::default(); WAYS]))
                .collect(),
            hasher: RandomState::new(),
            epoch: Instant::now(),
        }
    }

    /// Decides what to do with `reply`, the answer to `query` from `client`.
    pub fn check(&self, client: IpAddr, query: &[u8], reply: &Reply) -> Verdict {
        // A client that returned a valid server cookie receives at its address: it cannot be a
        // spoofed victim, so it is not limited (as BIND does).
        if reply.address_proven {
            return Verdict::Send;
        }
        let now = self.epoch.elapsed().as_millis() as u64;
        self.check_key(self.key(client, query, reply), now)
    }

    /// The counter key: client network, kind of answer and what makes answers identical.
    fn key(&self, client: IpAddr, query: &[u8], reply: &Reply) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        match network(client, &self.settings) {
            IpAddr::V4(v4) => hasher.write(&v4.octets()),
            IpAddr::V6(v6) => hasher.write(&v6.octets()),
        }
        let zone = reply.zone.as_deref().unwrap_or("");
        match kind(reply) {
            Kind::Records => {
                hasher.write_u8(0);
                write_question_name(&mut hasher, query);
                hasher.write_u16(reply.qtype.map_or(0, u16::from));
            }
            Kind::NoData => {
                hasher.write_u8(1);
                write_question_name(&mut hasher, query);
            }
            Kind::Referral => {
                hasher.write_u8(2);
                hasher.write(zone.as_bytes());
            }
            Kind::NxDomain => {
                hasher.write_u8(3);
                hasher.write(zone.as_bytes());
            }
            Kind::Error => hasher.write_u8(4),
        }
        hasher.finish().max(1)
    }

    /// Counts one answer for `key` at `now` (milliseconds since the epoch).
    fn check_key(&self, key: u64, now: u64) -> Verdict {
        let rate = i64::from(self.settings.responses_per_second);
        let ceiling = rate * UNITS_PER_RESPONSE;
        let window_ms = self.settings.window.as_millis() as i64;
        let floor = -rate * window_ms;
        let set_index = (key as usize) % self.sets.len();
        let Some(set) = self.sets.get(set_index) else {
            return Verdict::Send;
        };
        let mut set = set.lock().unwrap_or_else(PoisonError::into_inner);

        let way = match set.iter().position(|counter| counter.key == key) {
            Some(way) => way,
            None => {
                // Recycle the least recently used counter (unused ones have `last` 0 too).
                let way = set
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, counter)| (counter.key != 0, counter.last))
                    .map_or(0, |(way, _)| way);
                if let Some(counter) = set.get_mut(way) {
                    *counter = Counter {
                        key,
                        last: now,
                        balance: ceiling,
                        limited: 0,
                    };
                }
                way
            }
        };
        let Some(counter) = set.get_mut(way) else {
            return Verdict::Send;
        };
        // Earned since the last answer: `rate` units per millisecond. Capping the time first
        // keeps the product far from overflowing; a full bucket takes one second to earn.
        let elapsed = now.saturating_sub(counter.last).min(3_600_000) as i64;
        counter.balance = (counter.balance + elapsed * rate).min(ceiling);
        counter.last = now;
        counter.balance = (counter.balance - UNITS_PER_RESPONSE).max(floor);
        if counter.balance >= 0 {
            counter.limited = 0;
            return Verdict::Send;
        }
        counter.limited = counter.limited.saturating_add(1);
        let slip = self.settings.slip;
        if slip > 0 && counter.limited % slip == 0 {
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Records,
    NoData,
    Referral,
    NxDomain,
    Error,
}

/// The kind of answer, read from the reply's header: rcode, AA and the section counts.
fn kind(reply: &Reply) -> Kind {
    let header = reply.bytes.get(..12).unwrap_or_default();
    let count = |at: usize| {
        header
            .get(at..at + 2)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
    };
    let authoritative = header.get(2).is_some_and(|flags| flags & 0x04 != 0);
    match reply.rcode {
        ResponseCode::NoError if count(6) > 0 => Kind::Records,
        ResponseCode::NoError if authoritative || count(8) == 0 => Kind::NoData,
        ResponseCode::NoError => Kind::Referral,
        ResponseCode::NXDomain => Kind::NxDomain,
        _ => Kind::Error,
    }
}

/// Hashes the question's name as the query spelled it, in lower case. Only the labels are read
/// (up to 255 bytes); a query `respond` answered has a readable question.
fn write_question_name(hasher: &mut impl Hasher, query: &[u8]) {
    let mut name = [0u8; 255];
    let mut length = 0;
    let mut at = 12;
    while let Some(&label) = query.get(at) {
        if label == 0 || label & 0xc0 != 0 {
            break;
        }
        let end = at + 1 + usize::from(label);
        let Some(bytes) = query.get(at..end) else {
            break;
        };
        let Some(slot) = name.get_mut(length..length + bytes.len()) else {
            break;
        };
        for (out, byte) in slot.iter_mut().zip(bytes) {
            *out = byte.to_ascii_lowercase();
        }
        length += bytes.len();
        at = end;
    }
    hasher.write(name.get(..length).unwrap_or_default());
}

/// The client's network: its address with the bits past the prefix length cleared.
fn network(client: IpAddr, settings: &RrlSettings) -> IpAddr {
    match client {
        IpAddr::V4(v4) => {
            let bits = u32::from(settings.ipv4_prefix_length.min(32));
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & mask).into())
        }
        IpAddr::V6(v6) => {
            let bits = u32::from(settings.ipv6_prefix_length.min(128));
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use hickory_proto::rr::RecordType;

    use super::*;

    fn settings(rate: u32, slip: u32, window_secs: u64) -> RrlSettings {
        RrlSettings {
            responses_per_second: rate,
            slip,
            window: Duration::from_secs(window_secs),
            ipv4_prefix_length: 24,
            ipv6_prefix_length: 56,
        }
    }

    fn verdicts(limiter: &ResponseRateLimiter, key: u64, now: u64, count: usize) -> Vec<Verdict> {
        (0..count).map(|_| limiter.check_key(key, now)).collect()
    }

    #[test]
    fn a_burst_of_one_seconds_worth_is_sent_then_slips_alternate_with_drops() {
        let limiter = ResponseRateLimiter::new(settings(5, 2, 15));
        let got = verdicts(&limiter, 42, 1000, 9);
        assert_eq!(got[..5], [Verdict::Send; 5]);
        assert_eq!(
            got[5..],
            [Verdict::Drop, Verdict::Slip, Verdict::Drop, Verdict::Slip]
        );
        // Another key is untouched.
        assert_eq!(limiter.check_key(43, 1000), Verdict::Send);
    }

    #[test]
    fn the_allowance_comes_back_at_the_rate_after_the_debt_is_paid() {
        let limiter = ResponseRateLimiter::new(settings(10, 0, 2));
        // 10 sent, then 100 limited: the debt stops at the window's 20 responses.
        let got = verdicts(&limiter, 7, 0, 110);
        assert_eq!(got.iter().filter(|v| **v == Verdict::Send).count(), 10);
        assert!(
            got[10..].iter().all(|v| *v == Verdict::Drop),
            "slip 0 drops all"
        );
        // After one second the client has earned 10 of its 20 debt back: still limited.
        assert_eq!(limiter.check_key(7, 1000), Verdict::Drop);
        // After the whole window (and the one it just spent), answers flow again.
        assert_eq!(limiter.check_key(7, 3200), Verdict::Send);
        // A client at a steady rate below the limit is never limited.
        let steady = ResponseRateLimiter::new(settings(10, 2, 15));
        for i in 0..200 {
            assert_eq!(steady.check_key(9, i * 150), Verdict::Send, "query {i}");
        }
    }

    #[test]
    fn slip_one_truncates_every_limited_answer() {
        let limiter = ResponseRateLimiter::new(settings(1, 1, 15));
        assert_eq!(
            verdicts(&limiter, 5, 0, 4),
            [Verdict::Send, Verdict::Slip, Verdict::Slip, Verdict::Slip]
        );
    }

    #[test]
    fn the_table_never_grows_and_recycles_the_least_recently_used() {
        let limiter = ResponseRateLimiter::new(settings(1, 0, 15));
        // Keys that all land in set 0.
        let keys: Vec<u64> = (1..=WAYS as u64 + 1).map(|i| i * SETS as u64).collect();
        for (time, key) in keys.iter().take(WAYS).enumerate() {
            assert_eq!(limiter.check_key(*key, time as u64), Verdict::Send);
            assert_eq!(limiter.check_key(*key, time as u64), Verdict::Drop);
        }
        // A fifth key takes the place of the first, which then starts afresh.
        assert_eq!(limiter.check_key(keys[WAYS], 10), Verdict::Send);
        assert_eq!(limiter.check_key(keys[0], 11), Verdict::Send);
        assert_eq!(limiter.check_key(keys[WAYS - 1], 12), Verdict::Drop);
        assert_eq!(limiter.sets.len(), SETS);
    }

    fn reply(bytes_header: [u8; 12], rcode: ResponseCode) -> Reply {
        Reply {
            address_proven: false,
            bytes: bytes_header.to_vec(),
            rcode,
            qtype: Some(RecordType::A),
            zone: Some(Arc::from("k8s.example.com.")),
        }
    }

    #[test]
    fn answers_are_told_apart_by_kind() {
        let answer = reply(
            [0, 0, 0x84, 0, 0, 1, 0, 2, 0, 0, 0, 0],
            ResponseCode::NoError,
        );
        assert_eq!(kind(&answer), Kind::Records);
        let nodata = reply(
            [0, 0, 0x84, 0, 0, 1, 0, 0, 0, 1, 0, 0],
            ResponseCode::NoError,
        );
        assert_eq!(kind(&nodata), Kind::NoData);
        let referral = reply(
            [0, 0, 0x80, 0, 0, 1, 0, 0, 0, 2, 0, 1],
            ResponseCode::NoError,
        );
        assert_eq!(kind(&referral), Kind::Referral);
        let nxdomain = reply(
            [0, 0, 0x84, 3, 0, 1, 0, 0, 0, 1, 0, 0],
            ResponseCode::NXDomain,
        );
        assert_eq!(kind(&nxdomain), Kind::NxDomain);
        let refused = reply(
            [0, 0, 0x80, 5, 0, 1, 0, 0, 0, 0, 0, 0],
            ResponseCode::Refused,
        );
        assert_eq!(kind(&refused), Kind::Error);
    }

    /// A query header and question for `name` (presentation form, no trailing dot).
    fn query_for(name: &str) -> Vec<u8> {
        let mut bytes = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            bytes.push(label.len() as u8);
            bytes.extend_from_slice(label.as_bytes());
        }
        bytes.extend_from_slice(&[0, 0, 1, 0, 1]);
        bytes
    }

    #[test]
    fn keys_share_a_network_and_a_name_in_any_case_but_not_a_type() {
        let limiter = ResponseRateLimiter::new(settings(5, 2, 15));
        let answer = reply(
            [0, 0, 0x84, 0, 0, 1, 0, 1, 0, 0, 0, 0],
            ResponseCode::NoError,
        );
        let a = "192.0.2.1".parse().unwrap();
        let b = "192.0.2.200".parse().unwrap();
        let other = "192.0.3.1".parse().unwrap();
        let api = query_for("api.k8s.example.com");
        let upper = query_for("API.k8s.Example.com");
        let key = limiter.key(a, &api, &answer);
        assert_eq!(limiter.key(b, &api, &answer), key, "same /24");
        assert_eq!(limiter.key(a, &upper, &answer), key, "case");
        assert_ne!(limiter.key(other, &api, &answer), key, "another /24");
        assert_ne!(
            limiter.key(a, &query_for("www.k8s.example.com"), &answer),
            key
        );
        let mut aaaa = answer.clone();
        aaaa.qtype = Some(RecordType::AAAA);
        assert_ne!(limiter.key(a, &api, &aaaa), key, "type");
        // NXDOMAIN for random names shares one counter per zone.
        let nxdomain = reply(
            [0, 0, 0x84, 3, 0, 1, 0, 0, 0, 1, 0, 0],
            ResponseCode::NXDomain,
        );
        assert_eq!(
            limiter.key(a, &query_for("x1.k8s.example.com"), &nxdomain),
            limiter.key(a, &query_for("x2.k8s.example.com"), &nxdomain)
        );
        let v6a = "2001:db8:0:100::1".parse().unwrap();
        let v6b = "2001:db8:0:1ff::2".parse().unwrap();
        let v6c = "2001:db8:0:200::1".parse().unwrap();
        assert_eq!(
            limiter.key(v6a, &api, &answer),
            limiter.key(v6b, &api, &answer),
            "same /56"
        );
        assert_ne!(
            limiter.key(v6a, &api, &answer),
            limiter.key(v6c, &api, &answer)
        );
        // Garbage after the header never panics and still gives a key.
        for query in [&[][..], &[0; 12][..], &[0xff; 40][..]] {
            assert_ne!(limiter.key(a, query, &answer), 0);
        }
    }
}
