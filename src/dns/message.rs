//! One DNS query in, at most one answer out: parsing, protocol checks, and encoding with
//! truncation. The listeners call [`respond_into`] for every message that is not an UPDATE
//! (those go to `crate::update`, chosen at the server's edge); any other opcode is answered
//! NOTIMP here. It never panics on any input, and no answer is larger than the client accepts.

use std::borrow::Cow;
use std::net::IpAddr;

use hickory_proto::op::{Edns, Header, Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption, NSIDPayload};
use hickory_proto::rr::rdata::tsig::TSIG;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncoder, DecodeError};
use hickory_server::zone_handler::{MessageResponseBuilder, Queries};

use super::answer::{Answer, resolve};
use super::cookie::{ClientCookie, CookieSecrets, Malformed, OPTION_COOKIE};
use super::extensions::Extensions;
use super::reply::{Answered, CLASSIC_UDP_SIZE, Reply, Transport, size_limit};
use super::tsig::{self, Signing, Verification};
use crate::zone::Snapshot;

/// A DNS header's length.
const HEADER_LEN: u16 = 12;
/// The smallest question on the wire: the root name (1 byte), type and class.
const MIN_QUESTION_SIZE: usize = 5;

/// Answers one query message: by the fast path when the query has its shape (see
/// [`super::fast`]), by the general path otherwise. `None` means send nothing.
pub fn respond(
    snapshot: &Snapshot,
    query: &[u8],
    transport: Transport,
    max_udp_payload: u16,
) -> Option<Reply> {
    let mut bytes = Vec::with_capacity(512);
    let answered = respond_into(snapshot, query, transport, max_udp_payload, &mut bytes)?;
    Some(answered.into_reply(bytes))
}

/// [`respond`] into `out` (replacing what it held): a caller that keeps `out` from one query
/// to the next answers fast-path queries without allocating. `None` means send nothing, and
/// leaves `out` in an unspecified state.
pub fn respond_into<'s>(
    snapshot: &'s Snapshot,
    query: &[u8],
    transport: Transport,
    max_udp_payload: u16,
    out: &mut Vec<u8>,
) -> Option<Answered<'s>> {
    let extensions = Extensions::default();
    respond_into_with(
        snapshot,
        query,
        transport,
        max_udp_payload,
        &extensions,
        out,
    )
}

/// [`respond_into`], with what the server adds beyond its zone data (see [`Extensions`]).
pub fn respond_into_with<'s>(
    snapshot: &'s Snapshot,
    query: &[u8],
    transport: Transport,
    max_udp_payload: u16,
    extensions: &Extensions<'_>,
    out: &mut Vec<u8>,
) -> Option<Answered<'s>> {
    if let Some(fast) =
        super::fast::answer_with(snapshot, query, transport, max_udp_payload, extensions, out)
    {
        return Some(fast.answered());
    }
    let reply = respond_general_with(snapshot, query, transport, max_udp_payload, extensions)?;
    // The general path allocates its own buffer; taking it is cheaper than copying it.
    *out = reply.bytes;
    Some(Answered {
        rcode: reply.rcode,
        qtype: reply.qtype,
        zone: reply.zone.map(Cow::Owned),
        address_proven: reply.address_proven,
    })
}

/// The general path: answers any message. `None` means send nothing: the bytes were too short to carry a
/// header, or they were a response (answering those invites reflection loops).
pub fn respond_general(
    snapshot: &Snapshot,
    query: &[u8],
    transport: Transport,
    max_udp_payload: u16,
) -> Option<Reply> {
    respond_general_with(
        snapshot,
        query,
        transport,
        max_udp_payload,
        &Extensions::default(),
    )
}

/// [`respond_general`], with what the server adds beyond its zone data (see [`Extensions`]).
pub fn respond_general_with(
    snapshot: &Snapshot,
    query: &[u8],
    transport: Transport,
    max_udp_payload: u16,
    extensions: &Extensions<'_>,
) -> Option<Reply> {
    respond_general_as(
        snapshot,
        query,
        transport,
        max_udp_payload,
        extensions,
        Limited::No,
    )
}

/// What a client the rate limiter holds back gets instead of its answer (RRL's "slip"): when
/// it sent a client cookie, BADCOOKIE with a fresh server cookie, which it returns on its retry
/// and so proves its address (BIND and Knot do this); otherwise the question alone with TC=1,
/// so that it retries over TCP. A signed query's slip is signed like any answer to it (RFC 8945
/// section 5.3). `None` means send nothing.
pub fn respond_limited(
    snapshot: &Snapshot,
    query: &[u8],
    transport: Transport,
    max_udp_payload: u16,
    extensions: &Extensions<'_>,
) -> Option<Reply> {
    respond_general_as(
        snapshot,
        query,
        transport,
        max_udp_payload,
        extensions,
        Limited::Slip,
    )
}

/// Whether the answer is the rate limiter's slip rather than the answer itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limited {
    No,
    Slip,
}

fn respond_general_as(
    snapshot: &Snapshot,
    query: &[u8],
    transport: Transport,
    max_udp_payload: u16,
    extensions: &Extensions<'_>,
    limited: Limited,
) -> Option<Reply> {
    let mut decoder = BinDecoder::new(query);
    let header = Header::read(&mut decoder).ok()?;
    if header.metadata.message_type == MessageType::Response {
        return None;
    }
    let mut metadata = Metadata::response_from_request(&header.metadata);

    let Ok(Body {
        queries,
        edns: request_edns,
        signature,
    }) = read_body(&mut decoder, &header)
    else {
        // The question cannot be trusted, so the answer is the header alone.
        metadata.response_code = ResponseCode::FormErr;
        return Some(Reply::bare(header_only(metadata), ResponseCode::FormErr));
    };

    // RFC 7873 section 5.2.2: a COOKIE option of a wrong length is a format error.
    let cookie = match client_cookie(request_edns.as_ref(), extensions) {
        Ok(cookie) => cookie,
        Err(Malformed) => {
            metadata.response_code = ResponseCode::FormErr;
            return Some(Reply::bare(header_only(metadata), ResponseCode::FormErr));
        }
    };
    let response_edns = request_edns
        .as_ref()
        .map(|request| response_edns(request, max_udp_payload, extensions, cookie.as_ref()));
    let now = extensions.now();
    let address_proven =
        cookie.is_some_and(|(cookie, secrets, client)| secrets.verifies(&cookie, client, now));
    let edns_ref = response_edns.as_ref();
    let limit = size_limit(
        transport,
        request_edns.as_ref().map(Edns::max_payload),
        max_udp_payload,
    );
    // RFC 8945 section 5.2: the signature is checked before anything else in the query.
    let time = if signature.is_some() { tsig::now() } else { 0 };
    let (signing, tsig_error) = check_signature(query, signature.as_deref(), extensions, time);
    // A signed answer keeps room for its signature within the client's limit.
    let signed = Signed {
        signing: &signing,
        id: header.metadata.id,
        time,
    };
    let limit = signed.limit_for_body(limit);
    let error = tsig_error.or_else(|| protocol_error(&header, request_edns.as_ref(), &queries));
    // RFC 7873 section 5.2.3 and 5.2.4: over UDP, a client cookie without a valid server cookie
    // gets BADCOOKIE when the server requires one, or when the client is rate limited (it can
    // then prove its address on the retry, where a TC answer would send it to TCP).
    let badcookie = cookie.is_some()
        && !address_proven
        && transport == Transport::Udp
        && (limited == Limited::Slip || extensions.require_server_cookie);
    let error = error.or(badcookie.then_some(ResponseCode::BADCOOKIE));
    if let Some(code) = error {
        metadata.response_code = code;
        let mut bytes = encode_error(metadata, &queries, edns_ref, limit);
        // A slipped error keeps its code, with TC=1 as every slip but BADCOOKIE.
        if limited == Limited::Slip && code != ResponseCode::BADCOOKIE {
            set_truncation(&mut bytes);
        }
        let bytes = signed.sign(bytes);
        let mut reply = Reply::bare(bytes, code);
        reply.address_proven = address_proven;
        reply.qtype = queries.queries().first().map(|q| q.query_type());
        return Some(reply);
    }

    let question = &queries.queries()[0];
    let answer = resolve(
        snapshot,
        question.name(),
        question.query_type(),
        question.query_class(),
    );
    metadata.response_code = answer.rcode;
    metadata.authoritative = answer.authoritative;
    if limited == Limited::Slip {
        // The question alone, with TC=1: never larger than the query plus our OPT.
        let mut bytes = encode_error(metadata, &queries, edns_ref, limit);
        set_truncation(&mut bytes);
        let mut reply = Reply::bare(signed.sign(bytes), answer.rcode);
        reply.qtype = Some(question.query_type());
        reply.zone = answer.zone;
        return Some(reply);
    }
    Some(Reply {
        bytes: signed.sign(encode_answer(metadata, &queries, edns_ref, &answer, limit)),
        rcode: answer.rcode,
        qtype: Some(question.query_type()),
        zone: answer.zone,
        address_proven,
    })
}

/// Why a query is answered with an error and no data: an EDNS version we do not speak, an
/// opcode other than QUERY, or other than one question.
fn protocol_error(header: &Header, edns: Option<&Edns>, queries: &Queries) -> Option<ResponseCode> {
    if edns.is_some_and(|edns| edns.version() > 0) {
        Some(ResponseCode::BADVERS)
    } else if header.metadata.op_code != OpCode::Query {
        Some(ResponseCode::NotImp)
    } else if queries.len() != 1 {
        Some(ResponseCode::FormErr)
    } else {
        None
    }
}

/// The OPT record of the answer to a query that had one: our payload size, version 0, the
/// query's DO bit, and the NSID and server cookie when the query asked for them.
fn response_edns(
    request: &Edns,
    max_udp_payload: u16,
    extensions: &Extensions<'_>,
    cookie: Option<&(ClientCookie<'_>, &CookieSecrets, IpAddr)>,
) -> Edns {
    let mut edns = Edns::new();
    edns.set_max_payload(max_udp_payload.max(CLASSIC_UDP_SIZE));
    edns.set_version(0);
    // RFC 3225: the DO bit is copied from the query (we sign nothing, so it changes nothing).
    edns.set_dnssec_ok(request.flags().dnssec_ok);
    if let Some(nsid) = nsid_to_send(request, extensions) {
        edns.options_mut().insert(EdnsOption::NSID(nsid));
    }
    if let Some((cookie, secrets, client)) = cookie {
        let data = secrets.answer(cookie, *client, extensions.now());
        edns.options_mut()
            .insert(EdnsOption::Unknown(OPTION_COOKIE, data));
    }
    edns
}

/// How the answer is signed, and the error a bad signature gets (RFC 8945 section 5.2).
fn check_signature(
    query: &[u8],
    signature: Option<&Record<TSIG>>,
    extensions: &Extensions<'_>,
    time: u64,
) -> (Signing, Option<ResponseCode>) {
    let Some(signature) = signature else {
        return (Signing::Unsigned, None);
    };
    let keys = extensions
        .tsig_keys
        .map(|keys| keys.load_full())
        .unwrap_or_default();
    match tsig::verify(&keys, query, signature, time) {
        Verification::Valid { signing, .. } => (signing, None),
        Verification::Rejected(signing) => (signing, Some(ResponseCode::NotAuth)),
        Verification::Unusable => (Signing::Unsigned, Some(ResponseCode::ServFail)),
    }
}

/// The query's COOKIE option, when the server answers cookies and knows the client's address,
/// with what answering it needs; `Err` when the option is malformed.
fn client_cookie<'q, 'e>(
    request: Option<&'q Edns>,
    extensions: &Extensions<'e>,
) -> Result<Option<(ClientCookie<'q>, &'e CookieSecrets, IpAddr)>, Malformed> {
    let (Some(request), Some(secrets), Some(client)) =
        (request, extensions.cookies, extensions.client)
    else {
        return Ok(None);
    };
    match request.option(EdnsCode::Cookie) {
        Some(EdnsOption::Unknown(_, data)) => {
            Ok(Some((ClientCookie::read(data)?, secrets, client)))
        }
        // hickory reads COOKIE as an option it does not know; anything else is not a cookie.
        _ => Ok(None),
    }
}

/// How the answer to a query is signed (RFC 8945 section 5.3), and what it needs to be.
struct Signed<'a> {
    signing: &'a Signing,
    id: u16,
    time: u64,
}

impl Signed<'_> {
    /// The limit for the answer before its signature: `limit` less the room the signature
    /// takes, so that the signed answer (a TC one included) stays within the client's limit.
    fn limit_for_body(&self, limit: u16) -> u16 {
        let room = u16::try_from(self.signing.room()).unwrap_or(u16::MAX);
        limit.saturating_sub(room).max(HEADER_LEN)
    }

    /// `unsigned` with its TSIG record appended, when the answer is to be signed. An answer
    /// that cannot be signed still goes out, with its response code, unsigned.
    fn sign(&self, mut unsigned: Vec<u8>) -> Vec<u8> {
        if let Some(record) = self.signing.sign(self.id, self.time, &unsigned) {
            // Appending leaves `unsigned` as it was when it fails.
            let _ = tsig::append(&mut unsigned, &record);
        }
        unsigned
    }
}

/// The server's NSID, when it has one and the query asked for it with an empty NSID option
/// (RFC 5001 section 2.1: a request carries no data; one that does gets no NSID).
fn nsid_to_send(request: &Edns, extensions: &Extensions<'_>) -> Option<NSIDPayload> {
    let asked = matches!(request.option(EdnsCode::NSID), Some(EdnsOption::NSID(payload)) if payload.as_ref().is_empty());
    let nsid = extensions.nsid.filter(|_| asked)?;
    NSIDPayload::new(nsid).ok()
}

/// The question and the OPT record; the other sections of a query are read only to check them.
/// What the general path reads from a query's body.
struct Body {
    queries: Queries,
    edns: Option<Edns>,
    /// The TSIG record, when the query is signed.
    signature: Option<Box<Record<TSIG>>>,
}

fn read_body(decoder: &mut BinDecoder<'_>, header: &Header) -> Result<Body, DecodeError> {
    let counts = header.counts;
    let op_code = header.metadata.op_code;
    // Every question takes at least 5 bytes (the root name, type and class). Checking first
    // keeps a 12-byte header that claims 65535 questions from reserving room for all of them.
    if usize::from(counts.queries) * MIN_QUESTION_SIZE > decoder.len() {
        return Err(DecodeError::InsufficientBytes);
    }
    let questions_start = decoder.index();
    let queries = Queries::read(decoder, counts.queries as usize)?;
    if !pointers_stay_in_questions(decoder, questions_start, queries.len()) {
        return Err(DecodeError::InsufficientBytes);
    }
    Message::read_records(decoder, counts.answers as usize, false, op_code)?;
    Message::read_records(decoder, counts.authorities as usize, false, op_code)?;
    let (_, edns, signature) =
        Message::read_records(decoder, counts.additionals as usize, true, op_code)?;
    Ok(Body {
        queries,
        edns,
        signature,
    })
}

/// An error response: the question(s) echoed, and the OPT record when the query had one. When
/// that does not fit in `limit` (a UDP query can carry many questions, and the answer must not
/// be larger than the client accepts), the questions are left out: the header and the OPT
/// still carry the response code.
/// True when every compression pointer in the question names, followed the way a decoder
/// follows them, lands in the question section. The answer echoes the question's bytes as they
/// came, at the same offset; a pointer into the header (which a decoder accepts, since it is
/// "prior" to the name) would point at different bytes in the answer and make it garbage. No
/// real query does this: the question is the first name in a message, with nothing to point at.
fn pointers_stay_in_questions(decoder: &BinDecoder<'_>, start: usize, questions: usize) -> bool {
    // `start` is the offset of the first question, right after the header.
    let message = decoder.slice_from(0).unwrap_or_default();
    let mut next_question = start;
    for _ in 0..questions {
        let mut position = next_question;
        let mut end_of_name = None;
        // The decoder has already refused loops and forward pointers; this only bounds the walk.
        let mut hops = 0;
        loop {
            let Some(&byte) = message.get(position) else {
                return false;
            };
            if byte == 0 {
                end_of_name.get_or_insert(position + 1);
                break;
            }
            if byte & 0xc0 != 0xc0 {
                position += 1 + usize::from(byte & 0x3f);
                continue;
            }
            let Some(&low) = message.get(position + 1) else {
                return false;
            };
            end_of_name.get_or_insert(position + 2);
            position = usize::from(byte & 0x3f) << 8 | usize::from(low);
            hops += 1;
            if position < start || hops > 127 {
                return false;
            }
        }
        // Type and class follow the name.
        next_question = end_of_name.unwrap_or(position) + 4;
    }
    true
}

fn encode_error(metadata: Metadata, queries: &Queries, edns: Option<&Edns>, limit: u16) -> Vec<u8> {
    let answer = Answer {
        rcode: metadata.response_code,
        authoritative: false,
        answers: Vec::new(),
        authority: Vec::new(),
        additional: Vec::new(),
        zone: None,
    };
    let mut buffer = Vec::with_capacity(512);
    if emit_within(&mut buffer, metadata, queries, edns, &answer, false, limit) {
        return buffer;
    }
    let no_questions = Queries::read(&mut BinDecoder::new(&[]), 0);
    if let (Ok(no_questions), Some(edns)) = (no_questions, edns) {
        let mut builder = MessageResponseBuilder::new(&no_questions, None);
        builder.edns(edns);
        buffer.clear();
        let mut encoder = BinEncoder::new(&mut buffer);
        if builder
            .build_no_records(metadata)
            .destructive_emit(&mut encoder)
            .is_ok()
        {
            return buffer;
        }
    }
    header_only(metadata)
}

/// Encodes the answer within `limit` bytes. An answer that fits only without its additional
/// section is sent without it: TC is not for extra data (RFC 2181 section 9), and an NS answer
/// is complete without addresses. A referral is the exception, since a resolver may not get
/// any further without its glue (RFC 9471). When the rest does not fit either, the client gets
/// the question alone with TC=1 (and its OPT), and asks again over TCP: a partial answer would
/// only be thrown away by resolvers, and a partial additional section could hide glue.
fn encode_answer(
    metadata: Metadata,
    queries: &Queries,
    edns: Option<&Edns>,
    answer: &Answer,
    limit: u16,
) -> Vec<u8> {
    let mut buffer = Vec::with_capacity(512);
    if emit_within(&mut buffer, metadata, queries, edns, answer, true, limit) {
        return buffer;
    }
    // AA is clear on referrals (and on refusals, which carry no additional section).
    let droppable = answer.authoritative && !answer.additional.is_empty();
    if droppable && emit_within(&mut buffer, metadata, queries, edns, answer, false, limit) {
        return buffer;
    }

    let mut truncated = metadata;
    truncated.truncation = true;
    buffer.clear();
    let mut builder = MessageResponseBuilder::new(queries, None);
    if let Some(edns) = edns {
        builder.edns(edns);
    }
    let mut encoder = BinEncoder::new(&mut buffer);
    if builder
        .build_no_records(truncated)
        .destructive_emit(&mut encoder)
        .is_ok()
    {
        return buffer;
    }
    // Only a question too large for any message gets here; answer with the bare header.
    let mut failure = metadata;
    failure.response_code = ResponseCode::ServFail;
    header_only(failure)
}

/// Encodes the answer (with or without its additional section) into `buffer`; true when all
/// of it fits in `limit` bytes.
fn emit_within(
    buffer: &mut Vec<u8>,
    metadata: Metadata,
    queries: &Queries,
    edns: Option<&Edns>,
    answer: &Answer,
    with_additional: bool,
    limit: u16,
) -> bool {
    buffer.clear();
    let mut builder = MessageResponseBuilder::new(queries, None);
    if let Some(edns) = edns {
        builder.edns(edns);
    }
    let additional: &[Record] = if with_additional {
        &answer.additional
    } else {
        &[]
    };
    let response = builder.build(
        metadata,
        answer.answers.iter(),
        answer.authority.iter(),
        std::iter::empty(),
        additional.iter(),
    );
    let mut encoder = BinEncoder::new(buffer);
    encoder.set_max_size(limit);
    matches!(response.destructive_emit(&mut encoder), Ok(header) if !header.truncation)
}

/// `reply` cut down to its header, question and OPT record, with TC=1: the slip of an answer
/// the limiter cannot remake from its query (an UPDATE's; a query's slip comes from
/// [`respond_limited`]), so that the client retries over TCP. It is never larger than the
/// reply, nor than the query plus the OPT record. `None` when `reply` is not a message
/// `respond` made, or was signed (see below).
pub fn truncated(reply: &[u8]) -> Option<Vec<u8>> {
    let mut message = Message::from_vec(reply).ok()?;
    message.answers.clear();
    message.authorities.clear();
    message.additionals.clear();
    // A TSIG signature covered the whole answer and would not verify for this one, and an
    // unsigned answer to a signed message is one its sender must discard (RFC 8945 section
    // 5.3.1): nothing is sent. Queries get a signed slip from [`respond_limited`].
    if message.take_signature().is_some() {
        return None;
    }
    message.metadata.truncation = true;
    message.to_vec().ok()
}

/// Sets TC=1 in an encoded message, after encoding: the encoder reads a TC bit as "this did
/// not fit" (see [`emit_within`]).
fn set_truncation(message: &mut [u8]) {
    if let Some(flags) = message.get_mut(2) {
        *flags |= 0x02;
    }
}

/// A response of the header alone, no sections.
fn header_only(metadata: Metadata) -> Vec<u8> {
    let header = Header {
        metadata,
        counts: Default::default(),
    };
    let mut buffer = Vec::with_capacity(12);
    let mut encoder = BinEncoder::new(&mut buffer);
    // A 12-byte header always encodes into an unbounded buffer.
    let _ = hickory_proto::serialize::binary::BinEncodable::emit(&header, &mut encoder);
    buffer
}
