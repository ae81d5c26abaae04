//! The checked configuration: types that cannot hold a wrong value. Everything else in apidns reads
//! these, never the raw file structs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{Name, Record};

mod discover;
mod pool;
mod probe;

pub use discover::*;
pub use pool::*;
pub use probe::*;

/// Default TTL of static records when a zone does not set one.
pub const DEFAULT_ZONE_TTL: u32 = 300;
/// Default TTL of pool answers: short, so that a dead member leaves client caches quickly.
pub const DEFAULT_POOL_TTL: u32 = 5;
/// The Kubernetes API server's port.
pub const DEFAULT_POOL_PORT: u16 = 6443;
/// 1232 bytes is the EDNS buffer size that avoids IP fragmentation on practically every path
/// (DNS flag day 2020); larger UDP answers are truncated and retried over TCP.
pub const DEFAULT_MAX_UDP_PAYLOAD: u16 = 1232;

/// The whole configuration: the main file and every zone file it names.
#[derive(Debug, Clone)]
pub struct Config {
    /// The main file this was loaded from.
    pub path: PathBuf,
    pub server: ServerSettings,
    /// Probe defaults from `[probe]`; each pool holds its own merged copy.
    pub probe: ProbeSettings,
    /// Zones with data to serve: from the files, or from a primary's copy (`primary` set).
    pub zones: Vec<ZoneConfig>,
    /// Every zone whose data comes from a primary (`primary = {...}`), copy or not. One with a
    /// copy in force is also in `zones`; one without answers SERVFAIL for its names.
    pub secondaries: Vec<SecondaryZone>,
}

impl Config {
    /// Files besides the TOML files that the zones' data was read from.
    pub fn data_files(&self) -> Vec<PathBuf> {
        self.zones
            .iter()
            .flat_map(|zone| zone.data_files.iter().cloned())
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerSettings {
    /// Each address is served on UDP and TCP.
    pub listen: Vec<SocketAddr>,
    /// Address of the HTTP endpoint (metrics, health).
    pub http: Option<SocketAddr>,
    /// Directory holding one `*.toml` file per zone.
    pub zones_dir: PathBuf,
    /// A TCP client that sends nothing for this long is disconnected.
    pub tcp_idle_timeout: Duration,
    /// Concurrent TCP connections beyond this are refused at accept.
    pub tcp_max_connections: usize,
    /// Largest UDP answer, whatever larger size a client advertises.
    pub max_udp_payload: u16,
    /// Token that admin actions over HTTP must carry; without one they need a loopback client.
    pub admin_token: Option<String>,
    /// The user to switch to after binding the sockets, when started as root.
    pub user: Option<String>,
    /// Response rate limiting on UDP; `None` (the default) answers every query.
    pub rrl: Option<RrlSettings>,
    /// Where the dynamic-update journal lives; required when any zone accepts updates.
    pub state_dir: Option<PathBuf>,
    /// TSIG keys from `[[tsig]]` tables: the only way to sign an RFC 2136 update. They take
    /// effect on reload (unlike the rest of `[server]`).
    pub tsig_keys: Vec<TsigKey>,
    /// The name server identifier (RFC 5001) sent to queries that ask for it; `None` sends none.
    pub nsid: Option<Vec<u8>>,
    /// The secret server cookies (RFC 9018) are made with; `None` makes a random one at start.
    pub cookie_secret: Option<[u8; 16]>,
    /// The secret before the last rotation: cookies made with it are still accepted.
    pub cookie_secret_previous: Option<[u8; 16]>,
    /// Over UDP, a query with a client cookie but no valid server cookie gets BADCOOKIE.
    pub require_server_cookie: bool,
}

/// A TSIG key (RFC 8945), shared with the tool that signs updates (`nsupdate -y`/`-k`).
#[derive(Clone, PartialEq, Eq)]
pub struct TsigKey {
    /// Absolute, lower-case key name, e.g. `ops-key.`.
    pub name: Name,
    pub algorithm: TsigAlgorithm,
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for TsigKey {
    // The secret stays out of logs and debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &format_args!("<{} bytes>", self.secret.len()))
            .finish()
    }
}

/// A zone's `update` table: who may send RFC 2136 updates, and what they may change. Only
/// pool membership can change (`allow = "pool-members"`, the one policy so far).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatePolicy {
    /// Names of the TSIG keys that may update the zone.
    pub keys: Vec<Name>,
}

/// A zone's `transfer` table: which TSIG keys may transfer the zone (AXFR, IXFR), and which
/// secondaries get a NOTIFY when its serial changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferPolicy {
    /// Names of the TSIG keys that may transfer the zone; NOTIFY is signed with the first.
    pub keys: Vec<Name>,
    /// Where NOTIFY messages go (UDP).
    pub notify: Vec<std::net::SocketAddr>,
}

/// Response rate limiting (RRL, as in BIND and Knot): limits identical UDP responses to one
/// client network, so that spoofed queries cannot turn apidns into a traffic amplifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RrlSettings {
    /// Identical responses per second that one client network gets before limiting starts.
    pub responses_per_second: u32,
    /// Every `slip`th limited response is sent truncated (TC=1, no records) so that a real
    /// client retries over TCP; the others are dropped. 0 drops them all, 1 truncates them all.
    pub slip: u32,
    /// How far a flood's debt reaches: a client stays limited for up to this long after its
    /// flood stops.
    pub window: Duration,
    /// Clients in the same IPv4 network of this prefix length share their limits.
    pub ipv4_prefix_length: u8,
    /// Clients in the same IPv6 network of this prefix length share their limits.
    pub ipv6_prefix_length: u8,
}

impl RrlSettings {
    pub const DEFAULT_SLIP: u32 = 2;
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(15);
    pub const DEFAULT_IPV4_PREFIX_LENGTH: u8 = 24;
    pub const DEFAULT_IPV6_PREFIX_LENGTH: u8 = 56;
}

#[derive(Debug, Clone, PartialEq)]
pub struct ZoneConfig {
    /// The zone file this came from.
    pub file: PathBuf,
    /// The `records_file` and the files it `$INCLUDE`s, if any: a change to them is a change to
    /// the zone.
    pub data_files: Vec<PathBuf>,
    /// Absolute, lower-case origin, e.g. `k8s.example.com.`.
    pub origin: Name,
    pub soa: Soa,
    /// Static records, owner names absolute.
    pub records: Vec<Record>,
    pub pools: Vec<PoolConfig>,
    /// Dynamic updates; `None`: the zone refuses them.
    pub update: Option<UpdatePolicy>,
    /// Zone transfers and NOTIFY; `None`: transfers are refused and nobody is notified.
    pub transfer: Option<TransferPolicy>,
    /// Set when the data is a copy from this primary: its serial is the primary's, never
    /// bumped here, and updates do not apply.
    pub primary: Option<PrimarySource>,
}

/// `primary = { address = "192.0.2.53:53", key = "xfr-key" }`: where a secondary zone's data
/// comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimarySource {
    /// Where SOA queries and transfers go (TCP), and the only address whose NOTIFY is taken.
    pub address: SocketAddr,
    /// The TSIG key that signs transfers and NOTIFY both ways; `None`: unsigned (a private
    /// network, as BIND and Knot allow).
    pub key: Option<Name>,
}

/// A zone whose data (SOA, static records, pool members) comes from a primary by zone transfer.
/// The file names the pools and their settings; until a copy arrives there is no SOA, so the
/// zone is not in [`Config::zones`] and its names get SERVFAIL.
#[derive(Debug, Clone, PartialEq)]
pub struct SecondaryZone {
    /// The zone file this came from.
    pub file: PathBuf,
    /// Absolute, lower-case origin.
    pub origin: Name,
    pub primary: PrimarySource,
    /// Each pool's settings with no members: they come from the copy.
    pub pools: Vec<PoolParts>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Soa {
    pub mname: Name,
    pub rname: Name,
    pub serial: u32,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    /// Negative-caching TTL (RFC 2308): how long resolvers remember NXDOMAIN and NODATA.
    pub minimum: u32,
    pub ttl: u32,
}
