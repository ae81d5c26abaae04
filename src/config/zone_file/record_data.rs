//! Record data rules shared by `records` entries and the `records_file`: which types can be
//! served statically, TXT string lengths, and names inside data made absolute.

use hickory_proto::ProtoError;
use hickory_proto::rr::rdata::{CNAME, MX, NS, PTR, SRV};
use hickory_proto::rr::{Name, RData, RecordType};

/// A record type that static data cannot hold.
#[derive(Debug, thiserror::Error)]
#[error("{0} records cannot be served statically")]
pub(super) struct UnservableType(RecordType);

/// Whether records of this type can be served from static data (SOA aside, which has its own
/// place).
pub(super) fn servable_type(record_type: RecordType) -> Result<(), UnservableType> {
    match record_type {
        RecordType::Unknown(_)
        | RecordType::OPT
        | RecordType::ANY
        | RecordType::AXFR
        | RecordType::IXFR
        | RecordType::TSIG
        | RecordType::NULL
        | RecordType::ZERO => Err(UnservableType(record_type)),
        _ => Ok(()),
    }
}

/// The length of a TXT character-string longer than DNS allows (255 bytes), if there is one.
pub(super) fn long_string(data: &RData) -> Option<usize> {
    match data {
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|string| string.len())
            .find(|&length| length > 255),
        _ => None,
    }
}

/// Names inside record data made absolute (relative to `origin`) and lower case, so that data
/// compares and answers the same however it was written.
pub(super) fn qualify_names(data: RData, origin: &Name) -> Result<RData, ProtoError> {
    let qualify = |name: &Name| -> Result<Name, ProtoError> {
        let name = if name.is_fqdn() {
            name.clone()
        } else {
            name.clone().append_domain(origin)?
        };
        Ok(name.to_lowercase())
    };
    Ok(match data {
        RData::CNAME(CNAME(target)) => RData::CNAME(CNAME(qualify(&target)?)),
        RData::NS(NS(target)) => RData::NS(NS(qualify(&target)?)),
        RData::PTR(PTR(target)) => RData::PTR(PTR(qualify(&target)?)),
        RData::MX(mx) => RData::MX(MX::new(mx.preference, qualify(&mx.exchange)?)),
        RData::SRV(srv) => RData::SRV(SRV::new(
            srv.priority,
            srv.weight,
            srv.port,
            qualify(&srv.target)?,
        )),
        other => other,
    })
}
