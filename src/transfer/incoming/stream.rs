//! The messages of a transfer's answer, one at a time, as they come off the connection: each
//! checked (ID, question, response code, TSIG chain, records in the zone), the records
//! gathered, and the end found at the closing SOA. No network here, so that the fuzz target
//! and the unit tests drive it with messages of their own.

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::copy::{ZoneCopy, serial_greater, soa_serial};
use super::error::FetchError;
use super::ixfr;
use super::verify::Chain;

/// The most records a transfer may carry. apidns's zones are a few pools of at most hundreds
/// of members and some static records, thousands of records at the most; the copy is held in
/// memory (twice, while a new version is built), so a primary that streams without end must
/// not exhaust it. 200,000 leaves two orders of magnitude of room.
pub const MAX_RECORDS: usize = 200_000;
/// The most bytes of messages a transfer may carry, for the same reason: at about 100 bytes a
/// record on the wire, [`MAX_RECORDS`] fit with room to spare; empty or tiny messages cannot
/// go on past it.
pub const MAX_BYTES: usize = 64 * 1024 * 1024;

/// Where the answer is, between the messages received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Nothing yet: the first record must be the primary's SOA.
    Start,
    /// The SOA alone so far, answering an IXFR: the next record tells an incremental answer
    /// (another SOA) from a full one (anything else).
    AfterSoa,
    /// A full zone (AXFR, or AXFR-style to an IXFR), until the SOA again.
    Full,
    /// An incremental answer, in the records deleted by a difference.
    Deleting,
    /// An incremental answer, in the records added by a difference; an SOA with the first
    /// SOA's serial ends it, any other starts the next difference.
    Adding,
    /// The closing SOA has been received.
    Done,
}

/// What the answer turned out to be.
#[derive(Clone, Debug, PartialEq)]
pub enum Received {
    /// The primary's version is not newer than ours (the IXFR answered with its SOA alone).
    UpToDate { serial: u32 },
    /// The whole zone.
    Full(ZoneCopy),
    /// The differences from our version, already applied to it.
    Incremental(ZoneCopy),
}

/// The answer to one AXFR or IXFR request, received message by message.
pub struct Reception {
    origin: Name,
    qtype: RecordType,
    id: u16,
    /// The serial we hold, sent in the IXFR request.
    our_serial: Option<u32>,
    chain: Option<Chain>,
    stage: Stage,
    /// Every record of the answer so far, the first SOA included.
    records: Vec<Record>,
    bytes: usize,
    messages: usize,
    up_to_date: bool,
}

/// Whether the answer is complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    More,
    Done,
}

impl Reception {
    /// The answer to request `id` for `qtype` (AXFR or IXFR) of `origin`, where we hold
    /// `our_serial` (IXFR), verified by `chain` when the request was signed.
    pub fn new(
        origin: Name,
        qtype: RecordType,
        id: u16,
        our_serial: Option<u32>,
        chain: Option<Chain>,
    ) -> Self {
        Self {
            origin,
            qtype,
            id,
            our_serial,
            chain,
            stage: Stage::Start,
            records: Vec::new(),
            bytes: 0,
            messages: 0,
            up_to_date: false,
        }
    }

    /// Takes the next message, `bytes` as received (without the TCP length), checked at `now`
    /// (seconds since the epoch, for TSIG). `Done` once the closing SOA is in; a message after
    /// that is an error.
    pub fn receive(&mut self, bytes: &[u8], now: u64) -> Result<Progress, FetchError> {
        if self.stage == Stage::Done {
            return Err(malformed("a message after the closing SOA"));
        }
        self.bytes = self.bytes.saturating_add(bytes.len());
        if self.bytes > MAX_BYTES {
            return Err(FetchError::TooLarge("bytes"));
        }
        let message = Message::from_vec(bytes)
            .map_err(|error| malformed(&format!("a message does not parse: {error}")))?;
        if message.metadata.id != self.id {
            return Err(malformed("a message with another ID"));
        }
        if message.metadata.message_type != MessageType::Response
            || message.metadata.op_code != OpCode::Query
        {
            return Err(malformed("a message that is not a response to a query"));
        }
        if let Some(chain) = &mut self.chain {
            chain.verify(bytes, &message, now)?;
        }
        if message.metadata.response_code != ResponseCode::NoError {
            return Err(FetchError::Refused(message.metadata.response_code));
        }
        if message.metadata.truncation {
            return Err(malformed("a truncated message over TCP"));
        }
        self.check_question(&message)?;
        self.messages += 1;
        for record in message.answers {
            self.take(record)?;
        }
        // An IXFR answered with our version's SOA alone (RFC 1995 section 2): nothing newer.
        if self.stage == Stage::AfterSoa && self.messages == 1 {
            let serial = self.records.first().and_then(soa_serial);
            if let (Some(primary), Some(ours)) = (serial, self.our_serial)
                && !serial_greater(primary, ours)
            {
                self.stage = Stage::Done;
                self.up_to_date = true;
            }
        }
        if self.stage == Stage::Done {
            if let Some(chain) = &self.chain {
                chain.finish()?;
            }
            return Ok(Progress::Done);
        }
        Ok(Progress::More)
    }

    /// The answer, once [`Reception::receive`] said `Done`; `have` is the copy the IXFR
    /// differences apply to. `Incomplete` when the closing SOA never came.
    pub fn finish(self, have: Option<&ZoneCopy>) -> Result<Received, FetchError> {
        if self.stage != Stage::Done {
            return Err(FetchError::Incomplete);
        }
        let Some((first, rest)) = self.records.split_first() else {
            return Err(FetchError::Incomplete);
        };
        let serial = soa_serial(first).ok_or_else(|| malformed("no SOA first"))?;
        if self.up_to_date {
            return Ok(Received::UpToDate { serial });
        }
        let Some((_, body)) = rest.split_last() else {
            return Err(FetchError::Incomplete);
        };
        let incremental =
            self.qtype == RecordType::IXFR && body.first().and_then(soa_serial).is_some();
        if !incremental {
            let copy = ZoneCopy::new(self.origin, first.clone(), body.to_vec())
                .ok_or_else(|| malformed("no SOA first"))?;
            return Ok(Received::Full(copy));
        }
        let Some(have) = have else {
            return Err(FetchError::IxfrDoesNotApply(
                "an incremental answer with no copy to apply it to".to_string(),
            ));
        };
        let differences = ixfr::differences(body)?;
        ixfr::apply(have, &differences, first).map(Received::Incremental)
    }

    /// The question, when a message carries one, must be ours; the first must carry it (RFC
    /// 5936 section 2.2.1).
    fn check_question(&self, message: &Message) -> Result<(), FetchError> {
        match message.queries.as_slice() {
            [] if self.messages == 0 => Err(malformed("the first message has no question")),
            [] => Ok(()),
            [question] => {
                if question.name() != &self.origin {
                    return Err(FetchError::WrongZone(question.name().clone()));
                }
                if question.query_type() != self.qtype || question.query_class() != DNSClass::IN {
                    return Err(malformed("the question is not the one asked"));
                }
                Ok(())
            }
            _ => Err(malformed("more than one question")),
        }
    }

    /// One answer record, checked and kept; the stage moves on at each SOA.
    fn take(&mut self, record: Record) -> Result<(), FetchError> {
        if self.stage == Stage::Done {
            return Err(malformed("records after the closing SOA"));
        }
        if self.records.len() >= MAX_RECORDS {
            return Err(FetchError::TooLarge("records"));
        }
        let is_soa = matches!(record.data, RData::SOA(_));
        if self.stage == Stage::Start {
            if !is_soa {
                return Err(malformed("the first record is not the SOA"));
            }
            if record.name != self.origin {
                return Err(FetchError::WrongZone(record.name.clone()));
            }
        }
        if record.dns_class != DNSClass::IN {
            return Err(malformed(&format!(
                "a record of class {}",
                record.dns_class
            )));
        }
        if !self.origin.zone_of(&record.name) {
            return Err(malformed(&format!("{} is outside the zone", record.name)));
        }
        if is_soa && record.name != self.origin {
            return Err(malformed(&format!(
                "an SOA at {}, below the apex",
                record.name
            )));
        }
        if matches!(
            record.record_type(),
            RecordType::AXFR
                | RecordType::IXFR
                | RecordType::ANY
                | RecordType::OPT
                | RecordType::TSIG
        ) {
            return Err(malformed(&format!("a {} record", record.record_type())));
        }
        self.stage = self.next_stage(&record, is_soa)?;
        self.records.push(record);
        Ok(())
    }

    fn next_stage(&self, record: &Record, is_soa: bool) -> Result<Stage, FetchError> {
        let first = self.records.first();
        Ok(match (self.stage, is_soa) {
            (Stage::Start, _) if self.qtype == RecordType::IXFR => Stage::AfterSoa,
            (Stage::Start, _) => Stage::Full,
            // The SOA again at once: a full answer of a zone that holds nothing else (a
            // difference cannot start at the primary's own serial).
            (Stage::AfterSoa, true) if first.map(|soa| &soa.data) == Some(&record.data) => {
                Stage::Done
            }
            (Stage::AfterSoa, true) => Stage::Deleting,
            (Stage::AfterSoa, false) | (Stage::Full, false) => Stage::Full,
            (Stage::Full, true) => {
                if first.map(|soa| &soa.data) != Some(&record.data) {
                    return Err(malformed("the closing SOA is not the opening one"));
                }
                Stage::Done
            }
            (Stage::Deleting, false) => Stage::Deleting,
            (Stage::Deleting, true) => Stage::Adding,
            (Stage::Adding, false) => Stage::Adding,
            (Stage::Adding, true) => {
                if soa_serial(record) != first.and_then(soa_serial) {
                    Stage::Deleting
                } else if first.map(|soa| &soa.data) != Some(&record.data) {
                    return Err(malformed("the closing SOA is not the opening one"));
                } else {
                    Stage::Done
                }
            }
            (Stage::Done, _) => return Err(malformed("records after the closing SOA")),
        })
    }
}

fn malformed(why: &str) -> FetchError {
    FetchError::Malformed(why.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::incoming::test_support::{
        a, answer, copy, make_request, many_records, origin, receive, soa, txt,
    };

    const API: &str = "api.k8s.example.com.";

    fn have() -> ZoneCopy {
        copy(1, vec![a(API, [192, 0, 2, 11]), a(API, [192, 0, 2, 12])])
    }

    /// `records` between two SOAs of `serial`.
    fn full(serial: u32, records: Vec<Record>) -> Vec<Record> {
        let mut all = vec![soa(serial)];
        all.extend(records);
        all.push(soa(serial));
        all
    }

    fn received(
        qtype: RecordType,
        have: Option<&ZoneCopy>,
        records: &[Record],
    ) -> Result<Received, FetchError> {
        let request = make_request(qtype, have, true);
        let messages = answer(&request, records);
        receive(request, qtype, have, &messages)
    }

    #[test]
    fn an_axfr_in_many_signed_messages_is_the_whole_zone() {
        let records = many_records(1000);
        let result = received(RecordType::AXFR, None, &full(7, records.clone()));
        assert_eq!(result.expect("an answer"), Received::Full(copy(7, records)));
    }

    #[test]
    fn an_ixfr_answers_up_to_date_incremental_or_whole() {
        let have = have();
        assert_eq!(
            received(RecordType::IXFR, Some(&have), &[soa(1)]).expect("an answer"),
            (Received::UpToDate { serial: 1 })
        );
        let incremental = [
            soa(2),
            soa(1),
            a(API, [192, 0, 2, 12]),
            soa(2),
            a(API, [192, 0, 2, 13]),
            soa(2),
        ];
        assert_eq!(
            received(RecordType::IXFR, Some(&have), &incremental).expect("an answer"),
            (Received::Incremental(copy(
                2,
                vec![a(API, [192, 0, 2, 11]), a(API, [192, 0, 2, 13])]
            )))
        );
        // RFC 1995 section 4: the whole zone, in AXFR form.
        let whole = full(2, vec![txt("www.k8s.example.com.", "static")]);
        assert_eq!(
            received(RecordType::IXFR, Some(&have), &whole).expect("an answer"),
            (Received::Full(copy(2, vec![txt("www.k8s.example.com.", "static")])))
        );
        // A zone of its SOA alone.
        assert_eq!(
            received(RecordType::IXFR, Some(&have), &[soa(2), soa(2)]).expect("an answer"),
            (Received::Full(copy(2, Vec::new())))
        );
    }

    #[test]
    fn an_ixfr_that_does_not_apply_says_so() {
        let incremental = [soa(2), soa(1), a(API, [192, 0, 2, 99]), soa(2), soa(2)];
        assert!(matches!(
            received(RecordType::IXFR, Some(&have()), &incremental),
            Err(FetchError::IxfrDoesNotApply(_))
        ));
    }

    #[test]
    fn answers_that_break_the_protocol_are_refused() {
        let other_soa = {
            let mut record = soa(2);
            record.name = Name::from_ascii("example.org.").expect("a name");
            record
        };
        let cases: [(&str, Vec<Record>, &str); 6] = [
            (
                "no SOA first",
                vec![a(API, [192, 0, 2, 1]), soa(2)],
                "malformed",
            ),
            (
                "another zone's SOA",
                vec![other_soa.clone(), other_soa],
                "wrong_zone",
            ),
            (
                "a record outside the zone",
                full(2, vec![a("api.example.org.", [192, 0, 2, 1])]),
                "malformed",
            ),
            (
                "an SOA below the apex",
                full(2, {
                    let mut record = soa(2);
                    record.name = Name::from_ascii(API).expect("a name");
                    vec![record]
                }),
                "malformed",
            ),
            (
                "records after the closing SOA",
                [full(2, Vec::new()), vec![a(API, [192, 0, 2, 1])]].concat(),
                "malformed",
            ),
            (
                "a closing SOA that is not the first",
                vec![soa(2), soa(3)],
                "malformed",
            ),
        ];
        for (case, records, label) in cases {
            let result = received(RecordType::AXFR, None, &records);
            assert_eq!(
                result.as_ref().err().map(FetchError::label),
                Some(label),
                "{case}: {result:?}"
            );
        }
    }

    #[test]
    fn an_answer_without_its_closing_soa_is_incomplete() {
        let request = make_request(RecordType::AXFR, None, true);
        let messages = answer(&request, &full(2, many_records(1000)));
        let cut = &messages[..messages.len() - 1];
        assert!(matches!(
            receive(request, RecordType::AXFR, None, cut),
            Err(FetchError::Incomplete)
        ));
    }

    #[test]
    fn another_question_id_or_error_code_is_refused() {
        let request = make_request(RecordType::AXFR, None, false);
        let messages = answer(&request, &full(2, Vec::new()));
        let mut message = Message::from_vec(&messages[0]).expect("parses");

        let mut other_zone = message.clone();
        other_zone.queries[0].set_name(Name::from_ascii("example.org.").expect("a name"));
        let mut other_id = message.clone();
        other_id.metadata.id ^= 1;
        message.metadata.response_code = ResponseCode::Refused;
        message.answers.clear();
        for (case, bad, label) in [
            ("another zone", other_zone, "wrong_zone"),
            ("another ID", other_id, "malformed"),
            ("REFUSED", message, "refused"),
        ] {
            let request = make_request(RecordType::AXFR, None, false);
            let bytes = bad.to_vec().expect("encodes");
            let result = receive(request, RecordType::AXFR, None, &[bytes]);
            assert_eq!(
                result.as_ref().err().map(FetchError::label),
                Some(label),
                "{case}: {result:?}"
            );
        }
    }

    #[test]
    fn an_unsigned_answer_to_a_signed_request_is_refused() {
        let signed = make_request(RecordType::AXFR, None, true);
        let unsigned = make_request(RecordType::AXFR, None, false);
        let messages = answer(&unsigned, &full(2, Vec::new()));
        assert!(matches!(
            receive(signed, RecordType::AXFR, None, &messages),
            Err(FetchError::BadTsig(_))
        ));
    }

    #[test]
    fn an_answer_without_end_stops_at_the_limits() {
        let request = make_request(RecordType::AXFR, None, false);
        let mut records = vec![soa(2)];
        records.extend(many_records(300));
        let first = answer(&request, &records).remove(0);
        let mut next = Message::from_vec(&first).expect("parses");
        next.queries.clear();
        next.answers.remove(0);
        let per_message = next.answers.len();
        let next = next.to_vec().expect("encodes");
        let mut reception = Reception::new(origin(), RecordType::AXFR, request.id, None, None);
        assert_eq!(reception.receive(&first, 0).ok(), Some(Progress::More));
        let most = MAX_RECORDS / per_message + 2;
        let stopped = (0..most).find_map(|_| reception.receive(&next, 0).err());
        assert!(
            matches!(stopped, Some(FetchError::TooLarge(_))),
            "{stopped:?}"
        );
    }
}
