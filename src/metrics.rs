//! Prometheus metrics: what apidns answers, what it sees of its members, and how reloads went.
//!
//! Label values on the query path are small copyable types (or a shared `Arc<str>` for the zone)
//! so that counting a query never allocates.

use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::discover::DiscoverMetrics;
use crate::dns::Transport;
use crate::transfer::secondary::SecondaryMetrics;
use crate::zone::Signal;

/// A zone's name as a label value, shared rather than copied per query.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ZoneLabel(pub Arc<str>);

impl EncodeLabelValue for ZoneLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QtypeLabel(pub RecordType);

impl EncodeLabelValue for QtypeLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        write!(encoder, "{}", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RcodeLabel(pub ResponseCode);

impl EncodeLabelValue for RcodeLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        write!(encoder, "{self}")
    }
}

/// The mnemonic DNS people use (NOERROR, NXDOMAIN, ...).
impl std::fmt::Display for RcodeLabel {
    fn fmt(&self, encoder: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.0 {
            ResponseCode::NoError => "NOERROR",
            ResponseCode::FormErr => "FORMERR",
            ResponseCode::ServFail => "SERVFAIL",
            ResponseCode::NXDomain => "NXDOMAIN",
            ResponseCode::NotImp => "NOTIMP",
            ResponseCode::Refused => "REFUSED",
            ResponseCode::NotAuth => "NOTAUTH",
            ResponseCode::NotZone => "NOTZONE",
            ResponseCode::BADVERS => "BADVERS",
            other => return write!(encoder, "RCODE{}", u16::from(other)),
        };
        encoder.write_str(name)
    }
}

impl EncodeLabelValue for Transport {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        })
    }
}

/// The failure signal that took a member down, as its fixed word (`closed`, `timeout`, ...).
impl EncodeLabelValue for Signal {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct QueryLabels {
    /// The zone asked about; empty for names outside every zone and unparsable queries.
    pub zone: ZoneLabel,
    pub qtype: QtypeLabel,
    pub rcode: RcodeLabel,
    pub transport: Transport,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TransportLabels {
    pub transport: Transport,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct MemberLabels {
    pub pool: String,
    pub member: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TransitionLabels {
    pub pool: String,
    pub member: String,
    /// The new state: "up" or "down".
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct DownLabels {
    pub pool: String,
    pub member: String,
    /// The failure signal that took the member down.
    pub signal: Signal,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct DetectionLabels {
    pub pool: String,
    pub signal: Signal,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PoolLabels {
    pub pool: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
}

/// One query in this many is timed for the response-time histogram.
pub const TIMING_SAMPLE: u32 = 8;

struct CachedCounter {
    registry: usize,
    zone: Arc<str>,
    qtype: RecordType,
    rcode: ResponseCode,
    transport: Transport,
    counter: Counter,
}

/// The zone label of queries outside every zone.
fn no_zone() -> &'static Arc<str> {
    static NO_ZONE: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
    NO_ZONE.get_or_init(|| Arc::from(""))
}

/// Every metric apidns exports.
pub struct Metrics {
    registry: Registry,
    pub queries: Family<QueryLabels, Counter>,
    pub response_seconds: Family<TransportLabels, Histogram>,
    pub member_up: Family<MemberLabels, Gauge>,
    pub member_transitions: Family<TransitionLabels, Counter>,
    pub member_down: Family<DownLabels, Counter>,
    pub detection_seconds: Family<DetectionLabels, Histogram>,
    pub probe_seconds: Family<PoolLabels, Histogram>,
    pub pool_members_up: Family<PoolLabels, Gauge>,
    pub probe_lateness: Histogram,
    pub pool_fallback: Family<PoolLabels, Gauge>,
    pub reloads: Family<ResultLabels, Counter>,
    /// 1 while the update journal is damaged and updates are refused.
    pub journal_damaged: Gauge,
    /// Cluster discovery: events, applied and refused memberships, addresses outside allow,
    /// watch errors.
    pub discover: DiscoverMetrics,
    /// NOTIFY messages to secondaries, by result (acknowledged, retried, failed).
    pub notifies: Family<ResultLabels, Counter>,
    /// Secondary zones: refreshes by kind and result, time since the primary last answered,
    /// expired copies, serials.
    pub secondary: SecondaryMetrics,
}

impl Metrics {
    pub fn new() -> Self {
        let mut metrics = Self {
            registry: Registry::with_prefix("apidns"),
            queries: Family::default(),
            // 5µs to ~2.6s: a cached answer takes microseconds, a slow TCP client much longer.
            response_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(5e-6, 2.0, 20))
            }),
            member_up: Family::default(),
            member_transitions: Family::default(),
            member_down: Family::default(),
            // 100µs to ~13s: a held connection's close is seen in microseconds, a black hole
            // after keepalive and a connect timeout, a periodic probe after `fall` probes.
            detection_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(1e-4, 2.0, 18))
            }),
            // 100µs to ~3.3s: a LAN handshake, up to a timeout.
            probe_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(1e-4, 2.0, 16))
            }),
            pool_members_up: Family::default(),
            // 100µs to ~1.6s: a probe should start within a millisecond or two of its schedule.
            probe_lateness: Histogram::new(exponential_buckets(1e-4, 2.0, 15)),
            pool_fallback: Family::default(),
            reloads: Family::default(),
            journal_damaged: Gauge::default(),
            discover: DiscoverMetrics::default(),
            notifies: Family::default(),
            secondary: SecondaryMetrics::default(),
        };
        metrics.register_answering();
        metrics.register_probing();
        metrics.register_pools_and_reloads();
        metrics.register_discovery();
        metrics.register_secondary();
        metrics.register_build_info();
        metrics
    }

    /// What apidns answers. Registration keeps the order of `/metrics` as it was; the registry
    /// keeps a handle of each metric for encoding, and the handles in `self` record into the
    /// same values.
    fn register_answering(&mut self) {
        let registry = &mut self.registry;
        registry.register(
            "queries",
            "DNS queries answered, by zone, query type, response code and transport",
            self.queries.clone(),
        );
        registry.register(
            "response_duration_seconds",
            "Time from receiving a query to having its answer encoded (one query in 8 is timed)",
            self.response_seconds.clone(),
        );
    }

    /// What apidns sees of its members.
    fn register_probing(&mut self) {
        let registry = &mut self.registry;
        registry.register(
            "member_up",
            "1 when a pool member's probe passes (up), 0 when down or not probed yet",
            self.member_up.clone(),
        );
        registry.register(
            "member_transitions",
            "Changes of a member's health, by the state it changed to",
            self.member_transitions.clone(),
        );
        registry.register(
            "member_down",
            "Down transitions of a member, by the failure signal that took it down",
            self.member_down.clone(),
        );
        registry.register(
            "detection_seconds",
            "Time from the first failure signal of a streak to the down transition of an up member",
            self.detection_seconds.clone(),
        );
        registry.register(
            "probe_duration_seconds",
            "Latency of successful probes",
            self.probe_seconds.clone(),
        );
        registry.register(
            "probe_lateness_seconds",
            "How late probes start compared with their schedule",
            self.probe_lateness.clone(),
        );
    }

    /// What the pools answer with, and how reloads went.
    fn register_pools_and_reloads(&mut self) {
        let registry = &mut self.registry;
        registry.register(
            "pool_members_up",
            "Members of a pool that are up",
            self.pool_members_up.clone(),
        );
        registry.register(
            "pool_fallback",
            "1 when a pool has too few members up and answers per its all_down policy",
            self.pool_fallback.clone(),
        );
        registry.register(
            "config_reloads",
            "Configuration reloads, by result (success, failure)",
            self.reloads.clone(),
        );
        registry.register(
            "journal_damaged",
            "1 while the update journal is damaged: updates are refused until it is repaired",
            self.journal_damaged.clone(),
        );
        registry.register(
            "notifies",
            "NOTIFY messages to secondaries, by result (acknowledged; retried: sent again after no acknowledgement; failed: given up)",
            self.notifies.clone(),
        );
    }

    /// The handle a NOTIFY outcome is counted in.
    pub fn notify_result(&self, result: &str) -> Counter {
        self.notifies
            .get_or_create(&ResultLabels {
                result: result.to_string(),
            })
            .clone()
    }

    /// What cluster discovery saw and did.
    fn register_discovery(&mut self) {
        let registry = &mut self.registry;
        let discover = &self.discover;
        registry.register(
            "discover_events",
            "Watch events of the cluster's API server EndpointSlices, by pool",
            discover.events.clone(),
        );
        registry.register(
            "discover_applied",
            "Discovered memberships put in force (or found already in force), by pool",
            discover.applied.clone(),
        );
        registry.register(
            "discover_refused",
            "Discovered memberships not applied, by pool and reason (empty, no_member_up)",
            discover.refused.clone(),
        );
        registry.register(
            "discover_outside_allow",
            "Addresses the cluster proposed outside the pool's allow (ignored), by pool",
            discover.outside_allow.clone(),
        );
        registry.register(
            "discover_watch_errors",
            "Failed connections, lists and watches of the cluster, by pool",
            discover.watch_errors.clone(),
        );
    }

    /// What secondary zones' refreshes did.
    fn register_secondary(&mut self) {
        let registry = &mut self.registry;
        let secondary = &self.secondary;
        registry.register(
            "transfers_in",
            "Refreshes of secondary zones from their primary, by zone, kind (axfr, ixfr, up_to_date, soa) and result (ok, refused, or why the fetch failed)",
            secondary.transfers.clone(),
        );
        registry.register(
            "secondary_seconds_since_refresh",
            "Seconds since the primary last answered for the zone (a transfer or a current serial)",
            secondary.seconds_since_refresh.clone(),
        );
        registry.register(
            "secondary_expired",
            "1 while the zone's copy is past the SOA's expire and the zone answers SERVFAIL",
            secondary.expired.clone(),
        );
        registry.register(
            "secondary_serial",
            "Serial of the secondary zone's copy in force",
            secondary.serial.clone(),
        );
    }

    /// `apidns_build_info{version="..."} 1`: set once, never recorded again.
    fn register_build_info(&mut self) {
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        self.registry
            .register("build_info", "apidns build information", build_info);
    }

    /// Counts one answered query without hashing its labels on every call: each thread keeps
    /// the counter handles it has used, keyed by the zone's shared name (compared by address,
    /// and held, so that the address cannot be reused for another zone) and the small labels.
    pub fn count_query(
        &self,
        zone: Option<&Arc<str>>,
        qtype: RecordType,
        rcode: ResponseCode,
        transport: Transport,
    ) {
        thread_local! {
            static HANDLES: std::cell::RefCell<Vec<CachedCounter>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let registry = self as *const Metrics as usize;
        let zone = zone.unwrap_or_else(|| no_zone());
        HANDLES.with(|handles| {
            let mut handles = handles.borrow_mut();
            let found = handles.iter().find(|cached| {
                cached.registry == registry
                    && Arc::ptr_eq(&cached.zone, zone)
                    && cached.qtype == qtype
                    && cached.rcode == rcode
                    && cached.transport == transport
            });
            if let Some(cached) = found {
                cached.counter.inc();
                return;
            }
            let counter = self.queries.get_or_create_owned(&QueryLabels {
                zone: ZoneLabel(zone.clone()),
                qtype: QtypeLabel(qtype),
                rcode: RcodeLabel(rcode),
                transport,
            });
            counter.inc();
            // Bounded: a reload makes new zone names, and old handles are only a cache.
            if handles.len() >= 64 {
                handles.clear();
            }
            handles.push(CachedCounter {
                registry,
                zone: zone.clone(),
                qtype,
                rcode,
                transport,
                counter,
            });
        });
    }

    /// Whether to time this query: one in [`TIMING_SAMPLE`] per thread, because reading the
    /// clock twice per query costs more than the rest of counting it.
    pub fn should_time(&self) -> bool {
        thread_local! {
            static SEEN: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
        }
        SEEN.with(|seen| {
            let n = seen.get().wrapping_add(1);
            seen.set(n);
            n % TIMING_SAMPLE == 0
        })
    }

    /// Records the time one (sampled) query took.
    pub fn observe_response(&self, transport: Transport, elapsed: Duration) {
        self.response_seconds
            .get_or_create(&TransportLabels { transport })
            .observe(elapsed.as_secs_f64());
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
