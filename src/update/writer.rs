//! The single writer: the one task that changes the configuration in force, whatever asks for
//! it — a reload of the files or an RFC 2136 update. Taking them one at a time keeps the order,
//! the journal and the serials consistent.
//!
//! Applying a configuration (probe new members first, then swap the snapshot) belongs to the
//! daemon, which knows the probers: the writer asks for it through [`Apply`].

use std::collections::BTreeSet;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::Name;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use prometheus_client::metrics::gauge::Gauge;

use super::journal::{self, Entry, Journal};
use super::{KeyRing, compact, plan};
use crate::config::{
    Config, CopyError, DiscoveredSets, DiscoveryVerdict, TransferredCopies, TransferredCopy,
    TsigKey, ZoneConfig, zone_from_copy,
};
use crate::zone::{Health, Snapshot};

/// What the daemon does to put a configuration in force: new members get their first probe,
/// removed members' probers stop, and the new snapshot replaces the old one whole.
pub trait Apply: Send {
    fn apply(&mut self, next: &Config) -> impl Future<Output = ()> + Send;
    /// Members probed now, for logs.
    fn members(&self) -> usize;
}

/// A verified update on its way to the writer.
#[derive(Debug)]
pub struct UpdateRequest {
    pub message: Message,
    /// The key that signed it.
    pub key: TsigKey,
    /// Where the writer sends the response code.
    pub reply: oneshot::Sender<ResponseCode>,
}

/// Configuration files loaded again, to be put in force.
#[derive(Debug)]
pub struct Reload {
    /// The files as loaded: the base that the journal overlays.
    pub base: Config,
    /// Told once the configuration is in force.
    pub done: oneshot::Sender<Reloaded>,
}

/// A pool's membership as the cluster's EndpointSlice proposes it now (from `crate::discover`,
/// through the daemon): the writer adds the new addresses as members, removes the discovered
/// members that left, and never touches the members the files or updates put there.
#[derive(Debug)]
pub struct Discovered {
    pub pool: Name,
    /// Every address the slice proposes, already inside the pool's `allow`; never empty.
    pub addresses: BTreeSet<IpAddr>,
    /// Where the writer says whether it applied the set.
    pub reply: oneshot::Sender<DiscoveryVerdict>,
}

/// A secondary zone's copy from its primary (from `crate::transfer::secondary`, through the
/// daemon), already complete and verified: the writer checks it against the zone file's rules
/// and puts it in force, or refuses it and keeps the last good copy.
#[derive(Debug)]
pub struct Transferred {
    pub origin: Name,
    /// The copy; `None` withdraws the copy in force (past the SOA's expire): SERVFAIL.
    pub copy: Option<TransferredCopy>,
    /// Where the writer says whether it put the copy in force.
    pub reply: oneshot::Sender<Result<(), CopyError>>,
}

/// What a reload put in force, for its log line.
#[derive(Debug, Clone, Copy)]
pub struct Reloaded {
    pub zones: usize,
    pub members: usize,
}

/// The writer's state: the configuration in force, the files it came from, and the journal.
pub struct Writer<A> {
    applier: A,
    config: Config,
    base: Config,
    journal: Journal,
    /// The snapshot in force: updates are planned against the zone as served.
    snapshot: Arc<ArcSwap<Snapshot>>,
    /// The keys the listeners verify with; they follow the configuration in force.
    keys: KeyRing,
    /// 1 while the journal is damaged (updates refused until it is repaired), for alerting.
    journal_damaged: Gauge,
    /// The last membership applied from the cluster, laid over every configuration put in
    /// force (see [`Writer::with_discovery`]).
    discovered: DiscoveredSets,
    discovered_requests: Option<mpsc::Receiver<Discovered>>,
    /// The copy in force of each secondary zone, laid over every configuration put in force.
    copies: TransferredCopies,
    transferred_requests: Option<mpsc::Receiver<Transferred>>,
}

impl<A: Apply> Writer<A> {
    /// A writer for `config` (already in force, from `base` and `journal`).
    pub fn new(
        applier: A,
        config: Config,
        base: Config,
        journal: Journal,
        snapshot: Arc<ArcSwap<Snapshot>>,
        keys: KeyRing,
        journal_damaged: Gauge,
    ) -> Self {
        journal_damaged.set(i64::from(journal.damage.is_some()));
        Self {
            applier,
            config,
            base,
            journal,
            snapshot,
            keys,
            journal_damaged,
            discovered: DiscoveredSets::default(),
            discovered_requests: None,
            copies: TransferredCopies::default(),
            transferred_requests: None,
        }
    }

    /// Takes secondary zones' copies from `requests`, starting from `copies` (the ones kept in
    /// `state_dir`, already laid over the configuration given to [`Writer::new`]).
    pub fn with_transfers(
        mut self,
        copies: TransferredCopies,
        requests: mpsc::Receiver<Transferred>,
    ) -> Self {
        self.copies = copies;
        self.transferred_requests = Some(requests);
        self
    }

    /// Takes discovered memberships from `requests`, starting from `sets` (the ones kept in
    /// `state_dir`, already laid over the configuration given to [`Writer::new`]).
    pub fn with_discovery(
        mut self,
        sets: DiscoveredSets,
        requests: mpsc::Receiver<Discovered>,
    ) -> Self {
        self.discovered = sets;
        self.discovered_requests = Some(requests);
        self
    }

    /// Takes reloads and updates, one at a time, until `shutdown`.
    pub async fn run(
        mut self,
        mut updates: mpsc::Receiver<UpdateRequest>,
        mut reloads: mpsc::Receiver<Reload>,
        shutdown: CancellationToken,
    ) {
        let mut discovered = self.discovered_requests.take();
        let mut transferred = self.transferred_requests.take();
        loop {
            tokio::select! {
                Some(request) = async { match transferred.as_mut() { Some(r) => r.recv().await, None => std::future::pending().await } } => {
                    let verdict = self.transferred(&request.origin, request.copy).await;
                    let _ = request.reply.send(verdict);
                }
                Some(request) = async { match discovered.as_mut() { Some(r) => r.recv().await, None => std::future::pending().await } } => {
                    let verdict = self.discovered(&request).await;
                    let _ = request.reply.send(verdict);
                }
                Some(reload) = reloads.recv() => {
                    let reloaded = self.reload(reload.base).await;
                    let _ = reload.done.send(reloaded);
                }
                Some(request) = updates.recv() => {
                    let code = self.update(&request).await;
                    let _ = request.reply.send(code);
                }
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// Puts the reloaded files, with the journal laid over them, in force. Changes to
    /// `[server]` that need new sockets wait for a restart.
    async fn reload(&mut self, base: Config) -> Reloaded {
        let (mut next, journal) = journal::load_overlaid(&base);
        let mut comparable = next.server.clone();
        comparable.tsig_keys = self.config.server.tsig_keys.clone();
        if comparable != self.config.server {
            warn!(
                "changes to [server] (listen, http, timeouts, state_dir) take effect at the next restart"
            );
            next.server.listen = self.config.server.listen.clone();
            next.server.http = self.config.server.http;
        }
        self.base = base;
        self.journal_damaged
            .set(i64::from(journal.damage.is_some()));
        self.journal = journal;
        self.apply(next).await;
        Reloaded {
            zones: self.config.zones.len(),
            members: self.applier.members(),
        }
    }

    /// Makes `next` the configuration in force: the one way state changes, for reloads and
    /// dynamic updates alike.
    async fn apply(&mut self, mut next: Config) {
        self.discovered.lay_over(&mut next);
        self.copies.lay_over(&mut next);
        keep_serials_increasing(&self.config.zones, &mut next.zones);
        self.applier.apply(&next).await;
        self.keys.replace(next.server.tsig_keys.clone());
        self.config = next;
    }

    /// Handles one authenticated RFC 2136 update: checks it, journals it durably, applies it.
    /// The response code is what the client is told; NOERROR only once the change is on disk.
    async fn update(&mut self, request: &UpdateRequest) -> ResponseCode {
        let key = &request.key.name;
        let zone_name = match plan::zone_name(&request.message) {
            Ok(name) => name,
            Err(code) => return code,
        };
        let snapshot = self.snapshot.load_full();
        let Some(zone) = snapshot
            .zones()
            .iter()
            .find(|zone| Name::from(&zone.origin) == zone_name)
        else {
            info!(zone = %zone_name, %key, "update refused: not a zone served here");
            return ResponseCode::NotAuth;
        };
        let allowed = zone
            .config
            .update
            .as_ref()
            .is_some_and(|policy| policy.keys.contains(key));
        if !allowed {
            info!(zone = %zone_name, %key, "update refused: the zone does not take updates signed with this key");
            return ResponseCode::Refused;
        }
        if let Some(damage) = &self.journal.damage {
            error!(zone = %zone_name, %damage, "update refused: the journal is damaged; repair it and reload");
            return ResponseCode::ServFail;
        }
        let changes = match plan::plan(&request.message, zone) {
            Ok(changes) => changes,
            Err(code) => {
                info!(zone = %zone_name, %key, rcode = %code, "update not applied");
                return code;
            }
        };
        if changes.is_empty() {
            info!(zone = %zone_name, %key, "update changes nothing");
            return ResponseCode::NoError;
        }
        let Some(next) = self.journal_changes(&zone_name, &changes) else {
            return ResponseCode::ServFail;
        };
        for change in &changes {
            info!(zone = %zone_name, %key, pool = %change.pool, member = %change.address, operation = ?change.operation, "update journaled");
        }
        self.apply(next).await;
        info!(
            zone = %zone_name,
            serial = self.config.zones.iter().find(|z| z.origin == zone_name).map_or(0, |z| z.soa.serial),
            members = self.applier.members(),
            "update applied"
        );
        ResponseCode::NoError
    }

    /// Puts a pool's discovered membership in force, unless it would leave the pool with no
    /// member up (the last good membership stays: never worse than static).
    async fn discovered(&mut self, request: &Discovered) -> DiscoveryVerdict {
        let pool = &request.pool;
        let Some(allowed) = self
            .config
            .zones
            .iter()
            .flat_map(|zone| &zone.pools)
            .find(|p| &p.name == pool)
            .and_then(|p| p.discover.clone())
        else {
            return DiscoveryVerdict::NotDiscovering;
        };
        let proposed: BTreeSet<IpAddr> = request
            .addresses
            .iter()
            .copied()
            .filter(|a| allowed.allows(*a))
            .collect();
        if self.discovered.0.get(pool) == Some(&proposed) {
            return DiscoveryVerdict::Unchanged;
        }
        let mut sets = self.discovered.clone();
        sets.0.insert(pool.clone(), proposed);
        let (mut next, _, _) = journal::overlay(&self.base, &self.journal.entries);
        sets.lay_over(&mut next);
        let members = |config: &Config| -> BTreeSet<IpAddr> {
            journal::find_pool(config, pool)
                .map(|p| p.members().iter().map(|m| m.address.ip()).collect())
                .unwrap_or_default()
        };
        let (before, after) = (members(&self.config), members(&next));
        let added: Vec<IpAddr> = after.difference(&before).copied().collect();
        let removed: Vec<IpAddr> = before.difference(&after).copied().collect();
        let snapshot = self.snapshot.load_full();
        let up_after = snapshot
            .pools()
            .filter(|p| &p.config.name == pool)
            .flat_map(|p| &p.members)
            .filter(|m| after.contains(&m.address.ip()) && m.status.health() == Health::Up)
            .count();
        if !removed.is_empty() && up_after == 0 {
            warn!(%pool, ?removed, "discovered membership not applied: it would leave no member up");
            return DiscoveryVerdict::WouldLeaveNoneUp { removed };
        }
        self.discovered = sets;
        if added.is_empty() && removed.is_empty() {
            // Addresses the pool had from the files or updates: nothing to probe or swap.
            return DiscoveryVerdict::Applied { added, removed };
        }
        self.apply(next).await;
        info!(%pool, added = %join(&added), removed = %join(&removed), members = self.applier.members(), "discovered membership applied");
        DiscoveryVerdict::Applied { added, removed }
    }

    /// Puts a secondary zone's copy in force (or withdraws it), when it fits the zone file's
    /// rules; otherwise the copy in force stays.
    async fn transferred(
        &mut self,
        origin: &Name,
        copy: Option<TransferredCopy>,
    ) -> Result<(), CopyError> {
        let Some(secondary) = self.config.secondaries.iter().find(|z| &z.origin == origin) else {
            return Err(CopyError::new(format!(
                "{origin} is not a secondary zone in the configuration in force"
            )));
        };
        match copy {
            Some(copy) => {
                let zone = zone_from_copy(secondary, &copy.soa, &copy.records)?;
                if self.copies.0.get(origin) == Some(&copy) {
                    return Ok(());
                }
                info!(zone = %origin, serial = zone.soa.serial, records = zone.records.len(), members = zone.pools.iter().map(|p| p.members().len()).sum::<usize>(), "copy from the primary put in force");
                self.copies.0.insert(origin.clone(), copy);
            }
            None => {
                if self.copies.0.remove(origin).is_none() {
                    return Ok(());
                }
                warn!(zone = %origin, "copy withdrawn: the zone answers SERVFAIL until the primary is reached");
            }
        }
        let (next, _, _) = journal::overlay(&self.base, &self.journal.entries);
        self.apply(next).await;
        Ok(())
    }

    /// Writes `changes` to the journal, durably, and returns the configuration they make;
    /// `None` (logged) when they cannot be journaled.
    fn journal_changes(&mut self, zone_name: &Name, changes: &[plan::Change]) -> Option<Config> {
        let path = self.journal.path.clone()?;
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |age| age.as_secs());
        let mut entries = self.journal.entries.clone();
        for change in changes {
            let file_listed = journal::find_pool(&self.base, &change.pool).is_some_and(|pool| {
                pool.members()
                    .iter()
                    .any(|m| m.address.ip() == change.address)
            });
            entries.push(Entry {
                operation: change.operation,
                pool: change.pool.clone(),
                address: change.address,
                file_listed,
                at,
            });
        }
        let (next, kept, superseded) = journal::overlay(&self.base, &entries);
        if !superseded.is_empty() || kept.len() != entries.len() {
            error!(zone = %zone_name, ?superseded, "update not applied: it does not apply to the zone files");
            return None;
        }
        // The fewest entries that give `next`: the journal does not grow with every update.
        let kept = compact::compact(&self.base, &kept);
        if let Err(error) = journal::write(&path, &kept) {
            error!(journal = %path.display(), %error, "update not applied: cannot write the journal");
            return None;
        }
        self.journal.entries = kept;
        Some(next)
    }
}

fn join(addresses: &[IpAddr]) -> String {
    addresses
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every zone whose content changed gets a serial above its previous one, whatever its file
/// says (a derived serial can repeat within a second, and a hand-set one can be forgotten);
/// an unchanged zone keeps its serial.
fn keep_serials_increasing(previous: &[ZoneConfig], next: &mut [ZoneConfig]) {
    // A secondary zone serves its primary's serial, never one of its own.
    for zone in next.iter_mut().filter(|zone| zone.primary.is_none()) {
        let Some(old) = previous.iter().find(|old| old.origin == zone.origin) else {
            continue;
        };
        let mut comparable = zone.clone();
        comparable.soa.serial = old.soa.serial;
        comparable.file = old.file.clone();
        if comparable == *old {
            zone.soa.serial = old.soa.serial;
        } else if !serial_greater(zone.soa.serial, old.soa.serial) {
            zone.soa.serial = old.soa.serial.wrapping_add(1);
        }
    }
}

/// Serial number arithmetic (RFC 1982): `a` is newer than `b`.
fn serial_greater(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < (1 << 31)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::net::SocketAddr;
    use std::path::Path;
    use std::sync::Mutex;

    use super::*;
    use crate::config::{
        Cidr, ClusterAccess, Credentials, Discover, parse_main_text, parse_zone_text,
    };
    use crate::zone::MemberStatus;

    #[test]
    fn serial_arithmetic_wraps() {
        assert!(serial_greater(2, 1));
        assert!(!serial_greater(1, 1));
        assert!(!serial_greater(1, 2));
        assert!(serial_greater(0, u32::MAX));
    }

    const ZONE: &str = r#"
origin = "k8s.example.com."
records = [{ name = "@", type = "NS", value = "ns1" }, { name = "ns1", type = "A", value = "192.0.2.53" }]
[soa]
mname = "ns1"
rname = "hostmaster.k8s.example.com."
serial = 1
[pool.api]
members = ["192.0.2.10", "192.0.2.11"]
"#;

    /// Health cells by address, shared by every snapshot the fake daemon builds: a test sets a
    /// member's health as its prober would.
    #[derive(Clone, Default)]
    struct Probers(Arc<Mutex<HashMap<IpAddr, Arc<MemberStatus>>>>);

    impl Probers {
        /// The member's cell; a new member starts with `first_probe`, as if its first probe ran.
        fn status(&self, address: SocketAddr, first_probe: Health) -> Arc<MemberStatus> {
            let mut cells = self.0.lock().expect("not poisoned");
            cells
                .entry(address.ip())
                .or_insert_with(|| Arc::new(MemberStatus::new(first_probe)))
                .clone()
        }

        fn set(&self, address: &str, health: Health) {
            let address: IpAddr = address.parse().expect("an address");
            let cells = self.0.lock().expect("not poisoned");
            cells.get(&address).expect("a probed member").set(health);
        }
    }

    /// The daemon's part: builds and swaps the snapshot; a new member's first probe gives
    /// `first_probe`.
    struct FakeDaemon {
        probers: Probers,
        snapshot: Arc<ArcSwap<Snapshot>>,
        first_probe: Arc<Mutex<Health>>,
        applied: Arc<Mutex<usize>>,
    }

    impl Apply for FakeDaemon {
        async fn apply(&mut self, next: &Config) {
            let first_probe = *self.first_probe.lock().expect("not poisoned");
            let probers = self.probers.clone();
            self.snapshot
                .store(Arc::new(Snapshot::build(next, |_, member| {
                    probers.status(member, first_probe)
                })));
            *self.applied.lock().expect("not poisoned") += 1;
        }

        fn members(&self) -> usize {
            self.probers.0.lock().expect("not poisoned").len()
        }
    }

    fn config() -> Config {
        let path = Path::new("/etc/apidns/apidns.toml");
        let (server, probe) =
            parse_main_text(path, "[server]\nlisten = [\"127.0.0.1:53\"]\n").expect("main");
        let mut zone = parse_zone_text(Path::new("zones/k8s.toml"), ZONE, &probe, 1).expect("zone");
        zone.pools[0].discover = Some(Discover {
            kubeconfig: "discover.kubeconfig".into(),
            allow: vec!["192.0.2.0/24".parse::<Cidr>().expect("a network")],
            access: ClusterAccess {
                server: "https://api.k8s.example.com:6443".to_string(),
                server_name: "api.k8s.example.com".to_string(),
                port: 6443,
                ca_pem: Vec::new(),
                credentials: Credentials::Token("token".to_string()),
            },
        });
        Config {
            path: path.to_path_buf(),
            server,
            probe,
            zones: vec![zone],
            secondaries: Vec::new(),
        }
    }

    fn pool_name() -> Name {
        Name::from_ascii("api.k8s.example.com.").expect("a name")
    }

    fn proposal(addresses: &[&str]) -> Discovered {
        Discovered {
            pool: pool_name(),
            addresses: addresses
                .iter()
                .map(|a| a.parse().expect("an address"))
                .collect(),
            reply: oneshot::channel().0,
        }
    }

    fn members_in_force(writer: &Writer<FakeDaemon>) -> Vec<String> {
        journal::find_pool(&writer.config, &pool_name())
            .map(|pool| {
                pool.members()
                    .iter()
                    .map(|m| m.address.ip().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn addresses(list: &[&str]) -> Vec<IpAddr> {
        list.iter()
            .map(|a| a.parse().expect("an address"))
            .collect()
    }

    #[tokio::test]
    async fn a_discovered_change_that_would_leave_no_member_up_is_not_applied() {
        let config = config();
        let probers = Probers::default();
        let snapshot = Arc::new(ArcSwap::from_pointee(Snapshot::build(
            &config,
            |_, member| probers.status(member, Health::Down),
        )));
        let first_probe = Arc::new(Mutex::new(Health::Up));
        let applied = Arc::new(Mutex::new(0));
        let daemon = FakeDaemon {
            probers: probers.clone(),
            snapshot: snapshot.clone(),
            first_probe: first_probe.clone(),
            applied: applied.clone(),
        };
        let mut writer = Writer::new(
            daemon,
            config.clone(),
            config,
            Journal::default(),
            snapshot,
            KeyRing::new(Vec::new()),
            Gauge::default(),
        );
        let applies = || *applied.lock().expect("not poisoned");

        // Both bootstrap members down; the cluster adds .12, whose first probe passes: it is
        // the one member up.
        assert_eq!(
            writer.discovered(&proposal(&["192.0.2.12"])).await,
            DiscoveryVerdict::Applied {
                added: addresses(&["192.0.2.12"]),
                removed: Vec::new()
            }
        );
        assert_eq!(
            members_in_force(&writer),
            ["192.0.2.10", "192.0.2.11", "192.0.2.12"]
        );
        assert_eq!(applies(), 1);

        // The slice moves to .13 only (not probed yet, so not up): dropping .12 would leave no
        // member up. Nothing changes, not even the set kept for the next configuration.
        *first_probe.lock().expect("not poisoned") = Health::Down;
        let moved = ["192.0.2.13"];
        assert_eq!(
            writer.discovered(&proposal(&moved)).await,
            DiscoveryVerdict::WouldLeaveNoneUp {
                removed: addresses(&["192.0.2.12"])
            }
        );
        assert_eq!(
            members_in_force(&writer),
            ["192.0.2.10", "192.0.2.11", "192.0.2.12"]
        );
        assert_eq!(applies(), 1, "nothing put in force");
        assert_eq!(
            writer.discovered.0.get(&pool_name()),
            Some(&addresses(&["192.0.2.12"]).into_iter().collect())
        );
        // Asked again, it is refused again (not taken as the set already applied).
        assert!(matches!(
            writer.discovered(&proposal(&moved)).await,
            DiscoveryVerdict::WouldLeaveNoneUp { .. }
        ));

        // Once a bootstrap member is up again, the same change leaves a member up: applied.
        probers.set("192.0.2.10", Health::Up);
        assert_eq!(
            writer.discovered(&proposal(&moved)).await,
            DiscoveryVerdict::Applied {
                added: addresses(&["192.0.2.13"]),
                removed: addresses(&["192.0.2.12"])
            }
        );
        assert_eq!(
            members_in_force(&writer),
            ["192.0.2.10", "192.0.2.11", "192.0.2.13"]
        );
        assert_eq!(applies(), 2);
    }
}
