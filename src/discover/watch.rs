//! One pool's watch: kube-rs's runtime watcher on the `default/kubernetes` EndpointSlices
//! (label `kubernetes.io/service-name=kubernetes`), through one pool member after another.
//!
//! The runtime watcher lists, then watches from the list's resourceVersion with bookmarks,
//! re-lists when the server says 410 Gone, and re-watches when a stream ends;
//! `default_backoff()` spaces retries after errors (0.8 s doubling to 30 s, with jitter). What
//! it cannot do is change servers: when the member it goes through fails (an error before any
//! event, or two in a row), this loop moves to the next live member.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use hickory_proto::rr::Name;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::slice::{Slices, ready_addresses, split_by_allow};
use super::status::DiscoverMetrics;
use super::{Propose, Shared, state};
use crate::config::{Discover, DiscoveryVerdict};
use crate::zone::{Health, Snapshot};

/// The label kube-apiserver's lease reconciler puts on the `kubernetes` Service's slices.
const LABEL_SELECTOR: &str = "kubernetes.io/service-name=kubernetes";
/// After every member failed, wait this long (doubling up to the most) before trying again.
const FIRST_PAUSE: Duration = Duration::from_millis(500);
const LONGEST_PAUSE: Duration = Duration::from_secs(30);
/// A refused change is proposed again this often, in case the members it needed came up.
const RETRY_REFUSED: Duration = Duration::from_secs(5);
/// How often the watch looks at the probes of the member it goes through: a hung member (no
/// reset, no reply) is seen by its probes long before the watcher's idle timeout.
const CHECK_MEMBER: Duration = Duration::from_millis(500);
/// A watch silent this long has the member answer a small request (`/version`) within
/// `ANSWER_WITHIN`, or the member counts as hung and the watch moves on: a member that accepts
/// connections but answers nothing passes TCP probes, and the watcher alone would wait out its
/// idle timeout (`WATCH_TIMEOUT_SECONDS` + 5 s). A per-read timeout on the client
/// (`read_timeout`) cannot tell it apart from a quiet watch, which a real API server leaves
/// without a byte for up to a minute between bookmarks.
const SILENCE_BEFORE_CHECK: Duration = Duration::from_secs(5);
const ANSWER_WITHIN: Duration = Duration::from_secs(3);
/// Each watch request asks the server to end it after this long (kube-rs re-watches from the
/// last resourceVersion); the watcher gives up on a silent stream 5 s after it.
const WATCH_TIMEOUT_SECONDS: u32 = 60;

/// Why a watch through one member ended.
enum Ended {
    Stopped,
    /// The member failed; `listed`: the slice had been listed through it.
    Failed {
        listed: bool,
    },
}

/// What the watch proposed last, and what became of it.
#[derive(Default)]
struct Proposals {
    slices: Slices,
    applied: Option<BTreeSet<IpAddr>>,
    outside: BTreeSet<IpAddr>,
    refused: bool,
}

pub(super) async fn run<P: Propose>(
    shared: Arc<Shared<P>>,
    pool: Name,
    settings: Discover,
    stop: CancellationToken,
) {
    info!(%pool, server = %settings.access.server, kubeconfig = %settings.kubeconfig.display(), "discovering members from the cluster");
    let mut proposals = Proposals::default();
    let mut last_member: Option<IpAddr> = None;
    let mut pause = FIRST_PAUSE;
    loop {
        let members = candidates(&shared.snapshot.load(), &pool, last_member);
        for member in members {
            last_member = Some(member);
            match watch_through(&shared, &pool, &settings, member, &mut proposals, &stop).await {
                Ended::Stopped => return,
                Ended::Failed { listed: true } => pause = FIRST_PAUSE,
                Ended::Failed { listed: false } => {}
            }
        }
        shared.status.update(&pool, |state| {
            state.through = None;
            state.connected = false;
        });
        warn!(%pool, pause = ?pause, "cannot reach the cluster through any member; the last membership stays");
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = stop.cancelled() => return,
        }
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

/// The pool's members to connect through: those up first, then the others (a member not up
/// for DNS may still serve the API), each group starting after the one used last.
fn candidates(snapshot: &Snapshot, pool: &Name, after: Option<IpAddr>) -> Vec<IpAddr> {
    let Some(pool) = snapshot.pools().find(|p| &p.config.name == pool) else {
        return Vec::new();
    };
    let mut members: Vec<(bool, IpAddr)> = pool
        .members
        .iter()
        .map(|m| (m.status.health() != Health::Up, m.address.ip()))
        .collect();
    members.sort();
    if let Some(position) = after.and_then(|a| members.iter().position(|(_, m)| *m == a)) {
        let down = members[position].0;
        let group: Vec<usize> = (0..members.len())
            .filter(|i| members[*i].0 == down)
            .collect();
        if let Some(at) = group.iter().position(|i| *i == position) {
            let start = group[0];
            members[start..start + group.len()].rotate_left(at + 1);
        }
    }
    members.into_iter().map(|(_, address)| address).collect()
}

/// The probes say `member` is down while another member of the pool is up.
fn is_down_with_others_up(snapshot: &Snapshot, pool: &Name, member: IpAddr) -> bool {
    let Some(pool) = snapshot.pools().find(|p| &p.config.name == pool) else {
        return false;
    };
    let health = |address: IpAddr| {
        pool.members
            .iter()
            .find(|m| m.address.ip() == address)
            .map(|m| m.status.health())
    };
    health(member) == Some(Health::Down)
        && pool
            .members
            .iter()
            .any(|m| m.address.ip() != member && m.status.health() == Health::Up)
}

/// Watches the slices through `member` until it fails or `stop`.
async fn watch_through<P: Propose>(
    shared: &Shared<P>,
    pool: &Name,
    settings: &Discover,
    member: IpAddr,
    proposals: &mut Proposals,
    stop: &CancellationToken,
) -> Ended {
    let label = DiscoverMetrics::pool(pool);
    let through = SocketAddr::new(member, settings.access.port);
    shared.status.update(pool, |state| {
        state.through = Some(through);
        state.connected = false;
    });
    let client = match super::connect::client_through(&settings.access, member) {
        Ok(client) => client,
        Err(error) => {
            record_error(shared, pool, through, &error);
            return Ended::Failed { listed: false };
        }
    };
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let config = watcher::Config::default()
        .labels(LABEL_SELECTOR)
        .timeout(WATCH_TIMEOUT_SECONDS);
    let mut stream = std::pin::pin!(watcher::watcher(api, config).default_backoff());
    let mut retry = tokio::time::interval(RETRY_REFUSED);
    let mut check = tokio::time::interval(CHECK_MEMBER);
    let mut listed = false;
    let mut errors_in_a_row = 0;
    let mut heard = tokio::time::Instant::now();
    loop {
        let item = tokio::select! {
            item = stream.next() => item,
            _ = retry.tick() => {
                if proposals.refused {
                    propose(shared, pool, settings, proposals).await;
                }
                continue;
            }
            _ = check.tick() => {
                if is_down_with_others_up(&shared.snapshot.load(), pool, member) {
                    warn!(%pool, %through, "the member the watch goes through is down; moving to another");
                    shared.status.update(pool, |state| state.connected = false);
                    return Ended::Failed { listed };
                }
                if heard.elapsed() >= SILENCE_BEFORE_CHECK {
                    tokio::select! {
                        answered = tokio::time::timeout(ANSWER_WITHIN, client.apiserver_version()) => {
                            // An answer, even an error status, says the member is not hung;
                            // no answer in time, or no connection, says it is.
                            let hung = match answered {
                                Err(_) => Some(format!("no answer to /version within {ANSWER_WITHIN:?}")),
                                Ok(Ok(_) | Err(kube::Error::Api(_))) => None,
                                Ok(Err(error)) => Some(format!("/version: {error}")),
                            };
                            if let Some(why) = hung {
                                record_error(shared, pool, through, &format!("{why}: the member hangs"));
                                return Ended::Failed { listed };
                            }
                            heard = tokio::time::Instant::now();
                        }
                        () = stop.cancelled() => return Ended::Stopped,
                    }
                }
                continue;
            }
            () = stop.cancelled() => return Ended::Stopped,
        };
        heard = tokio::time::Instant::now();
        match item {
            None => return Ended::Failed { listed },
            Some(Ok(event)) => {
                errors_in_a_row = 0;
                shared.metrics.events.get_or_create(&label).inc();
                let settled = match event {
                    Event::Init => {
                        proposals.slices.begin_list();
                        false
                    }
                    Event::InitApply(slice) => {
                        proposals.slices.listed(slice);
                        false
                    }
                    Event::InitDone => {
                        proposals.slices.end_list();
                        if !listed {
                            info!(%pool, %through, "watching the cluster's API server slice");
                        }
                        listed = true;
                        true
                    }
                    Event::Apply(slice) => {
                        proposals.slices.applied(slice);
                        true
                    }
                    Event::Delete(slice) => {
                        proposals.slices.deleted(&slice);
                        true
                    }
                };
                shared.status.update(pool, |state| {
                    state.last_event = Some(SystemTime::now());
                    state.connected = listed;
                });
                if settled {
                    propose(shared, pool, settings, proposals).await;
                }
            }
            Some(Err(error)) => {
                record_error(shared, pool, through, &error.to_string());
                if matches!(&error, watcher::Error::WatchError(status) if status.code == 410) {
                    // The watcher lists again by itself: the history is gone, not the member.
                    info!(%pool, %through, "the watch's history expired (410 Gone); listing again");
                    continue;
                }
                errors_in_a_row += 1;
                if !listed || errors_in_a_row >= 2 {
                    return Ended::Failed { listed };
                }
            }
        }
    }
}

fn record_error<P>(shared: &Shared<P>, pool: &Name, through: SocketAddr, error: &str) {
    warn!(%pool, %through, %error, "cluster watch error");
    shared
        .metrics
        .watch_errors
        .get_or_create(&DiscoverMetrics::pool(pool))
        .inc();
    shared.status.update(pool, |state| {
        state.connected = false;
        state.last_error = Some((SystemTime::now(), format!("through {through}: {error}")));
    });
}

/// Proposes the slices' ready addresses inside `allow` to the writer, unless they are the set
/// applied last; an empty set is never proposed (never worse than static).
async fn propose<P: Propose>(
    shared: &Shared<P>,
    pool: &Name,
    settings: &Discover,
    proposals: &mut Proposals,
) {
    let label = DiscoverMetrics::pool(pool);
    let (addresses, unusable) = ready_addresses(proposals.slices.all());
    if !unusable.is_empty() {
        warn!(%pool, ?unusable, "slice addresses that are not IP addresses are ignored");
    }
    let (inside, outside) = split_by_allow(addresses, &settings.allow);
    for address in &outside {
        shared.metrics.outside_allow.get_or_create(&label).inc();
        if !proposals.outside.contains(address) {
            warn!(%pool, %address, "the cluster proposes an address outside allow: ignored");
        }
    }
    proposals.outside = outside.clone();
    shared.status.update(pool, |state| {
        state.proposed = inside.iter().copied().collect();
        state.outside_allow = outside.iter().copied().collect();
    });
    if inside.is_empty() {
        warn!(%pool, "the cluster proposes no member inside allow: not applied, the last membership stays");
        shared.metrics.refused(pool, "empty");
        refused(
            shared,
            pool,
            proposals,
            "the slice proposes no address inside allow",
        );
        proposals.refused = false;
        return;
    }
    if proposals.applied.as_ref() == Some(&inside) && !proposals.refused {
        return;
    }
    match shared.proposer.propose(pool.clone(), inside.clone()).await {
        DiscoveryVerdict::Applied { .. } | DiscoveryVerdict::Unchanged => {
            if let Some(state_dir) = &shared.state_dir
                && let Err(error) = state::save(state_dir, pool, &inside)
            {
                warn!(%pool, state_dir = %state_dir.display(), %error, "cannot keep the discovered members in state_dir");
            }
            shared.metrics.applied.get_or_create(&label).inc();
            shared.status.update(pool, |state| {
                state.last_applied = Some(SystemTime::now());
            });
            proposals.applied = Some(inside);
            proposals.refused = false;
        }
        DiscoveryVerdict::WouldLeaveNoneUp { removed } => {
            if !proposals.refused {
                shared.metrics.refused(pool, "no_member_up");
            }
            let message = format!(
                "removing {} would leave no member up",
                removed
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            refused(shared, pool, proposals, &message);
        }
        DiscoveryVerdict::NotDiscovering => {}
    }
}

fn refused<P>(shared: &Shared<P>, pool: &Name, proposals: &mut Proposals, message: &str) {
    shared.status.update(pool, |state| {
        state.last_refused = Some((SystemTime::now(), message.to_string()));
    });
    proposals.refused = true;
}
