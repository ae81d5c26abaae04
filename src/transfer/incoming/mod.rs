//! Zone transfers in: the secondary's side of AXFR (RFC 5936) and IXFR (RFC 1995), and the SOA
//! query a refresh starts with. Library code with no state of its own: the secondary zone
//! (its timers, its copy in `state_dir`, NOTIFY receipt) calls [`fetch`] and [`soa_serial`]
//! and keeps what they return.
//!
//! - [`copy`]: [`ZoneCopy`], what a secondary holds of a zone;
//! - [`request`]: the AXFR, IXFR and SOA requests, signed when a key is given;
//! - [`stream`]: the answer's messages checked one by one and the end found (no network,
//!   so that tests and the fuzz target drive it);
//! - [`verify`]: the TSIG chain over the answer's messages (RFC 8945 section 5.3.1);
//! - [`ixfr`]: an incremental answer applied to our copy, all or nothing;
//! - [`soa`]: the SOA answer read;
//! - [`client`]: TCP and UDP to the primary.
//!
//! Nothing the network sends can leave a partial copy: a fetch returns a whole new copy or an
//! error, and the caller's copy is only read.

pub mod client;
pub mod copy;
pub mod error;
pub mod ixfr;
pub mod request;
pub mod soa;
pub mod stream;
pub mod verify;

#[cfg(test)]
mod test_support;

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};
use tracing::debug;

pub use copy::ZoneCopy;
pub use error::FetchError;

use crate::config::TsigKey;
use crate::dns::tsig;
use soa::SoaAnswer;
use stream::{Received, Reception};

/// What a fetch brought.
#[derive(Clone, Debug, PartialEq)]
pub enum Fetched {
    /// The primary's serial is not newer than ours (RFC 1982 serial arithmetic).
    UpToDate { serial: u32 },
    /// The whole zone (an AXFR, or a primary that answered IXFR with the full zone).
    Axfr(ZoneCopy),
    /// The result of an IXFR, already applied to the copy we had.
    Ixfr(ZoneCopy),
}

/// Brings the zone `origin` from `primary`, signed with `key` when given: by IXFR from `have`
/// when we hold a copy, else (and whenever the IXFR fails in a way AXFR may not: refused,
/// not implemented, or differences that do not apply to `have`) by AXFR. `timeout` bounds
/// the whole of it, fallback included.
pub async fn fetch(
    primary: SocketAddr,
    key: Option<&TsigKey>,
    origin: &Name,
    have: Option<&ZoneCopy>,
    timeout: Duration,
) -> Result<Fetched, FetchError> {
    tokio::time::timeout(timeout, fetch_now(primary, key, origin, have))
        .await
        .unwrap_or(Err(FetchError::Timeout))
}

async fn fetch_now(
    primary: SocketAddr,
    key: Option<&TsigKey>,
    origin: &Name,
    have: Option<&ZoneCopy>,
) -> Result<Fetched, FetchError> {
    // A copy of another zone is no base for differences.
    if let Some(have) = have.filter(|have| &have.origin == origin) {
        match transfer(primary, key, origin, Some(have)).await {
            Err(error) if falls_back_to_axfr(&error) => {
                debug!(zone = %origin, %primary, %error, "IXFR failed; asking for AXFR");
            }
            done => return done,
        }
    }
    transfer(primary, key, origin, None).await
}

/// The IXFR failures that an AXFR may not have.
fn falls_back_to_axfr(error: &FetchError) -> bool {
    match error {
        FetchError::Refused(code) => matches!(
            code,
            ResponseCode::NotImp | ResponseCode::Refused | ResponseCode::FormErr
        ),
        FetchError::IxfrDoesNotApply(_) => true,
        _ => false,
    }
}

/// One transfer: IXFR from `have` when given, else AXFR.
async fn transfer(
    primary: SocketAddr,
    key: Option<&TsigKey>,
    origin: &Name,
    have: Option<&ZoneCopy>,
) -> Result<Fetched, FetchError> {
    let qtype = if have.is_some() {
        RecordType::IXFR
    } else {
        RecordType::AXFR
    };
    let request = request::request(origin, qtype, have, key, rand::random(), tsig::now())?;
    let mut reception = Reception::new(
        origin.clone(),
        qtype,
        request.id,
        have.map(ZoneCopy::serial),
        request.chain,
    );
    client::transfer(primary, &request.bytes, &mut reception).await?;
    Ok(match reception.finish(have)? {
        Received::UpToDate { serial } => Fetched::UpToDate { serial },
        Received::Full(copy) => Fetched::Axfr(copy),
        Received::Incremental(copy) => Fetched::Ixfr(copy),
    })
}

/// The primary's serial for `origin`: the SOA query a refresh starts with (RFC 1035 section
/// 4.3.5), over UDP, again over TCP when the answer is truncated; signed with `key` when
/// given, and the answer must then be signed too. `timeout` bounds the whole of it.
pub async fn soa_serial(
    primary: SocketAddr,
    key: Option<&TsigKey>,
    origin: &Name,
    timeout: Duration,
) -> Result<u32, FetchError> {
    tokio::time::timeout(timeout, soa_serial_now(primary, key, origin))
        .await
        .unwrap_or(Err(FetchError::Timeout))
}

async fn soa_serial_now(
    primary: SocketAddr,
    key: Option<&TsigKey>,
    origin: &Name,
) -> Result<u32, FetchError> {
    let query = request::request(
        origin,
        RecordType::SOA,
        None,
        key,
        rand::random(),
        tsig::now(),
    )?;
    let mut chain = query.chain;
    let answer = client::query_udp(primary, &query.bytes, query.id).await?;
    if let SoaAnswer::Serial(serial) =
        soa::soa_answer(&answer, query.id, origin, chain.as_mut(), tsig::now())?
    {
        return Ok(serial);
    }
    // Truncated: the same question over TCP, signed afresh (a new MAC starts a new chain).
    let query = request::request(
        origin,
        RecordType::SOA,
        None,
        key,
        rand::random(),
        tsig::now(),
    )?;
    let mut chain = query.chain;
    let answer = client::query_tcp(primary, &query.bytes).await?;
    match soa::soa_answer(&answer, query.id, origin, chain.as_mut(), tsig::now())? {
        SoaAnswer::Serial(serial) => Ok(serial),
        SoaAnswer::Truncated => Err(FetchError::Malformed(
            "a truncated answer over TCP".to_string(),
        )),
    }
}
