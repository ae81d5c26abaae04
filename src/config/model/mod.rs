//! The checked configuration: types that cannot hold a wrong value. Everything else in apidns reads
//! these, never the raw file structs.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{Name, Record};

use super::tls::TlsClient;

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
    pub zones: Vec<ZoneConfig>,
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

/// How one pool's members are probed.
///
/// Not `Copy`: an HTTPS probe carries its TLS material (in an `Arc`, loaded once). Equality is
/// what the prober registry compares to decide whether a prober must restart after a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSettings {
    /// Time between probes in steady state.
    pub interval: Duration,
    /// A probe that has not succeeded after this long has failed.
    pub timeout: Duration,
    /// Time between probes while a member's state is being confirmed (HAProxy's `fastinter`).
    pub fast_interval: Duration,
    /// Consecutive successes that bring a down member up.
    pub rise: u32,
    /// Consecutive failures that take an up member down.
    pub fall: u32,
    /// What a probe checks: a TCP connection, or an HTTP(S) request's status.
    pub kind: ProbeKind,
    /// Keep one connection open to the member and take it down the moment that connection
    /// closes and a reconnect fails (see `health::held` for TCP, `health::held_https` for
    /// HTTP(S), which also sends its requests on it).
    pub hold: bool,
}

impl ProbeSettings {
    /// Whether probers hold a connection open.
    pub fn holds(&self) -> bool {
        self.hold
    }
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            fast_interval: Duration::from_millis(200),
            rise: 2,
            fall: 2,
            kind: ProbeKind::Tcp,
            hold: true,
        }
    }
}

/// The path an HTTP(S) probe requests by default: the API server's readiness endpoint, which
/// Kubernetes lets anyone read (the `system:public-info-viewer` cluster role binding).
pub const DEFAULT_PROBE_PATH: &str = "/readyz";
/// The status an HTTP(S) probe expects by default.
pub const DEFAULT_EXPECT_STATUS: u16 = 200;

/// What a probe checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeKind {
    /// Something accepts a TCP connection (closed at once).
    Tcp,
    /// A plain HTTP GET answers with the expected status.
    Http(HttpCheck),
    /// An HTTPS GET, over a TLS connection whose certificate is verified, answers with the
    /// expected status.
    Https(HttpsCheck),
}

impl ProbeKind {
    /// The name used in the configuration: `"tcp"`, `"http"` or `"https"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ProbeKind::Tcp => "tcp",
            ProbeKind::Http(_) => "http",
            ProbeKind::Https(_) => "https",
        }
    }

    /// The request of an HTTP or HTTPS probe.
    pub fn http(&self) -> Option<&HttpCheck> {
        match self {
            ProbeKind::Tcp => None,
            ProbeKind::Http(http) => Some(http),
            ProbeKind::Https(https) => Some(&https.http),
        }
    }

    pub fn https(&self) -> Option<&HttpsCheck> {
        match self {
            ProbeKind::Https(https) => Some(https),
            _ => None,
        }
    }
}

/// The request an HTTP(S) probe sends and the answer it wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    /// Path and query in origin form, e.g. `/readyz`.
    pub path: String,
    /// The status that means ready; anything else is a failure.
    pub expect_status: u16,
}

impl Default for HttpCheck {
    fn default() -> Self {
        Self {
            path: DEFAULT_PROBE_PATH.to_string(),
            expect_status: DEFAULT_EXPECT_STATUS,
        }
    }
}

/// An HTTPS probe: the request, the name the certificate must carry, and the TLS material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsCheck {
    pub http: HttpCheck,
    /// Sent as SNI and verified against the certificate's subject alternative names. Every
    /// pool has one (its own DNS name unless `server_name` is set); only the `[probe]` defaults
    /// may leave it unset.
    pub server_name: Option<String>,
    /// Trust anchors, client identity and the rustls configuration, shared by every prober
    /// that uses them.
    pub tls: Arc<TlsClient>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ZoneConfig {
    /// The zone file this came from.
    pub file: PathBuf,
    /// Absolute, lower-case origin, e.g. `k8s.example.com.`.
    pub origin: Name,
    pub soa: Soa,
    /// Static records, owner names absolute.
    pub records: Vec<Record>,
    pub pools: Vec<PoolConfig>,
    /// Dynamic updates; `None`: the zone refuses them.
    pub update: Option<UpdatePolicy>,
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

/// One pool member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The address answered and the port probed (and given in SRV records).
    pub address: SocketAddr,
    /// Its host name, answered with its address at all times; the target of its SRV record.
    /// Members configured without a name get `ip-192-0-2-10`-style names.
    pub host: Name,
    pub weight: u16,
    pub priority: u16,
}

/// Default SRV weight: above 0, because HAProxy takes a server's weight from the SRV record
/// and sends nothing to weight 0.
pub const DEFAULT_SRV_WEIGHT: u16 = 10;
/// Default service label of a pool's SRV records.
pub const DEFAULT_SRV_SERVICE: &str = "_https._tcp";

/// What a pool answers when too few members are up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllDown {
    /// Answer with every member: the prober may be the one cut off, and clients retry.
    All,
    /// Answer NODATA.
    None,
}

impl AllDown {
    pub fn as_str(self) -> &'static str {
        match self {
            AllDown::All => "all",
            AllDown::None => "none",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    /// Absolute, lower-case name answered with the live members, e.g. `api.k8s.example.com.`.
    pub name: Name,
    pub ttl: u32,
    /// Members in configuration order.
    pub members: Vec<Member>,
    /// Owner of the pool's SRV records, e.g. `_https._tcp.api.k8s.example.com.`.
    pub srv_name: Name,
    pub all_down: AllDown,
    /// With fewer members up than this, answer as if all were down (0: only when none is up).
    pub min_up: usize,
    /// Most addresses in one answer; the rotation still cycles through every live member.
    pub max_answers: usize,
    pub probe: ProbeSettings,
    /// Members taken out of the answers by the operator (still probed and reported).
    pub drain: Vec<IpAddr>,
    /// What a member added by a dynamic update takes from the pool.
    pub new_member: NewMemberDefaults,
}

/// The pool's defaults for members given as a bare address, kept for members that dynamic
/// updates add (an A/AAAA record carries only the address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMemberDefaults {
    pub port: u16,
    pub weight: u16,
    pub priority: u16,
    /// Where generated member names (`ip-192-0-2-10`) live.
    pub domain: Name,
    /// `max_answers` was not set, so it follows the number of members.
    pub max_answers_follows_members: bool,
}
