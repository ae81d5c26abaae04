//! What the server adds to an answer beyond its zone data, set by the configuration and the
//! listener: the name server identifier (NSID, RFC 5001) and the TSIG keys that may sign a
//! query (RFC 8945), the DNS cookie secrets (RFC 7873) and the client's address they need.

use std::net::IpAddr;

use arc_swap::ArcSwap;

use super::cookie::CookieSecrets;
use crate::config::TsigKey;

/// The server's part of every answer that is not zone data. The default adds nothing: what
/// `respond` gives to tests, benchmarks and fuzzing.
#[derive(Clone, Copy, Default)]
pub struct Extensions<'a> {
    /// Sent to a query that carries an empty NSID option (`dig +nsid`); `None` sends nothing.
    pub nsid: Option<&'a [u8]>,
    /// The keys a signed query is checked against, loaded only for a signed query; `None`
    /// knows no key, so every signed query gets NOTAUTH (BADKEY).
    pub tsig_keys: Option<&'a ArcSwap<Vec<TsigKey>>>,
    /// With secrets, a query with a client cookie gets a server cookie back; `None` ignores
    /// cookies (as a server without cookie support does).
    pub cookies: Option<&'a CookieSecrets>,
    /// The query's source address: server cookies are made for it. Without one (no listener),
    /// cookies are ignored.
    pub client: Option<IpAddr>,
    /// Over UDP, a query with a client cookie but no valid server cookie gets BADCOOKIE and a
    /// fresh server cookie instead of an answer (BIND's `require-server-cookie`). A query with
    /// no cookie at all is answered as usual (RFC 7873 section 5.2.1).
    pub require_server_cookie: bool,
    /// The time cookies are made and checked at, in seconds since the epoch; `None` reads the
    /// clock. Tests fix it so that two answers to one query can be compared byte for byte.
    pub now: Option<u64>,
}

impl Extensions<'_> {
    /// The time cookies are made and checked at.
    pub fn now(&self) -> u64 {
        self.now.unwrap_or_else(super::tsig::now)
    }
}
