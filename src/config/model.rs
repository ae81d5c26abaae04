//! The checked configuration: types that cannot hold a wrong value. Everything else in apidns reads
//! these, never the raw file structs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hickory_proto::rr::{Name, Record};

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
}

/// How one pool's members are probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            fast_interval: Duration::from_millis(200),
            rise: 2,
            fall: 2,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ZoneConfig {
    /// The zone file this came from.
    pub file: PathBuf,
    /// Absolute, lower-case origin, e.g. `k8s.example.com.`.
    pub origin: Name,
    pub soa: Soa,
    /// Static records, owner names absolute.
    pub records: Vec<Record>,
    pub pools: Vec<PoolConfig>,
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
    /// Members in configuration order; the address and the port that is probed.
    pub members: Vec<SocketAddr>,
    pub all_down: AllDown,
    /// With fewer members up than this, answer as if all were down (0: only when none is up).
    pub min_up: usize,
    /// Most addresses in one answer; the rotation still cycles through every live member.
    pub max_answers: usize,
    pub probe: ProbeSettings,
}
