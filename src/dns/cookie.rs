//! DNS cookies (RFC 7873) with interoperable server cookies (RFC 9018): a client that returns the
//! server cookie it was given proves that it receives answers at its address. apidns answers
//! every query that carries a client cookie with a fresh server cookie, and tells the listener
//! when a query returned a valid one (the rate limiter then lets it through, as BIND does).
//!
//! By default apidns does not require cookies: RFC 7873 section 5.2.3 lets a server answer a
//! query without a valid server cookie normally (with a fresh one). With
//! `require_server_cookie`, such a query over UDP gets BADCOOKIE and a fresh cookie instead, as
//! BIND's `require-server-cookie` does; and a rate-limited client that sent a client cookie gets
//! BADCOOKIE rather than a truncated answer (BIND and Knot alike).

use std::net::IpAddr;

use super::siphash::siphash_2_4;

/// The EDNS option code of COOKIE.
pub const OPTION_COOKIE: u16 = 10;
/// RFC 9018's server cookie version.
const VERSION: u8 = 1;
/// Client cookie (8) + server cookie of version 1 (16).
pub const ANSWER_COOKIE_LEN: usize = 24;
/// RFC 9018 section 4.3: a server cookie older than an hour is not accepted...
const MAX_AGE: i64 = 3600;
/// ...nor one more than five minutes in the future.
const MAX_AHEAD: i64 = 300;

/// The secrets server cookies are made and checked with. A cookie made with `previous` still
/// verifies, so that the secret can rotate without clients losing their proof.
#[derive(Clone, PartialEq, Eq)]
pub struct CookieSecrets {
    pub current: [u8; 16],
    pub previous: Option<[u8; 16]>,
}

impl std::fmt::Debug for CookieSecrets {
    // The secrets stay out of logs and debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieSecrets")
            .field("previous", &self.previous.is_some())
            .finish_non_exhaustive()
    }
}

/// A query's COOKIE option, read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientCookie<'q> {
    pub client: &'q [u8],
    /// The server cookie the client returned, if any (8 to 32 bytes).
    pub server: Option<&'q [u8]>,
}

/// A COOKIE option whose length is neither 8 (client cookie alone) nor 16 to 40 (with a server
/// cookie): the query gets FORMERR (RFC 7873 section 5.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

impl<'q> ClientCookie<'q> {
    /// Reads a COOKIE option's data.
    pub fn read(data: &'q [u8]) -> Result<Self, Malformed> {
        match data.len() {
            8 => Ok(Self {
                client: data,
                server: None,
            }),
            16..=40 => Ok(Self {
                client: &data[..8],
                server: Some(&data[8..]),
            }),
            _ => Err(Malformed),
        }
    }
}

impl CookieSecrets {
    /// The COOKIE option data for the answer: the client cookie and a new server cookie made at
    /// `now` (seconds since the epoch) for `client_ip`.
    pub fn answer(&self, cookie: &ClientCookie<'_>, client_ip: IpAddr, now: u64) -> Vec<u8> {
        self.answer_bytes(cookie, client_ip, now).to_vec()
    }

    /// [`Self::answer`] without allocating, for the fast path.
    pub fn answer_bytes(
        &self,
        cookie: &ClientCookie<'_>,
        client_ip: IpAddr,
        now: u64,
    ) -> [u8; ANSWER_COOKIE_LEN] {
        let timestamp = now as u32; // RFC 9018: serial number arithmetic on 32 bits
        let mut data = [0u8; ANSWER_COOKIE_LEN];
        data[..8].copy_from_slice(cookie.client);
        data[8..].copy_from_slice(&server_cookie(
            &self.current,
            cookie.client,
            client_ip,
            timestamp,
        ));
        data
    }

    /// True when the query returned a server cookie this server made (with the current or the
    /// previous secret) for this client, not more than an hour ago.
    pub fn verifies(&self, cookie: &ClientCookie<'_>, client_ip: IpAddr, now: u64) -> bool {
        let Some(server) = cookie.server else {
            return false;
        };
        if server.len() != 16 || server[0] != VERSION {
            return false;
        }
        let timestamp = u32::from_be_bytes([server[4], server[5], server[6], server[7]]);
        let age = i64::from((now as u32).wrapping_sub(timestamp) as i32);
        if !(-MAX_AHEAD..=MAX_AGE).contains(&age) {
            return false;
        }
        let made_with = |secret: &[u8; 16]| {
            server_cookie(secret, cookie.client, client_ip, timestamp) == server
        };
        made_with(&self.current) || self.previous.as_ref().is_some_and(made_with)
    }
}

/// RFC 9018 section 4: version, three reserved bytes, the timestamp, and the SipHash-2-4 of the
/// client cookie, those eight bytes, and the client's address.
fn server_cookie(secret: &[u8; 16], client: &[u8], client_ip: IpAddr, timestamp: u32) -> [u8; 16] {
    let mut input = [0u8; 8 + 8 + 16];
    input[..8].copy_from_slice(client);
    input[8] = VERSION;
    input[12..16].copy_from_slice(&timestamp.to_be_bytes());
    let length = match client_ip {
        IpAddr::V4(address) => {
            input[16..20].copy_from_slice(&address.octets());
            20
        }
        IpAddr::V6(address) => {
            input[16..32].copy_from_slice(&address.octets());
            32
        }
    };
    let mut cookie = [0u8; 16];
    cookie[..8].copy_from_slice(&input[8..16]);
    // BIND and Knot write the hash in the byte order SipHash's reference code does.
    cookie[8..].copy_from_slice(&siphash_2_4(secret, &input[..length]).to_le_bytes());
    cookie
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

    fn secrets() -> CookieSecrets {
        CookieSecrets {
            current: [7; 16],
            previous: Some([9; 16]),
        }
    }

    #[test]
    fn matches_rfc_9018_appendix_a1() {
        let secrets = CookieSecrets {
            current: [
                0xe5, 0xe9, 0x73, 0xe5, 0xa6, 0xb2, 0xa4, 0x3f, 0x48, 0xe7, 0xdc, 0x84, 0x9e, 0x37,
                0xbf, 0xcf,
            ],
            previous: None,
        };
        let client = [0x24, 0x64, 0xc4, 0xab, 0xcf, 0x10, 0xc9, 0x57];
        let ip: IpAddr = "198.51.100.100".parse().expect("an address");
        let cookie = ClientCookie::read(&client).expect("a client cookie");
        let answer = secrets.answer(&cookie, ip, 1_559_731_985);
        let expected = "2464c4abcf10c957010000005cf79f111f8130c3eee29480";
        let hex: String = answer.iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(hex, expected);
    }

    #[test]
    fn lengths_other_than_8_and_16_to_40_are_malformed() {
        for length in 0..=48usize {
            let data = vec![0u8; length];
            let valid = length == 8 || (16..=40).contains(&length);
            assert_eq!(ClientCookie::read(&data).is_ok(), valid, "{length}");
        }
    }

    #[test]
    fn a_returned_server_cookie_verifies_for_its_client_only_and_for_an_hour() {
        let ip: IpAddr = "192.0.2.1".parse().expect("an address");
        let other: IpAddr = "2001:db8::1".parse().expect("an address");
        let now = 1_800_000_000;
        let first = ClientCookie::read(&CLIENT).expect("a client cookie");
        let answer = secrets().answer(&first, ip, now);
        assert_eq!(answer.len(), 24);
        let returned = ClientCookie::read(&answer).expect("a full cookie");
        assert!(secrets().verifies(&returned, ip, now + 3600));
        assert!(!secrets().verifies(&returned, ip, now + 3601));
        assert!(!secrets().verifies(&returned, ip, now - 301));
        assert!(!secrets().verifies(&returned, other, now));
        assert!(!secrets().verifies(&first, ip, now));
        let mut forged = answer.clone();
        forged[23] ^= 1;
        let forged = ClientCookie::read(&forged).expect("a full cookie");
        assert!(!secrets().verifies(&forged, ip, now));
    }

    #[test]
    fn the_previous_secret_still_verifies_after_rotation() {
        let ip: IpAddr = "192.0.2.1".parse().expect("an address");
        let now = 1_800_000_000;
        let old = CookieSecrets {
            current: [9; 16],
            previous: None,
        };
        let answer = old.answer(&ClientCookie::read(&CLIENT).expect("a cookie"), ip, now);
        let returned = ClientCookie::read(&answer).expect("a full cookie");
        assert!(secrets().verifies(&returned, ip, now));
        let without_previous = CookieSecrets {
            current: [7; 16],
            previous: None,
        };
        assert!(!without_previous.verifies(&returned, ip, now));
    }
}
