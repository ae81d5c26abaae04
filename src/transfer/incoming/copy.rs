//! What a secondary holds of a zone after a transfer: the primary's SOA and the other records.

use hickory_proto::rr::{Name, RData, Record};

/// What a secondary holds of a zone: the primary's SOA and every other record it sent (no SOA
/// among them), in canonical order (RFC 4034 section 6) without duplicates, so that two copies
/// of the same version compare equal however they were transferred (AXFR, or IXFR onto an
/// older copy). Equality of records is RFC 2136's: owner, class, type and data, not the TTL.
#[derive(Clone, Debug, PartialEq)]
pub struct ZoneCopy {
    /// The zone's apex, absolute.
    pub origin: Name,
    /// The primary's SOA record (its data is always `RData::SOA`).
    pub soa: Record,
    pub records: Vec<Record>,
}

impl ZoneCopy {
    /// A copy of `origin` from its SOA and the other records, put in canonical order and rid of
    /// duplicates. `None` when `soa` is not an SOA record.
    pub fn new(origin: Name, soa: Record, mut records: Vec<Record>) -> Option<Self> {
        soa_serial(&soa)?;
        records.sort();
        records.dedup();
        Some(Self {
            origin,
            soa,
            records,
        })
    }

    /// The serial of the copy's SOA.
    pub fn serial(&self) -> u32 {
        // `new` made sure the SOA is one; a copy built field by field with another record
        // type has no version, and 0 makes it older than any primary's serial but 0.
        soa_serial(&self.soa).unwrap_or(0)
    }
}

/// The serial of `record` when it is an SOA.
pub fn soa_serial(record: &Record) -> Option<u32> {
    match &record.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    }
}

/// Serial number arithmetic (RFC 1982 section 3.2): `a` is newer than `b`.
pub fn serial_greater(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < (1 << 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_compare_across_the_wrap() {
        assert!(serial_greater(2, 1));
        assert!(!serial_greater(1, 2));
        assert!(!serial_greater(7, 7));
        assert!(serial_greater(0, u32::MAX));
        assert!(serial_greater(5, u32::MAX - 3));
        assert!(!serial_greater(u32::MAX, 5));
    }
}
