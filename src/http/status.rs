//! The `/status` document: every zone, pool and member as apidns sees them now.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::discover::{WatchState, WatchStatus};
use crate::health::Health;
use crate::transfer::secondary::{SecondaryStatus, ZoneRefresh};
use crate::zone::{LiveState, Snapshot};

pub fn status(
    snapshot: &Snapshot,
    ready: bool,
    discovery: &WatchStatus,
    secondaries: &SecondaryStatus,
) -> Value {
    let zones: Vec<Value> = snapshot
        .zones()
        .iter()
        .map(|zone| {
            let pools: Vec<Value> = zone
                .pools
                .iter()
                .map(|pool| {
                    let live = pool.live();
                    let members: Vec<Value> = pool
                        .members
                        .iter()
                        .map(|member| {
                            let report = member.status.report();
                            let (result, latency_ms) = match &report.last_result {
                                Some(Ok(latency)) => {
                                    (json!("ok"), json!(latency.as_secs_f64() * 1000.0))
                                }
                                Some(Err(failure)) => (json!(failure.to_string()), Value::Null),
                                None => (Value::Null, Value::Null),
                            };
                            json!({
                                "address": member.address.ip().to_string(),
                                "port": member.address.port(),
                                "health": member.status.health().as_str(),
                                "drained": member.is_drained(&pool.config),
                                "source": pool
                                    .config
                                    .member(member.address.ip())
                                    .map(|configured| configured.source.as_str()),
                                "answered": is_answered(&live, member.address.ip()),
                                "since": unix(report.since),
                                "for_seconds": age(report.since),
                                "last_probe": report.last_probe.map(unix),
                                "last_result": result,
                                "last_latency_ms": latency_ms,
                                "consecutive_successes": report.consecutive_successes,
                                "consecutive_failures": report.consecutive_failures,
                                "transitions": report.transitions,
                                "down_signal": report.last_down.map(|down| down.signal.as_str()),
                                "detection_ms": report
                                    .last_down
                                    .and_then(|down| down.detection)
                                    .map(|detection| detection.as_secs_f64() * 1000.0),
                            })
                        })
                        .collect();
                    json!({
                        "name": pool.config.name.to_string(),
                        "ttl": pool.config.ttl,
                        "all_down": pool.config.all_down.as_str(),
                        "min_up": pool.config.min_up(),
                        "state": match live.state {
                            LiveState::Healthy => "healthy",
                            LiveState::AllAnswered => "too few up: answering all",
                            LiveState::NoneAnswered => "too few up: answering none",
                        },
                        "up": pool.members.iter().filter(|m| m.status.health() == Health::Up).count(),
                        "members": members,
                        "discover": pool.config.discover.as_ref().map(|settings| {
                            discover_status(settings, discovery.get(&pool.config.name).unwrap_or_default())
                        }),
                    })
                })
                .collect();
            json!({
                "origin": zone.config.origin.to_string(),
                "file": zone.config.file.display().to_string(),
                "serial": zone.config.soa.serial,
                "primary": zone.config.primary.as_ref().map(|primary| primary.address.to_string()),
                "pools": pools,
            })
        })
        .collect();
    let now = SystemTime::now();
    let secondaries: Vec<Value> = secondaries
        .all()
        .into_iter()
        .map(|(origin, zone)| secondary_status(&origin, &zone, now))
        .collect();
    json!({ "ready": ready, "zones": zones, "secondaries": secondaries })
}

/// A secondary zone: its primary, the serial it serves, when the primary last answered, and
/// whether that is recent enough (fresh, refresh overdue, expired).
fn secondary_status(
    origin: &hickory_proto::rr::Name,
    zone: &ZoneRefresh,
    now: SystemTime,
) -> Value {
    json!({
        "origin": origin.to_string(),
        "primary": zone.primary.to_string(),
        "serial": zone.serial,
        "state": zone.freshness(now).as_str(),
        "last_refresh": zone.last_success.map(unix),
        "seconds_since_refresh": zone.last_success.map(age),
        "refresh_seconds": zone.refresh.as_secs(),
        "expire_seconds": zone.expire.as_secs(),
        "last_error": zone.last_error,
    })
}

/// A discovering pool's watch: where it goes through, what it saw last and what it refused.
fn discover_status(settings: &crate::config::Discover, state: WatchState) -> Value {
    let addresses = |list: &[std::net::IpAddr]| -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    };
    json!({
        "kubeconfig": settings.kubeconfig.display().to_string(),
        "server": settings.access.server,
        "allow": settings.allow.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "through": state.through.map(|through| through.to_string()),
        "connected": state.connected,
        "last_event": state.last_event.map(unix),
        "last_error": state.last_error.as_ref().map(|(_, error)| error.clone()),
        "last_error_at": state.last_error.as_ref().map(|(at, _)| unix(*at)),
        "proposed": addresses(&state.proposed),
        "outside_allow": addresses(&state.outside_allow),
        "last_applied": state.last_applied.map(unix),
        "last_refused": state.last_refused.as_ref().map(|(_, why)| why.clone()),
        "last_refused_at": state.last_refused.as_ref().map(|(at, _)| unix(*at)),
    })
}

fn is_answered(live: &crate::zone::LiveSet, address: std::net::IpAddr) -> bool {
    live.v4
        .iter()
        .chain(&live.v6)
        .any(|record| match &record.data {
            hickory_proto::rr::RData::A(a) => std::net::IpAddr::V4(a.0) == address,
            hickory_proto::rr::RData::AAAA(aaaa) => std::net::IpAddr::V6(aaaa.0) == address,
            _ => false,
        })
}

fn unix(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}

fn age(time: SystemTime) -> f64 {
    SystemTime::now()
        .duration_since(time)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}
