//! A pool as configured: its members and the rules that bind them. The fields that a rule
//! binds (members, `min_up`, `max_answers`, drained members) are private, so that every change
//! goes through a method that keeps the rule: the parser builds a pool with [`PoolConfig::new`],
//! and dynamic updates (and the journal's replay of them) change it with
//! [`PoolConfig::add_member`] and [`PoolConfig::remove_member`].

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

use hickory_proto::ProtoError;
use hickory_proto::rr::Name;

use super::discover::Discover;
use super::probe::ProbeSettings;

/// Default SRV weight: above 0, because HAProxy takes a server's weight from the SRV record
/// and sends nothing to weight 0.
pub const DEFAULT_SRV_WEIGHT: u16 = 10;
/// Default service label of a pool's SRV records.
pub const DEFAULT_SRV_SERVICE: &str = "_https._tcp";

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
    /// Why it is a member, shown in /status and by `apidns status`.
    pub source: MemberSource,
}

/// Where a member came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberSource {
    /// Listed in the zone file.
    File,
    /// Added by an RFC 2136 update (kept in the journal).
    Update,
    /// Proposed by the cluster's `default/kubernetes` EndpointSlice (kept in `state_dir`).
    Discovered,
    /// In the copy of a secondary zone transferred from its primary (kept in `state_dir`).
    Transferred,
}

impl MemberSource {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberSource::File => "file",
            MemberSource::Update => "update",
            MemberSource::Discovered => "discovered",
            MemberSource::Transferred => "transferred",
        }
    }
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

/// Everything a pool is made of, before [`PoolConfig::new`] checks that it holds together.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolParts {
    pub name: Name,
    pub ttl: u32,
    pub members: Vec<Member>,
    pub srv_name: Name,
    pub all_down: AllDown,
    pub min_up: usize,
    /// Ignored when `new_member.max_answers_follows_members` is set: it is the member count.
    pub max_answers: usize,
    pub probe: ProbeSettings,
    pub drain: Vec<IpAddr>,
    pub new_member: NewMemberDefaults,
    pub discover: Option<Discover>,
}

/// A pool whose parts do not hold together, or a change that would break a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolRuleError {
    #[error("pool {pool} has no members; a pool needs at least one")]
    NoMembers { pool: Name },
    #[error("{address} is listed twice in pool {pool}; a DNS answer carries addresses only")]
    DuplicateAddress { pool: Name, address: IpAddr },
    #[error("pool {pool}: min_up {min_up} is more than its {members} members")]
    MinUpAboveMembers {
        pool: Name,
        min_up: usize,
        members: usize,
    },
    #[error("pool {pool}: max_answers must be at least 1")]
    NoAnswers { pool: Name },
    #[error("pool {pool}: {address} is drained but is not a member")]
    DrainedNonMember { pool: Name, address: IpAddr },
    #[error("{address} is the last member of {pool}; a pool needs at least one")]
    LastMember { pool: Name, address: IpAddr },
    #[error(transparent)]
    MemberName(#[from] MemberNameError),
}

/// A member's address cannot be made into a host name under its domain (the name would be
/// too long).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot name the member {address}: {reason}")]
pub struct MemberNameError {
    address: SocketAddr,
    reason: String,
}

/// The name a member configured or added without one gets: `ip-192-0-2-10.<domain>`.
pub fn generated_member_host(address: SocketAddr, domain: &Name) -> Result<Name, MemberNameError> {
    let label = format!("ip-{}", address.ip().to_string().replace(['.', ':'], "-"));
    Name::from_ascii(&label)
        .and_then(|name| name.append_domain(domain))
        .map(|name| name.to_lowercase())
        .map_err(|reason: ProtoError| MemberNameError {
            address,
            reason: reason.to_string(),
        })
}

/// One pool: a name answered with its live members' addresses, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    /// Absolute, lower-case name answered with the live members, e.g. `api.k8s.example.com.`.
    pub name: Name,
    pub ttl: u32,
    /// Owner of the pool's SRV records, e.g. `_https._tcp.api.k8s.example.com.`.
    pub srv_name: Name,
    pub all_down: AllDown,
    pub probe: ProbeSettings,
    /// Members proposed by the cluster's EndpointSlice, when the pool discovers them.
    pub discover: Option<Discover>,
    /// Members in configuration order, then in the order updates added them; never empty, no
    /// address twice.
    members: Vec<Member>,
    /// With fewer members up than this, answer as if all were down (0: only when none is up).
    /// Never more than the member count.
    min_up: usize,
    /// Most addresses in one answer (at least 1); the rotation still cycles through every live
    /// member.
    max_answers: usize,
    /// Members taken out of the answers by the operator (still probed and reported); each is a
    /// member.
    drain: Vec<IpAddr>,
    /// What a member added by a dynamic update takes from the pool.
    new_member: NewMemberDefaults,
}

impl PoolConfig {
    /// A pool from its parts, when they hold together.
    pub fn new(parts: PoolParts) -> Result<Self, PoolRuleError> {
        let pool = parts.name.clone();
        if parts.members.is_empty() {
            return Err(PoolRuleError::NoMembers { pool });
        }
        let mut seen = HashSet::with_capacity(parts.members.len());
        if let Some(member) = parts.members.iter().find(|m| !seen.insert(m.address.ip())) {
            let address = member.address.ip();
            return Err(PoolRuleError::DuplicateAddress { pool, address });
        }
        if parts.min_up > parts.members.len() {
            return Err(PoolRuleError::MinUpAboveMembers {
                pool,
                min_up: parts.min_up,
                members: parts.members.len(),
            });
        }
        if let Some(&address) = parts.drain.iter().find(|ip| !seen.contains(ip)) {
            return Err(PoolRuleError::DrainedNonMember { pool, address });
        }
        let max_answers = if parts.new_member.max_answers_follows_members {
            parts.members.len()
        } else {
            parts.max_answers
        };
        if max_answers == 0 {
            return Err(PoolRuleError::NoAnswers { pool });
        }
        Ok(Self {
            name: parts.name,
            ttl: parts.ttl,
            srv_name: parts.srv_name,
            all_down: parts.all_down,
            probe: parts.probe,
            discover: parts.discover,
            members: parts.members,
            min_up: parts.min_up,
            max_answers,
            drain: parts.drain,
            new_member: parts.new_member,
        })
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The member at `address`, whatever its port.
    pub fn member(&self, address: IpAddr) -> Option<&Member> {
        self.members.iter().find(|m| m.address.ip() == address)
    }

    pub fn min_up(&self) -> usize {
        self.min_up
    }

    pub fn max_answers(&self) -> usize {
        self.max_answers
    }

    pub fn drain(&self) -> &[IpAddr] {
        &self.drain
    }

    pub fn is_drained(&self, address: IpAddr) -> bool {
        self.drain.contains(&address)
    }

    pub fn new_member(&self) -> &NewMemberDefaults {
        &self.new_member
    }

    /// Adds a member at `address` with the pool's defaults for new members (port, SRV weight
    /// and priority, a generated name). `Ok(false)` when it is a member already.
    pub fn add_member(
        &mut self,
        address: IpAddr,
        source: MemberSource,
    ) -> Result<bool, PoolRuleError> {
        if self.member(address).is_some() {
            return Ok(false);
        }
        let socket = SocketAddr::new(address, self.new_member.port);
        let host = generated_member_host(socket, &self.new_member.domain)?;
        self.members.push(Member {
            address: socket,
            host,
            weight: self.new_member.weight,
            priority: self.new_member.priority,
            source,
        });
        self.follow_member_count();
        Ok(true)
    }

    /// Removes the member at `address`, and with it its drain. `Ok(false)` when it is not a
    /// member; an error when it is the last one (a pool with no members answers nothing, and
    /// an empty A RRset cannot be told from a mistake).
    pub fn remove_member(&mut self, address: IpAddr) -> Result<bool, PoolRuleError> {
        if self.member(address).is_none() {
            return Ok(false);
        }
        if self.members.len() == 1 {
            return Err(PoolRuleError::LastMember {
                pool: self.name.clone(),
                address,
            });
        }
        self.members.retain(|m| m.address.ip() != address);
        self.drain.retain(|ip| *ip != address);
        self.follow_member_count();
        Ok(true)
    }

    /// Keeps the limits that depend on the member count true of it.
    fn follow_member_count(&mut self) {
        if self.new_member.max_answers_follows_members {
            self.max_answers = self.members.len();
        }
        self.min_up = self.min_up.min(self.members.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Name {
        Name::from_ascii(text).expect("a valid name")
    }

    fn member(address: &str) -> Member {
        let address: SocketAddr = address.parse().expect("a socket address");
        Member {
            address,
            host: generated_member_host(address, &name("api.example.com.")).expect("a name"),
            weight: DEFAULT_SRV_WEIGHT,
            priority: 0,
            source: MemberSource::File,
        }
    }

    fn parts(members: &[&str]) -> PoolParts {
        PoolParts {
            name: name("api.example.com."),
            ttl: 5,
            members: members.iter().map(|m| member(m)).collect(),
            srv_name: name("_https._tcp.api.example.com."),
            all_down: AllDown::All,
            min_up: 0,
            max_answers: 0,
            probe: ProbeSettings::default(),
            drain: Vec::new(),
            new_member: NewMemberDefaults {
                port: 6443,
                weight: DEFAULT_SRV_WEIGHT,
                priority: 0,
                domain: name("api.example.com."),
                max_answers_follows_members: true,
            },
            discover: None,
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn parts_that_break_a_rule_make_no_pool() {
        assert!(matches!(
            PoolConfig::new(parts(&[])),
            Err(PoolRuleError::NoMembers { .. })
        ));
        assert!(matches!(
            PoolConfig::new(parts(&["192.0.2.10:6443", "192.0.2.10:443"])),
            Err(PoolRuleError::DuplicateAddress { .. })
        ));
        let mut too_many = parts(&["192.0.2.10:6443"]);
        too_many.min_up = 2;
        assert!(matches!(
            PoolConfig::new(too_many),
            Err(PoolRuleError::MinUpAboveMembers { .. })
        ));
        let mut stranger = parts(&["192.0.2.10:6443"]);
        stranger.drain = vec![ip("192.0.2.99")];
        assert!(matches!(
            PoolConfig::new(stranger),
            Err(PoolRuleError::DrainedNonMember { .. })
        ));
        let mut none = parts(&["192.0.2.10:6443"]);
        none.new_member.max_answers_follows_members = false;
        assert!(matches!(
            PoolConfig::new(none),
            Err(PoolRuleError::NoAnswers { .. })
        ));
    }

    #[test]
    fn added_and_removed_members_keep_the_limits_true() {
        let mut parts = parts(&["192.0.2.10:6443", "192.0.2.11:6443"]);
        parts.min_up = 2;
        parts.drain = vec![ip("192.0.2.11")];
        let mut pool = PoolConfig::new(parts).expect("a valid pool");
        assert_eq!(pool.max_answers(), 2, "max_answers follows the members");

        assert_eq!(
            pool.add_member(ip("192.0.2.12"), MemberSource::Update),
            Ok(true)
        );
        assert_eq!(
            pool.add_member(ip("192.0.2.12"), MemberSource::Update),
            Ok(false)
        );
        let added = pool.member(ip("192.0.2.12")).expect("added");
        assert_eq!(added.address.port(), 6443);
        assert_eq!(added.host, name("ip-192-0-2-12.api.example.com."));
        assert_eq!(added.source, MemberSource::Update);
        assert_eq!(pool.max_answers(), 3);

        assert_eq!(pool.remove_member(ip("192.0.2.11")), Ok(true));
        assert!(
            !pool.is_drained(ip("192.0.2.11")),
            "the drain leaves with the member"
        );
        assert_eq!(pool.remove_member(ip("192.0.2.11")), Ok(false));
        assert_eq!(pool.remove_member(ip("192.0.2.12")), Ok(true));
        assert_eq!(pool.min_up(), 1, "min_up never above the member count");
        assert_eq!(pool.max_answers(), 1);
        assert!(matches!(
            pool.remove_member(ip("192.0.2.10")),
            Err(PoolRuleError::LastMember { .. })
        ));
        assert_eq!(pool.members().len(), 1);
    }

    #[test]
    fn a_set_max_answers_stays_as_set() {
        let mut parts = parts(&["192.0.2.10:6443"]);
        parts.new_member.max_answers_follows_members = false;
        parts.max_answers = 3;
        let mut pool = PoolConfig::new(parts).expect("a valid pool");
        assert_eq!(
            pool.add_member(ip("192.0.2.11"), MemberSource::Update),
            Ok(true)
        );
        assert_eq!(pool.max_answers(), 3);
    }
}
