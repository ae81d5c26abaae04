//! Applying an incremental transfer (RFC 1995) to the copy a secondary holds: all or nothing,
//! on a copy of it, so that a difference that does not fit leaves the old copy as it was and
//! the caller falls back to AXFR.

use std::collections::HashMap;

use hickory_proto::rr::{DNSClass, Name, RData, Record};

use super::copy::{ZoneCopy, soa_serial};
use super::error::FetchError;

/// One version step of an IXFR: the records deleted from version `from` and added to make
/// version `to`.
#[derive(Clone, Debug)]
pub struct Difference {
    pub from: Record,
    pub deleted: Vec<Record>,
    pub to: Record,
    pub added: Vec<Record>,
}

/// The differences in `body`, the records of an incremental answer between its first and last
/// SOA: `SOA(from) deleted... SOA(to) added...`, repeated.
pub fn differences(body: &[Record]) -> Result<Vec<Difference>, FetchError> {
    let mut differences: Vec<Difference> = Vec::new();
    let mut records = body.iter().peekable();
    while let Some(from) = records.next() {
        if soa_serial(from).is_none() {
            return Err(mismatch("a difference does not start with an SOA"));
        }
        let deleted = take_until_soa(&mut records);
        let Some(to) = records.next() else {
            return Err(mismatch("a difference has no SOA before its additions"));
        };
        let added = take_until_soa(&mut records);
        differences.push(Difference {
            from: from.clone(),
            deleted,
            to: to.clone(),
            added,
        });
    }
    Ok(differences)
}

fn take_until_soa<'a>(
    records: &mut std::iter::Peekable<impl Iterator<Item = &'a Record>>,
) -> Vec<Record> {
    let mut taken = Vec::new();
    while let Some(record) = records.next_if(|record| soa_serial(record).is_none()) {
        taken.push(record.clone());
    }
    taken
}

/// What identifies a record in a zone (RFC 2136 section 1.1.1: owner, class and data, type
/// included in the data; not the TTL).
type RecordKey = (Name, DNSClass, RData);

fn key_of(record: &Record) -> RecordKey {
    (record.name.clone(), record.dns_class, record.data.clone())
}

/// `have` with `differences` applied in order, ending at the SOA `last`; `have` itself is not
/// touched. Fails, and nothing is kept, when a step does not start at the serial reached so
/// far, deletes a record the copy lacks or adds one it already holds, or when the steps do not
/// end at `last`'s serial.
pub fn apply(
    have: &ZoneCopy,
    differences: &[Difference],
    last: &Record,
) -> Result<ZoneCopy, FetchError> {
    let mut records: HashMap<RecordKey, Record> = have
        .records
        .iter()
        .map(|record| (key_of(record), record.clone()))
        .collect();
    let mut soa = have.soa.clone();
    for difference in differences {
        let serial = soa_serial(&soa);
        if soa_serial(&difference.from) != serial {
            return Err(mismatch(&format!(
                "a difference starts at serial {:?}, the copy is at {serial:?}",
                soa_serial(&difference.from)
            )));
        }
        for record in &difference.deleted {
            if records.remove(&key_of(record)).is_none() {
                return Err(mismatch(&format!(
                    "it deletes {} {}, which the copy does not hold",
                    record.name,
                    record.record_type()
                )));
            }
        }
        for record in &difference.added {
            if records.insert(key_of(record), record.clone()).is_some() {
                return Err(mismatch(&format!(
                    "it adds {} {}, which the copy already holds",
                    record.name,
                    record.record_type()
                )));
            }
        }
        soa = difference.to.clone();
    }
    if soa_serial(&soa) != soa_serial(last) {
        return Err(mismatch(&format!(
            "the differences end at serial {:?}, the transfer at {:?}",
            soa_serial(&soa),
            soa_serial(last)
        )));
    }
    ZoneCopy::new(
        have.origin.clone(),
        last.clone(),
        records.into_values().collect(),
    )
    .ok_or_else(|| mismatch("the closing record is not an SOA"))
}

fn mismatch(why: &str) -> FetchError {
    FetchError::IxfrDoesNotApply(why.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::incoming::test_support::{a, copy, soa, txt};

    const API: &str = "api.k8s.example.com.";

    fn have() -> ZoneCopy {
        copy(
            1,
            vec![
                a(API, [192, 0, 2, 11]),
                a(API, [192, 0, 2, 12]),
                txt("www.k8s.example.com.", "static"),
            ],
        )
    }

    #[test]
    fn chained_differences_apply_in_order() {
        let body = [
            soa(1),
            a(API, [192, 0, 2, 12]),
            soa(2),
            a(API, [192, 0, 2, 13]),
            soa(2),
            soa(3),
            txt("new.k8s.example.com.", "added"),
        ];
        let differences = differences(&body).expect("two differences");
        assert_eq!(differences.len(), 2);
        let updated = apply(&have(), &differences, &soa(3)).expect("they apply");
        assert_eq!(
            updated,
            copy(
                3,
                vec![
                    txt("new.k8s.example.com.", "added"),
                    a(API, [192, 0, 2, 13]),
                    a(API, [192, 0, 2, 11]),
                    txt("www.k8s.example.com.", "static"),
                ]
            )
        );
        assert_eq!(updated.serial(), 3);
    }

    #[test]
    fn a_deletion_matches_whatever_the_ttl_and_case() {
        let mut deleted = a("API.k8s.example.com.", [192, 0, 2, 12]);
        deleted.ttl = 5;
        let body = [soa(1), deleted, soa(2)];
        let updated =
            apply(&have(), &differences(&body).expect("parsed"), &soa(2)).expect("it applies");
        assert_eq!(updated.records.len(), 2);
    }

    #[test]
    fn a_difference_that_does_not_fit_applies_nothing() {
        let before = have();
        let cases: [(&str, Vec<Record>, Record); 5] = [
            (
                "deletes a record the copy lacks",
                vec![
                    soa(1),
                    a(API, [192, 0, 2, 11]),
                    a(API, [192, 0, 2, 99]),
                    soa(2),
                ],
                soa(2),
            ),
            (
                "adds a record the copy holds",
                vec![
                    soa(1),
                    soa(2),
                    a(API, [192, 0, 2, 13]),
                    a(API, [192, 0, 2, 11]),
                ],
                soa(2),
            ),
            (
                "starts at another serial",
                vec![soa(7), a(API, [192, 0, 2, 11]), soa(8)],
                soa(8),
            ),
            (
                "serials that do not chain",
                vec![soa(1), soa(2), soa(5), soa(6)],
                soa(6),
            ),
            (
                "ends short of the final SOA",
                vec![soa(1), a(API, [192, 0, 2, 11]), soa(2)],
                soa(3),
            ),
        ];
        for (case, body, last) in cases {
            let result = differences(&body).and_then(|found| apply(&before, &found, &last));
            assert!(
                matches!(result, Err(FetchError::IxfrDoesNotApply(_))),
                "{case}: {result:?}"
            );
            assert_eq!(before, have(), "{case}: the copy is untouched");
        }
    }

    #[test]
    fn a_difference_without_its_second_soa_is_no_difference() {
        assert!(differences(&[soa(1), a(API, [192, 0, 2, 11])]).is_err());
        assert!(differences(&[a(API, [192, 0, 2, 11]), soa(1), soa(2)]).is_err());
        assert!(differences(&[]).expect("none").is_empty());
    }
}
