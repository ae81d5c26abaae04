//! A pool at run time: its members' health, the live set built from it, and the rotation.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use hickory_proto::rr::rdata::{A, AAAA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::member_state::{Health, MemberStatus};
use crate::config::{AllDown, Member, PoolConfig};

/// One member: where it is, what it is called, and how it is doing.
#[derive(Debug)]
pub struct PoolMember {
    pub address: SocketAddr,
    pub host: Name,
    pub weight: u16,
    pub priority: u16,
    pub status: Arc<MemberStatus>,
}

impl PoolMember {
    pub fn new(member: &Member, status: Arc<MemberStatus>) -> Self {
        Self {
            address: member.address,
            host: member.host.clone(),
            weight: member.weight,
            priority: member.priority,
            status,
        }
    }

    /// Drained by the configuration or at run time.
    pub fn is_drained(&self, config: &PoolConfig) -> bool {
        self.status.is_drained() || config.drain().contains(&self.address.ip())
    }

    /// Its address record, owned by `owner`.
    pub fn address_record(&self, owner: &Name, ttl: u32) -> Record {
        let data = match self.address.ip() {
            IpAddr::V4(ip) => RData::A(A(ip)),
            IpAddr::V6(ip) => RData::AAAA(AAAA(ip)),
        };
        Record::from_rdata(owner.clone(), ttl, data)
    }
}

/// Why a pool's answer is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveState {
    /// Answering with the members that are up.
    Healthy,
    /// Too few members up (none, or fewer than `min_up`): answering with every member.
    AllAnswered,
    /// Too few members up and `all_down = "none"`: answering NODATA.
    NoneAnswered,
}

/// One SRV record of the live set and the addresses of its target, for the additional section.
#[derive(Debug, Clone, PartialEq)]
pub struct SrvTarget {
    pub srv: Record,
    pub addresses: Vec<Record>,
}

/// An address answer section in wire format, precomputed so that the fast path only copies:
/// each record's owner is a pointer to the question (offset 12), so it serves any letter case
/// of the name, and the records are stored twice in a row so that every rotated window is one
/// contiguous slice.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WireRecords {
    doubled: Vec<u8>,
    count: usize,
    record_len: usize,
}

impl WireRecords {
    fn new(records: &[Record]) -> Self {
        let mut once = Vec::new();
        let mut record_len = 0;
        for record in records {
            let start = once.len();
            let (rtype, data): (u16, Vec<u8>) = match &record.data {
                RData::A(a) => (1, a.0.octets().to_vec()),
                RData::AAAA(aaaa) => (28, aaaa.0.octets().to_vec()),
                _ => continue,
            };
            once.extend_from_slice(&[0xC0, 0x0C]);
            once.extend_from_slice(&rtype.to_be_bytes());
            once.extend_from_slice(&1u16.to_be_bytes()); // class IN
            once.extend_from_slice(&record.ttl.to_be_bytes());
            once.extend_from_slice(&(data.len() as u16).to_be_bytes());
            once.extend_from_slice(&data);
            record_len = once.len() - start;
        }
        let mut doubled = once.clone();
        doubled.extend_from_slice(&once);
        Self {
            doubled,
            count: records.len(),
            record_len,
        }
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// `count` records starting at record `start` (wrapping), in wire format.
    pub fn window(&self, start: usize, count: usize) -> &[u8] {
        let count = count.min(self.count);
        let begin = (start % self.count.max(1)) * self.record_len;
        self.doubled
            .get(begin..begin + count * self.record_len)
            .unwrap_or(&[])
    }
}

/// The records a pool answers right now, built once per health change and read by every query.
#[derive(Debug)]
pub struct LiveSet {
    pub v4: Vec<Record>,
    pub v6: Vec<Record>,
    pub wire_v4: WireRecords,
    pub wire_v6: WireRecords,
    /// One per answered host name (a dual-stack node has one SRV record, two addresses).
    pub srv: Vec<SrvTarget>,
    /// Members currently up (and not drained).
    pub up: usize,
    pub state: LiveState,
}

impl LiveSet {
    pub fn records(&self, record_type: RecordType) -> &[Record] {
        match record_type {
            RecordType::A => &self.v4,
            RecordType::AAAA => &self.v6,
            _ => &[],
        }
    }

    fn same_as(&self, other: &LiveSet) -> bool {
        self.state == other.state
            && self.up == other.up
            && self.v4 == other.v4
            && self.v6 == other.v6
            && self.srv == other.srv
    }
}

#[derive(Debug)]
pub struct Pool {
    pub config: PoolConfig,
    pub members: Vec<PoolMember>,
    live: ArcSwap<LiveSet>,
    /// One counter per answer kind: a shared one would advance twice for every A + AAAA pair
    /// that dual-stack clients send, and with two members the A answer would never rotate.
    rotation_v4: AtomicUsize,
    rotation_v6: AtomicUsize,
    rotation_srv: AtomicUsize,
}

impl Pool {
    pub fn new(config: PoolConfig, members: Vec<PoolMember>) -> Self {
        let live = build_live_set(&config, &members);
        Self {
            config,
            members,
            live: ArcSwap::from_pointee(live),
            rotation_v4: AtomicUsize::new(0),
            rotation_v6: AtomicUsize::new(0),
            rotation_srv: AtomicUsize::new(0),
        }
    }

    /// The current live set.
    pub fn live(&self) -> Arc<LiveSet> {
        self.live.load_full()
    }

    /// Rebuilds the live set from the members' health; swaps it in and returns true when it
    /// changed.
    pub fn refresh(&self) -> bool {
        let next = build_live_set(&self.config, &self.members);
        let same = self.live.load().same_as(&next);
        if !same {
            self.live.store(Arc::new(next));
        }
        !same
    }

    /// The answer records for `record_type`, rotated by one position per query and cut to
    /// `max_answers`.
    pub fn answer(&self, record_type: RecordType) -> Vec<Record> {
        let live = self.live.load();
        let counter = match record_type {
            RecordType::AAAA => &self.rotation_v6,
            _ => &self.rotation_v4,
        };
        self.window(live.records(record_type), counter)
            .cloned()
            .collect()
    }

    /// The SRV answer and its additional addresses: the same live members, rotation, cut and
    /// TTL as the address answers.
    pub fn answer_srv(&self) -> (Vec<Record>, Vec<Record>) {
        let live = self.live.load();
        let targets: Vec<&SrvTarget> = self.window(&live.srv, &self.rotation_srv).collect();
        let answers = targets.iter().map(|target| target.srv.clone()).collect();
        let additional = targets
            .iter()
            .flat_map(|target| target.addresses.iter().cloned())
            .collect();
        (answers, additional)
    }

    /// The next rotation start for `record_type` among `len` records: one further per query.
    pub fn next_start(&self, record_type: RecordType, len: usize) -> usize {
        let counter = match record_type {
            RecordType::AAAA => &self.rotation_v6,
            _ => &self.rotation_v4,
        };
        if len == 0 {
            0
        } else {
            counter.fetch_add(1, Ordering::Relaxed) % len
        }
    }

    /// The live set without taking a reference count: for the query path.
    pub fn live_guard(&self) -> arc_swap::Guard<Arc<LiveSet>> {
        self.live.load()
    }

    /// `max_answers` items of `items` starting one further on each call.
    fn window<'a, T>(&self, items: &'a [T], counter: &AtomicUsize) -> impl Iterator<Item = &'a T> {
        let start = if items.is_empty() {
            0
        } else {
            counter.fetch_add(1, Ordering::Relaxed) % items.len()
        };
        let count = items.len().min(self.config.max_answers());
        items.iter().cycle().skip(start).take(count)
    }
}

fn build_live_set(config: &PoolConfig, members: &[PoolMember]) -> LiveSet {
    // A drained member is never answered, not even when all others are down: the operator took
    // it out for maintenance, and sending clients to it then is the one thing they asked not to.
    let serving: Vec<&PoolMember> = members
        .iter()
        .filter(|member| !member.is_drained(config))
        .collect();
    let live: Vec<&PoolMember> = serving
        .iter()
        .copied()
        .filter(|member| member.status.health() == Health::Up)
        .collect();
    let up = live.len();
    let too_few = up == 0 || up < config.min_up();
    let (state, answered): (LiveState, Vec<&PoolMember>) = match (too_few, config.all_down) {
        (false, _) => (LiveState::Healthy, live),
        (true, AllDown::All) => (LiveState::AllAnswered, serving),
        (true, AllDown::None) => (LiveState::NoneAnswered, Vec::new()),
    };
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    let mut srv: Vec<SrvTarget> = Vec::new();
    for member in answered {
        let record = member.address_record(&config.name, config.ttl);
        match member.address {
            SocketAddr::V4(_) => v4.push(record),
            SocketAddr::V6(_) => v6.push(record),
        }
        let address = member.address_record(&member.host, config.ttl);
        match srv
            .iter_mut()
            .find(|target| matches!(&target.srv.data, RData::SRV(s) if s.target == member.host))
        {
            Some(target) => target.addresses.push(address),
            None => srv.push(SrvTarget {
                srv: Record::from_rdata(
                    config.srv_name.clone(),
                    config.ttl,
                    RData::SRV(SRV::new(
                        member.priority,
                        member.weight,
                        member.address.port(),
                        member.host.clone(),
                    )),
                ),
                addresses: vec![address],
            }),
        }
    }
    // HAProxy takes the first address of each target from the additional section, whatever
    // its resolve-prefer says: IPv4 first, as most clients prefer.
    for target in &mut srv {
        target
            .addresses
            .sort_by_key(|record| u16::from(record.record_type()));
    }
    LiveSet {
        wire_v4: WireRecords::new(&v4),
        wire_v6: WireRecords::new(&v6),
        v4,
        v6,
        srv,
        up,
        state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{MemberSource, PoolParts, ProbeSettings};

    fn pool(members: &[(&str, Health)], all_down: AllDown, min_up: usize) -> Pool {
        let members: Vec<PoolMember> = members
            .iter()
            .map(|(address, health)| {
                let address: SocketAddr = address.parse().unwrap();
                let member = Member {
                    address,
                    host: format!(
                        "ip-{}.api.k8s.example.com.",
                        address.ip().to_string().replace(['.', ':'], "-")
                    )
                    .parse()
                    .unwrap(),
                    weight: 10,
                    priority: 0,
                    source: MemberSource::File,
                };
                PoolMember::new(&member, Arc::new(MemberStatus::new(*health)))
            })
            .collect();
        let config = PoolConfig::new(PoolParts {
            name: "api.k8s.example.com.".parse().unwrap(),
            ttl: 5,
            members: members
                .iter()
                .map(|m| Member {
                    address: m.address,
                    host: m.host.clone(),
                    weight: m.weight,
                    priority: m.priority,
                    source: MemberSource::File,
                })
                .collect(),
            srv_name: "_https._tcp.api.k8s.example.com.".parse().unwrap(),
            all_down,
            min_up,
            max_answers: 10,
            probe: ProbeSettings::default(),
            drain: Vec::new(),
            new_member: crate::config::NewMemberDefaults {
                port: 6443,
                weight: 10,
                priority: 0,
                domain: "api.k8s.example.com.".parse().unwrap(),
                max_answers_follows_members: false,
            },
            discover: None,
        })
        .expect("a valid pool");
        Pool::new(config, members)
    }

    fn addresses(records: &[Record]) -> Vec<String> {
        records.iter().map(|r| r.data.to_string()).collect()
    }

    #[test]
    fn rotates_by_one_per_query_and_per_family() {
        let pool = pool(
            &[
                ("192.0.2.1:6443", Health::Up),
                ("192.0.2.2:6443", Health::Up),
                ("192.0.2.3:6443", Health::Up),
                ("[2001:db8::1]:6443", Health::Up),
            ],
            AllDown::All,
            0,
        );
        assert_eq!(
            addresses(&pool.answer(RecordType::A)),
            ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
        );
        assert_eq!(addresses(&pool.answer(RecordType::AAAA)), ["2001:db8::1"]);
        assert_eq!(
            addresses(&pool.answer(RecordType::A)),
            ["192.0.2.2", "192.0.2.3", "192.0.2.1"]
        );
        assert_eq!(
            addresses(&pool.answer(RecordType::A)),
            ["192.0.2.3", "192.0.2.1", "192.0.2.2"]
        );
    }

    #[test]
    fn only_up_members_are_answered_and_all_down_applies() {
        let pool = pool(
            &[
                ("192.0.2.1:6443", Health::Up),
                ("192.0.2.2:6443", Health::Down),
            ],
            AllDown::None,
            0,
        );
        assert_eq!(addresses(&pool.answer(RecordType::A)), ["192.0.2.1"]);
        pool.members[0].status.set(Health::Down);
        assert!(pool.refresh());
        assert!(pool.answer(RecordType::A).is_empty());
        assert_eq!(pool.live().state, LiveState::NoneAnswered);
        assert!(!pool.refresh(), "nothing changed");
    }

    #[test]
    fn srv_follows_the_live_members_with_their_addresses() {
        let pool = pool(
            &[
                ("192.0.2.1:6443", Health::Up),
                ("192.0.2.2:7443", Health::Up),
                ("192.0.2.3:6443", Health::Down),
            ],
            AllDown::All,
            0,
        );
        let (answers, additional) = pool.answer_srv();
        let rendered: Vec<String> = answers.iter().map(|r| r.data.to_string()).collect();
        assert_eq!(
            rendered,
            [
                "0 10 6443 ip-192-0-2-1.api.k8s.example.com.",
                "0 10 7443 ip-192-0-2-2.api.k8s.example.com."
            ]
        );
        assert_eq!(addresses(&additional), ["192.0.2.1", "192.0.2.2"]);
        assert_eq!(
            additional[0].name.to_string(),
            "ip-192-0-2-1.api.k8s.example.com."
        );
        let (rotated, _) = pool.answer_srv();
        assert_eq!(rotated[0].data.to_string(), rendered[1], "SRV rotates too");
    }

    #[test]
    fn drained_members_are_never_answered() {
        let pool = pool(
            &[
                ("192.0.2.1:6443", Health::Up),
                ("192.0.2.2:6443", Health::Down),
            ],
            AllDown::All,
            0,
        );
        assert!(pool.members[0].status.set_drained(true));
        assert!(pool.refresh());
        // The only up member is drained: the fallback answers the others, never the drained one.
        assert_eq!(addresses(&pool.answer(RecordType::A)), ["192.0.2.2"]);
        assert_eq!(pool.live().state, LiveState::AllAnswered);
        pool.members[0].status.set_drained(false);
        assert!(pool.refresh());
        assert_eq!(addresses(&pool.answer(RecordType::A)), ["192.0.2.1"]);
    }

    #[test]
    fn min_up_answers_everyone_when_too_few_are_up() {
        let pool = pool(
            &[
                ("192.0.2.1:6443", Health::Up),
                ("192.0.2.2:6443", Health::Down),
                ("192.0.2.3:6443", Health::Pending),
            ],
            AllDown::All,
            2,
        );
        assert_eq!(pool.live().state, LiveState::AllAnswered);
        assert_eq!(pool.answer(RecordType::A).len(), 3);
    }
}
