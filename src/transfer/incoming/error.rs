//! Why a fetch from the primary failed, each reason with a short label for metrics.

use std::io;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::Name;

/// Why a transfer (or the SOA query that starts a refresh) did not bring a usable answer.
/// The copy the secondary already holds is never touched by a failed fetch.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No connection, or it broke while writing the request.
    #[error("the primary cannot be reached: {0}")]
    Unreachable(#[source] io::Error),
    /// The whole fetch took longer than it was given.
    #[error("the primary did not finish in time")]
    Timeout,
    /// The primary answered with an error code (REFUSED, NOTAUTH, NOTIMP, SERVFAIL...).
    #[error("the primary answered {0}")]
    Refused(ResponseCode),
    /// The answer is about another zone: its question, or its SOA's owner.
    #[error("the primary answered for {0}, not for the zone asked")]
    WrongZone(Name),
    /// The answer is not signed as it must be, or by another key, or its MAC or time is wrong.
    #[error("TSIG: {0}")]
    BadTsig(String),
    /// The SOA answer does not have the AA bit: the primary does not serve the zone itself.
    #[error("the primary is not authoritative for the zone")]
    NotAuthoritative,
    /// The answer breaks the protocol: unparsable, out-of-zone records, no SOA where one must be.
    #[error("malformed transfer: {0}")]
    Malformed(String),
    /// The connection closed before the closing SOA: never a partial copy.
    #[error("the transfer ended before its closing SOA")]
    Incomplete,
    /// More records or bytes than [`super::stream::MAX_RECORDS`] or
    /// [`super::stream::MAX_BYTES`].
    #[error("the transfer is larger than a secondary keeps ({0})")]
    TooLarge(&'static str),
    /// An IXFR that does not apply to our copy (`fetch` falls back to AXFR on its own; this
    /// is seen only from the parts below it).
    #[error("the incremental transfer does not apply: {0}")]
    IxfrDoesNotApply(String),
}

impl FetchError {
    /// A short label for metrics (`apidns_transfers_in{result=...}` and the like).
    pub fn label(&self) -> &'static str {
        match self {
            FetchError::Unreachable(_) => "unreachable",
            FetchError::Timeout => "timeout",
            FetchError::Refused(_) => "refused",
            FetchError::WrongZone(_) => "wrong_zone",
            FetchError::NotAuthoritative => "not_authoritative",
            FetchError::BadTsig(_) => "bad_tsig",
            FetchError::Malformed(_) => "malformed",
            FetchError::Incomplete => "incomplete",
            FetchError::TooLarge(_) => "too_large",
            FetchError::IxfrDoesNotApply(_) => "ixfr_mismatch",
        }
    }
}
