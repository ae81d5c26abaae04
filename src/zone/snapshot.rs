use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use super::member_state::MemberStatus;
use super::pool::{Pool, PoolMember};
use crate::config::{Config, PoolConfig, ZoneConfig};

/// A pool as the fast path finds it: the pool and its zone's label (for metrics).
pub type FastEntry = (Arc<Pool>, Arc<str>);

/// Everything apidns serves, as of one configuration load.
#[derive(Debug)]
pub struct Snapshot {
    /// Most specific zone first, so that the first match is the longest.
    zones: Vec<Zone>,
    /// Pool names in lower-case wire format, for the fast path's lookup without parsing.
    fast_index: HashMap<Box<[u8]>, FastEntry>,
    /// Secondary zones with no copy in force (none yet, or expired): their names get SERVFAIL,
    /// as a secondary that cannot vouch for its data answers.
    unavailable: Vec<LowerName>,
}

impl Snapshot {
    /// Builds the served view of `config`. `status_of` hands out each member's health cell, so
    /// that a member kept across reloads keeps its state.
    pub fn build(
        config: &Config,
        mut status_of: impl FnMut(&PoolConfig, SocketAddr) -> Arc<MemberStatus>,
    ) -> Self {
        let mut zones: Vec<Zone> = config
            .zones
            .iter()
            .map(|zone| Zone::build(zone, &mut status_of))
            .collect();
        zones.sort_by_key(|zone| std::cmp::Reverse(zone.origin.num_labels()));
        let unavailable = config
            .secondaries
            .iter()
            .filter(|secondary| {
                !config
                    .zones
                    .iter()
                    .any(|zone| zone.origin == secondary.origin)
            })
            .map(|secondary| LowerName::new(&secondary.origin))
            .collect();
        let mut snapshot = Self {
            zones,
            fast_index: HashMap::new(),
            unavailable,
        };
        let mut fast_index = HashMap::new();
        for zone in &snapshot.zones {
            for pool in &zone.pools {
                // Only names that the general path would answer from this pool: not one that a
                // more specific zone serves, nor one below a delegation.
                let lower = LowerName::new(&pool.config.name);
                let served_here = snapshot
                    .find_zone(&lower)
                    .is_some_and(|found| found.origin == zone.origin);
                let is_pool_node =
                    matches!(zone.lookup(&lower), ZoneLookup::Node(node) if node.pool.is_some());
                if served_here && is_pool_node {
                    fast_index.insert(
                        wire_name(&pool.config.name),
                        (pool.clone(), zone.label.clone()),
                    );
                }
            }
        }
        snapshot.fast_index = fast_index;
        snapshot
    }

    /// The pool at a lower-case wire-format name, and its zone's label.
    pub fn fast_pool(&self, lower_wire_name: &[u8]) -> Option<&FastEntry> {
        self.fast_index.get(lower_wire_name)
    }

    /// The zone that `name` belongs to, if apidns serves it.
    pub fn find_zone(&self, name: &LowerName) -> Option<&Zone> {
        let zone = self.zones.iter().find(|zone| zone.origin.zone_of(name))?;
        // A secondary zone without a copy, inside a served zone, still owns its names.
        let cut = self
            .unavailable
            .iter()
            .any(|origin| origin.zone_of(name) && origin.num_labels() > zone.origin.num_labels());
        (!cut).then_some(zone)
    }

    /// Whether `name` is in a secondary zone that has no copy in force; only meaningful when
    /// [`Self::find_zone`] finds none.
    pub fn is_unavailable(&self, name: &LowerName) -> bool {
        self.unavailable.iter().any(|origin| origin.zone_of(name))
    }

    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }

    pub fn pools(&self) -> impl Iterator<Item = &Arc<Pool>> {
        self.zones.iter().flat_map(|zone| zone.pools.iter())
    }

    /// Drains (or undrains) `member` of the pool named `pool` at run time and rebuilds the
    /// pool's live set at once. Returns whether anything changed.
    pub fn set_drained(
        &self,
        pool: &Name,
        member: MemberSelector,
        drained: bool,
    ) -> Result<bool, DrainError> {
        let found_pool = self
            .pools()
            .find(|p| p.config.name == *pool)
            .ok_or_else(|| DrainError::NoPool(pool.to_string()))?;
        let found = found_pool
            .members
            .iter()
            .find(|m| member.selects(m.address))
            .ok_or_else(|| DrainError::NoMember {
                pool: pool.clone(),
                member: member.to_string(),
            })?;
        let changed = found.status.set_drained(drained);
        found_pool.refresh();
        Ok(changed)
    }

    /// Rebuilds every pool's live set from its members' health; true when any changed.
    pub fn refresh_live_sets(&self) -> bool {
        self.pools()
            .fold(false, |changed, pool| pool.refresh() | changed)
    }
}

/// Which member of a pool an operator means: an address with its port, or any port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberSelector {
    Socket(SocketAddr),
    Address(std::net::IpAddr),
}

impl MemberSelector {
    fn selects(self, address: SocketAddr) -> bool {
        match self {
            Self::Socket(socket) => socket == address,
            Self::Address(ip) => ip == address.ip(),
        }
    }
}

impl std::fmt::Display for MemberSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Socket(socket) => socket.fmt(f),
            Self::Address(ip) => ip.fmt(f),
        }
    }
}

/// Why a member cannot be drained.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    #[error("no pool named {0}")]
    NoPool(String),
    #[error("pool {pool} has no member {member}")]
    NoMember { pool: Name, member: String },
}

/// One name in a zone: its static record sets and, for a pool name, the pool. A node with
/// neither is an empty non-terminal: it exists because names below it do.
#[derive(Debug, Default)]
pub struct Node {
    /// Record sets, one per type.
    rrsets: Vec<(RecordType, Vec<Record>)>,
    pub pool: Option<Arc<Pool>>,
    /// The pool whose members this node's SRV records list (`_https._tcp.POOL`).
    pub srv_pool: Option<Arc<Pool>>,
}

impl Node {
    /// Static records of `record_type` at this node.
    pub fn rrset(&self, record_type: RecordType) -> Option<&[Record]> {
        self.rrsets
            .iter()
            .find(|(rtype, _)| *rtype == record_type)
            .map(|(_, records)| records.as_slice())
    }

    /// Every static record set, in type order.
    pub fn rrsets(&self) -> impl Iterator<Item = &[Record]> {
        self.rrsets.iter().map(|(_, records)| records.as_slice())
    }

    pub fn is_empty(&self) -> bool {
        self.rrsets.is_empty() && self.pool.is_none() && self.srv_pool.is_none()
    }
}

/// Where a name falls within a zone.
#[derive(Debug)]
pub enum ZoneLookup<'a> {
    /// The name exists (possibly as an empty non-terminal).
    Node(&'a Node),
    /// The name is at or below a delegation to another server: `cut` holds the NS records.
    Delegation(&'a [Record]),
    /// The name does not exist, but the wildcard at its closest encloser does (RFC 4592 §3.3.1):
    /// the answer comes from that node's records, with the question's name as their owner. An
    /// empty wildcard (one that exists only because names below it do) synthesizes NODATA.
    Wildcard(&'a Node),
    /// The name does not exist, and no wildcard stands in for it.
    NxDomain,
}

#[derive(Debug)]
pub struct Zone {
    pub origin: LowerName,
    /// The origin as text, shared with metrics labels.
    pub label: Arc<str>,
    pub config: ZoneConfig,
    /// The SOA record as answered to SOA queries.
    pub soa: Record,
    /// The SOA record for negative answers: its TTL is min(SOA TTL, minimum), per RFC 2308.
    pub negative_soa: Record,
    nodes: HashMap<LowerName, Node>,
    /// Whether any name below the apex carries NS records (a delegation).
    has_delegations: bool,
    /// Whether any name has `*` as its leftmost label: only then does a missing name need its
    /// closest encloser, so zones without wildcards answer NXDOMAIN as cheaply as before.
    has_wildcards: bool,
    pub pools: Vec<Arc<Pool>>,
}

impl Zone {
    fn build(
        config: &ZoneConfig,
        status_of: &mut impl FnMut(&PoolConfig, SocketAddr) -> Arc<MemberStatus>,
    ) -> Self {
        let origin = config.origin.clone();
        let (soa, negative_soa) = soa_records(config);
        let mut nodes = NodeTable::new(&origin);
        nodes.add(&origin, Some(soa.clone()), None, None);
        for record in &config.records {
            nodes.add(&record.name, Some(record.clone()), None, None);
        }
        let mut pools = Vec::with_capacity(config.pools.len());
        for pool_config in &config.pools {
            let members: Vec<PoolMember> = pool_config
                .members()
                .iter()
                .map(|member| PoolMember::new(member, status_of(pool_config, member.address)))
                .collect();
            // Each member's own name answers its address at all times, so that load balancers
            // and people can reach one node.
            for member in &members {
                let record = member.address_record(&member.host, pool_config.ttl);
                nodes.add(&member.host, Some(record), None, None);
            }
            let pool = Arc::new(Pool::new(pool_config.clone(), members));
            nodes.add(&pool_config.name, None, Some(pool.clone()), None);
            nodes.add(&pool_config.srv_name, None, None, Some(pool.clone()));
            pools.push(pool);
        }
        let nodes = nodes.nodes;

        let has_delegations = config
            .records
            .iter()
            .any(|r| r.record_type() == RecordType::NS && r.name != origin);
        let has_wildcards = nodes.keys().any(LowerName::is_wildcard);
        Self {
            label: Arc::from(origin.to_string()),
            origin: LowerName::new(&origin),
            config: config.clone(),
            soa,
            negative_soa,
            nodes,
            has_delegations,
            has_wildcards,
            pools,
        }
    }

    /// Finds `name` (which must be in this zone) as a query sees it: delegations below the apex
    /// first, then the name itself, then a wildcard that stands in for a name that does not
    /// exist. Only an existing name is ever a [`ZoneLookup::Node`].
    pub fn lookup(&self, name: &LowerName) -> ZoneLookup<'_> {
        if self.has_delegations {
            // Walk down from just below the apex: the topmost cut wins.
            for labels in self.origin.num_labels() + 1..=name.num_labels() {
                let ancestor = LowerName::new(&Name::from(name).trim_to(labels as usize));
                if let Some(ns) = self
                    .nodes
                    .get(&ancestor)
                    .and_then(|node| node.rrset(RecordType::NS))
                {
                    return ZoneLookup::Delegation(ns);
                }
            }
        }
        match self.nodes.get(name) {
            Some(node) => ZoneLookup::Node(node),
            None if self.has_wildcards => self.wildcard_for(name),
            None => ZoneLookup::NxDomain,
        }
    }

    /// For a name that does not exist: the wildcard child of its closest encloser, the longest
    /// ancestor that exists (RFC 4592 §3.3.1). Every name that exists counts — static owners,
    /// pool, member and SRV names, and the empty non-terminals above them — so a wildcard never
    /// covers any of them, nor anything below them unless they have a wildcard child of their own.
    fn wildcard_for(&self, name: &LowerName) -> ZoneLookup<'_> {
        match self.closest_encloser(name).and_then(|encloser| {
            let source = Name::from(&encloser).prepend_label("*").ok()?;
            self.nodes.get(&LowerName::new(&source))
        }) {
            Some(node) => ZoneLookup::Wildcard(node),
            None => ZoneLookup::NxDomain,
        }
    }

    /// The longest ancestor of `name` that exists in this zone (the origin at least), for a
    /// `name` in this zone that does not exist itself.
    pub fn closest_encloser(&self, name: &LowerName) -> Option<LowerName> {
        let name = Name::from(name);
        // Every label counts, a leading `*` too (`num_labels` leaves it out, as RRSIG wants).
        let labels = name.iter().count();
        (usize::from(self.origin.num_labels())..labels)
            .rev()
            .map(|kept| LowerName::new(&name.trim_to(kept)))
            .find(|ancestor| self.nodes.contains_key(ancestor))
    }

    /// The node at exactly `name`, ignoring delegations: used for glue.
    pub fn node(&self, name: &LowerName) -> Option<&Node> {
        self.nodes.get(name)
    }
}

/// A name in wire format (length-prefixed labels, root byte last), lower case.
fn wire_name(name: &Name) -> Box<[u8]> {
    let mut wire = Vec::with_capacity(name.len() + 1);
    for label in name.iter() {
        wire.push(label.len() as u8);
        wire.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    wire.push(0);
    wire.into_boxed_slice()
}

/// The zone's SOA record, and the copy that negative answers carry: its TTL is the lesser of
/// the SOA's TTL and `minimum` (RFC 2308 section 3).
fn soa_records(config: &ZoneConfig) -> (Record, Record) {
    let soa_data = SOA::new(
        config.soa.mname.clone(),
        config.soa.rname.clone(),
        config.soa.serial,
        config.soa.refresh as i32,
        config.soa.retry as i32,
        config.soa.expire as i32,
        config.soa.minimum,
    );
    let soa = Record::from_rdata(config.origin.clone(), config.soa.ttl, RData::SOA(soa_data));
    let mut negative_soa = soa.clone();
    negative_soa.ttl = config.soa.ttl.min(config.soa.minimum);
    (soa, negative_soa)
}

/// The zone's nodes while they are collected: every name that owns data, and every name
/// between it and the origin as an empty non-terminal.
struct NodeTable<'a> {
    origin: &'a Name,
    nodes: HashMap<LowerName, Node>,
}

impl<'a> NodeTable<'a> {
    fn new(origin: &'a Name) -> Self {
        Self {
            origin,
            nodes: HashMap::new(),
        }
    }

    /// Adds `record` (and the pool or SRV pool) at `name`.
    fn add(
        &mut self,
        name: &Name,
        record: Option<Record>,
        pool: Option<Arc<Pool>>,
        srv_pool: Option<Arc<Pool>>,
    ) {
        // Every name between this one and the origin exists, as an empty non-terminal.
        let mut ancestor = name.base_name();
        while self.origin.zone_of(&ancestor) && &ancestor != self.origin {
            self.nodes.entry(LowerName::new(&ancestor)).or_default();
            ancestor = ancestor.base_name();
        }
        let node = self.nodes.entry(LowerName::new(name)).or_default();
        if let Some(record) = record {
            let rtype = record.record_type();
            match node.rrsets.iter_mut().find(|(t, _)| *t == rtype) {
                // Two pools may name the same node with the same address: keep one record.
                Some((_, records)) if records.iter().any(|r| r.data == record.data) => {}
                Some((_, records)) => records.push(record),
                None => {
                    node.rrsets.push((rtype, vec![record]));
                    node.rrsets.sort_by_key(|(t, _)| u16::from(*t));
                }
            }
        }
        if pool.is_some() {
            node.pool = pool;
        }
        if srv_pool.is_some() {
            node.srv_pool = srv_pool;
        }
    }
}
