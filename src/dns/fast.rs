//! The fast path: the query shapes that make up nearly all of apidns's traffic — A or AAAA,
//! class IN, with or without a plain EDNS(0) OPT — for a pool name (its live records, or
//! NODATA), or for a name that does not exist in a served zone (NXDOMAIN: Kubernetes clients
//! with `ndots:5` send many, trying search domains). Answered by copying precomputed wire
//! bytes, with no parsing library, no allocation for pool names and no lock.
//!
//! An empty NSID option (RFC 5001) is answered here too, with the server's identifier, and so is a
//! COOKIE option (RFC 7873) with a fresh server cookie: resolvers send one with every query.
//! Anything else (another type or name, truncation, EDNS version > 0, a Client Subnet option, a
//! TSIG signature, a malformed cookie or one that gets BADCOOKIE, a malformed or unusual packet)
//! returns `None` and goes to the general path, which decides every such case. The
//! answer is the same message the general path builds (same header bits, question, records in
//! the same rotation, SOA, OPT), except for name compression: owner names point at the
//! question, and the SOA's own names are written whole.

use std::borrow::Cow;
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{LowerName, Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::cookie::{ANSWER_COOKIE_LEN, ClientCookie, OPTION_COOKIE};
use super::extensions::Extensions;
use super::reply::{Answered, CLASSIC_UDP_SIZE, Transport, size_limit};
use crate::zone::{Pool, Snapshot, Zone, ZoneLookup};

const HEADER_LEN: usize = 12;
const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const TYPE_OPT: u16 = 41;
const TYPE_SOA: u16 = 6;
const CLASS_IN: u16 = 1;
/// Our OPT record: root owner (1), type (2), class (2), TTL (4), RDATA length (2).
const OPT_LEN: usize = 11;
/// NSID (RFC 5001): an empty one asks for the server's identifier, which the fast path adds.
const OPTION_NSID: u16 = 3;
/// EDNS options the general path decides: Client Subnet (hickory checks its content).
const GENERAL_PATH_OPTIONS: [u16; 1] = [8];

/// What the fast path produced: the answer is in the caller's buffer. The zone is borrowed
/// from the snapshot: cloning its `Arc` would touch a reference count that every worker
/// thread shares, once per query.
#[derive(Debug, Clone)]
pub struct FastReply<'s> {
    pub qtype: RecordType,
    /// NOERROR (records or NODATA) or NXDOMAIN.
    pub rcode: ResponseCode,
    pub zone: &'s Arc<str>,
    /// The query returned a valid server cookie.
    pub address_proven: bool,
}

impl<'s> FastReply<'s> {
    /// The same summary the general path gives, for metrics, logs and rate limiting.
    pub fn answered(self) -> Answered<'s> {
        Answered {
            rcode: self.rcode,
            qtype: Some(self.qtype),
            zone: Some(Cow::Borrowed(self.zone)),
            address_proven: self.address_proven,
        }
    }
}

/// The parts of a query the fast path needs.
struct Question<'q> {
    id: [u8; 2],
    recursion_desired: bool,
    checking_disabled: bool,
    /// Name, type and class, exactly as sent (the answer echoes them).
    wire: &'q [u8],
    /// The name in lower case, wire format.
    lower: [u8; 255],
    lower_len: usize,
    qtype: u16,
    /// The client's EDNS: (UDP payload size, DO bit).
    edns: Option<(u16, bool)>,
    /// The query carries an empty NSID option.
    nsid_requested: bool,
    /// The data of the query's COOKIE option, when it has one.
    cookie: Option<&'q [u8]>,
}

/// Answers `query` into `out` (cleared first) when it has the fast shape; `None` otherwise,
/// with `out` left in an unspecified state.
pub fn answer<'s>(
    snapshot: &'s Snapshot,
    query: &[u8],
    transport: Transport,
    max_udp_payload: u16,
    out: &mut Vec<u8>,
) -> Option<FastReply<'s>> {
    answer_with(
        snapshot,
        query,
        transport,
        max_udp_payload,
        &Extensions::default(),
        out,
    )
}

/// [`answer`], with what the server adds beyond its zone data: the NSID (RFC 5001) for the
/// queries that ask for it, and a server cookie (RFC 7873) for the queries that carry a client
/// cookie, made exactly as the general path makes it.
pub fn answer_with<'s>(
    snapshot: &'s Snapshot,
    query: &[u8],
    transport: Transport,
    max_udp_payload: u16,
    extensions: &Extensions<'_>,
    out: &mut Vec<u8>,
) -> Option<FastReply<'s>> {
    let question = parse(query)?;
    let cookie = server_cookie(&question, transport, extensions)?;
    let record_type = match question.qtype {
        TYPE_A => RecordType::A,
        TYPE_AAAA => RecordType::AAAA,
        _ => return None,
    };
    let client_edns_size = question.edns.map(|(size, _)| size);
    let limit = usize::from(size_limit(transport, client_edns_size, max_udp_payload));
    let answer = Answer {
        question: &question,
        record_type,
        limit,
        max_udp_payload,
        nsid: extensions.nsid.filter(|_| question.nsid_requested),
        cookie,
    };
    match snapshot.fast_pool(&question.lower[..question.lower_len]) {
        Some((pool, zone)) => answer.pool_answer(snapshot, pool, zone, out),
        None => answer.nxdomain(snapshot, out),
    }
}

/// The cookie part of the answer: `Some(None)` when there is none to send, `Some(Some(..))`
/// with the server cookie, and `None` when the general path must answer (a malformed option is
/// FORMERR there; a required server cookie missing over UDP is BADCOOKIE).
fn server_cookie(
    question: &Question<'_>,
    transport: Transport,
    extensions: &Extensions<'_>,
) -> Option<Option<FastCookie>> {
    let (Some(data), Some(secrets), Some(client)) =
        (question.cookie, extensions.cookies, extensions.client)
    else {
        return Some(None);
    };
    let cookie = ClientCookie::read(data).ok()?;
    let now = extensions.now();
    let address_proven = secrets.verifies(&cookie, client, now);
    if !address_proven && extensions.require_server_cookie && transport == Transport::Udp {
        return None;
    }
    Some(Some(FastCookie {
        option: secrets.answer_bytes(&cookie, client, now),
        address_proven,
    }))
}

/// The COOKIE option the answer carries.
#[derive(Clone, Copy)]
struct FastCookie {
    /// The client cookie and the fresh server cookie.
    option: [u8; ANSWER_COOKIE_LEN],
    /// The query returned a valid server cookie.
    address_proven: bool,
}

/// One fast answer being written.
struct Answer<'q> {
    question: &'q Question<'q>,
    record_type: RecordType,
    /// The largest message the client takes.
    limit: usize,
    max_udp_payload: u16,
    /// The NSID to send: the server has one and the query asked for it.
    nsid: Option<&'q [u8]>,
    /// The COOKIE option to send.
    cookie: Option<FastCookie>,
}

impl Answer<'_> {
    /// The pool's live records in rotation, or NODATA when it has none of the asked family (a
    /// pool name carries no other records: the configuration refuses static ones there).
    fn pool_answer<'s>(
        &self,
        snapshot: &'s Snapshot,
        pool: &Pool,
        zone: &'s Arc<str>,
        out: &mut Vec<u8>,
    ) -> Option<FastReply<'s>> {
        let live = pool.live_guard();
        let records = match self.record_type {
            RecordType::A => &live.wire_v4,
            _ => &live.wire_v6,
        };
        if records.count() == 0 {
            let zone = snapshot
                .zones()
                .iter()
                .find(|candidate| Arc::ptr_eq(&candidate.label, zone))?;
            return self.negative(zone, ResponseCode::NoError, out);
        }
        let count = records.count().min(pool.config.max_answers());
        let answers_len = records.window(0, count).len();
        if HEADER_LEN + self.question.wire.len() + answers_len + self.opt_len() > self.limit {
            return None; // Truncation is the general path's business.
        }
        let start = pool.next_start(self.record_type, records.count());
        out.clear();
        write_header(out, self.question, ResponseCode::NoError, count as u16, 0);
        out.extend_from_slice(self.question.wire);
        out.extend_from_slice(records.window(start, count));
        self.write_opt(out);
        Some(FastReply {
            qtype: self.record_type,
            rcode: ResponseCode::NoError,
            zone,
            address_proven: self.address_proven(),
        })
    }

    /// NXDOMAIN, when the name is in a served zone, not below a delegation, and not there.
    /// Names outside every zone (REFUSED) and every other case go to the general path.
    fn nxdomain<'s>(&self, snapshot: &'s Snapshot, out: &mut Vec<u8>) -> Option<FastReply<'s>> {
        let name = LowerName::read(&mut BinDecoder::new(
            &self.question.lower[..self.question.lower_len],
        ))
        .ok()?;
        let zone = snapshot.find_zone(&name)?;
        if !matches!(zone.lookup(&name), ZoneLookup::NxDomain) {
            return None;
        }
        self.negative(zone, ResponseCode::NXDomain, out)
    }

    /// A negative answer: no records, the zone's SOA (with its negative TTL) in the authority
    /// section. The SOA's owner points at the zone's name inside the question.
    fn negative<'s>(
        &self,
        zone: &'s Zone,
        rcode: ResponseCode,
        out: &mut Vec<u8>,
    ) -> Option<FastReply<'s>> {
        let RData::SOA(soa) = &zone.negative_soa.data else {
            return None;
        };
        let owner = self
            .question
            .suffix_offset(usize::from(zone.origin.num_labels()))?;
        out.clear();
        write_header(out, self.question, rcode, 0, 1);
        out.extend_from_slice(self.question.wire);
        out.extend_from_slice(&(0xC000 | u16::try_from(HEADER_LEN + owner).ok()?).to_be_bytes());
        out.extend_from_slice(&TYPE_SOA.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&zone.negative_soa.ttl.to_be_bytes());
        let rdata_at = out.len();
        out.extend_from_slice(&[0, 0]);
        write_name(out, &soa.mname);
        write_name(out, &soa.rname);
        for value in [
            soa.serial,
            soa.refresh as u32,
            soa.retry as u32,
            soa.expire as u32,
            soa.minimum,
        ] {
            out.extend_from_slice(&value.to_be_bytes());
        }
        let rdata_len = u16::try_from(out.len() - rdata_at - 2).ok()?;
        out[rdata_at..rdata_at + 2].copy_from_slice(&rdata_len.to_be_bytes());
        self.write_opt(out);
        if out.len() > self.limit {
            return None; // Truncation is the general path's business.
        }
        Some(FastReply {
            qtype: self.record_type,
            rcode,
            zone: &zone.label,
            address_proven: self.address_proven(),
        })
    }

    fn address_proven(&self) -> bool {
        self.cookie.is_some_and(|cookie| cookie.address_proven)
    }

    fn opt_len(&self) -> usize {
        if self.question.edns.is_none() {
            return 0;
        }
        OPT_LEN
            + self.nsid.map_or(0, |nsid| 4 + nsid.len())
            + self.cookie.map_or(0, |_| 4 + ANSWER_COOKIE_LEN)
    }

    fn write_opt(&self, out: &mut Vec<u8>) {
        if let Some((_, dnssec_ok)) = self.question.edns {
            let cookie = self.cookie.as_ref().map(|cookie| &cookie.option[..]);
            write_opt(out, self.max_udp_payload, dnssec_ok, self.nsid, cookie);
        }
    }
}

/// `name` uncompressed, as configured.
fn write_name(out: &mut Vec<u8>, name: &Name) {
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
}

fn write_header(
    out: &mut Vec<u8>,
    question: &Question<'_>,
    rcode: ResponseCode,
    answers: u16,
    authorities: u16,
) {
    out.extend_from_slice(&question.id);
    // QR, opcode QUERY, AA, RD copied; RA never; CD copied; RCODE (NOERROR or NXDOMAIN: both
    // fit the header's four bits).
    out.push(0x84 | u8::from(question.recursion_desired));
    out.push(if question.checking_disabled { 0x10 } else { 0 } | (u16::from(rcode) & 0x0F) as u8);
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&answers.to_be_bytes());
    out.extend_from_slice(&authorities.to_be_bytes());
    out.extend_from_slice(&u16::from(question.edns.is_some()).to_be_bytes());
}

/// Our OPT record: root owner, our UDP size, extended RCODE 0, version 0, DO copied, then the
/// NSID and the COOKIE options when there are ones to send, in the order the general path
/// writes them (the configuration keeps the NSID far below 64 KiB).
fn write_opt(
    out: &mut Vec<u8>,
    max_udp_payload: u16,
    dnssec_ok: bool,
    nsid: Option<&[u8]>,
    cookie: Option<&[u8]>,
) {
    out.push(0);
    out.extend_from_slice(&TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&max_udp_payload.max(CLASSIC_UDP_SIZE).to_be_bytes());
    out.extend_from_slice(&[0, 0, if dnssec_ok { 0x80 } else { 0 }, 0]);
    let options = [(OPTION_NSID, nsid), (OPTION_COOKIE, cookie)];
    let rdata_len: usize = options
        .iter()
        .filter_map(|(_, data)| data.map(|data| 4 + data.len()))
        .sum();
    out.extend_from_slice(&(rdata_len as u16).to_be_bytes());
    for (code, data) in options {
        if let Some(data) = data {
            out.extend_from_slice(&code.to_be_bytes());
            out.extend_from_slice(&(data.len() as u16).to_be_bytes());
            out.extend_from_slice(data);
        }
    }
}

impl Question<'_> {
    /// Where, from the start of the question, the name's last `labels` labels begin.
    fn suffix_offset(&self, labels: usize) -> Option<usize> {
        let name = &self.lower[..self.lower_len];
        let mut offsets = [0usize; 128];
        let mut count = 0;
        let mut at = 0;
        while let Some(&length) = name.get(at).filter(|&&length| length != 0) {
            *offsets.get_mut(count)? = at;
            count += 1;
            at += 1 + usize::from(length);
        }
        match count.checked_sub(labels)? {
            skip if skip == count => Some(at), // the root: the final zero byte
            skip => offsets.get(skip).copied(),
        }
    }
}

/// Accepts exactly: a query (QR=0, opcode 0) with one question of class IN, no answer or
/// authority records, and either nothing after the question or one OPT record (root owner,
/// version 0, extended RCODE 0) that ends the packet. Names must be uncompressed.
fn parse(query: &[u8]) -> Option<Question<'_>> {
    let header = query.get(..HEADER_LEN)?;
    let flags = header[2];
    if flags & 0x80 != 0 || (flags >> 3) & 0x0F != 0 {
        return None;
    }
    let count = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
    if count(4) != 1 || count(6) != 0 || count(8) != 0 || count(10) > 1 {
        return None;
    }
    let mut lower = [0u8; 255];
    let mut at = HEADER_LEN;
    loop {
        let length = usize::from(*query.get(at)?);
        if length == 0 {
            *lower.get_mut(at - HEADER_LEN)? = 0;
            at += 1;
            break;
        }
        if length > 63 {
            return None; // a compression pointer or an extended label type
        }
        let label = query.get(at + 1..at + 1 + length)?;
        let into = lower.get_mut(at - HEADER_LEN..at - HEADER_LEN + 1 + length)?;
        into[0] = length as u8;
        for (to, from) in into[1..].iter_mut().zip(label) {
            *to = from.to_ascii_lowercase();
        }
        at += 1 + length;
    }
    let lower_len = at - HEADER_LEN;
    let tail = query.get(at..at + 4)?;
    let qtype = u16::from_be_bytes([tail[0], tail[1]]);
    if u16::from_be_bytes([tail[2], tail[3]]) != CLASS_IN {
        return None;
    }
    let wire = query.get(HEADER_LEN..at + 4)?;
    at += 4;
    let mut options = Options::default();
    let edns = if count(10) == 1 {
        // Root owner, TYPE OPT, CLASS = payload, TTL = ext-rcode, version, flags, then RDATA.
        let opt = query.get(at..at + 11)?;
        if opt[0] != 0
            || u16::from_be_bytes([opt[1], opt[2]]) != TYPE_OPT
            || opt[5] != 0
            || opt[6] != 0
        {
            return None;
        }
        let rdata_len = usize::from(u16::from_be_bytes([opt[9], opt[10]]));
        if query.len() != at + 11 + rdata_len {
            return None;
        }
        options = plain_options(&query[at + 11..])?;
        Some((u16::from_be_bytes([opt[3], opt[4]]), opt[7] & 0x80 != 0))
    } else {
        if query.len() != at {
            return None;
        }
        None
    };
    Some(Question {
        id: [header[0], header[1]],
        recursion_desired: flags & 0x01 != 0,
        checking_disabled: header[3] & 0x10 != 0,
        wire,
        lower,
        lower_len,
        qtype,
        edns,
        nsid_requested: options.nsid_requested,
        cookie: options.cookie,
    })
}

/// The EDNS options the fast path looks at.
#[derive(Default)]
struct Options<'q> {
    nsid_requested: bool,
    cookie: Option<&'q [u8]>,
}

/// `Some` when the EDNS options are well formed (code, length, data, exactly filling the RDATA)
/// and of kinds the fast path answers (an empty NSID, one COOKIE, padding, keepalive, unknown
/// codes); `None` sends the query to the general path.
fn plain_options(mut rdata: &[u8]) -> Option<Options<'_>> {
    let mut options = Options::default();
    while !rdata.is_empty() {
        let head = rdata.get(..4)?;
        let code = u16::from_be_bytes([head[0], head[1]]);
        let length = usize::from(u16::from_be_bytes([head[2], head[3]]));
        if GENERAL_PATH_OPTIONS.contains(&code) || (code == OPTION_NSID && length != 0) {
            return None;
        }
        let data = rdata.get(4..4 + length)?;
        options.nsid_requested |= code == OPTION_NSID;
        if code == OPTION_COOKIE {
            // Which of two cookies counts is the general path's (hickory's) business.
            if options.cookie.is_some() {
                return None;
            }
            options.cookie = Some(data);
        }
        rdata = &rdata[4 + length..];
    }
    Some(options)
}
