//! One member's prober: a task that probes, feeds the state machine, and announces changes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::Name;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::machine::Machine;
use super::probe::{check, success_reason, warn_if_insecure};
use super::status::{Health, MemberStatus};
use crate::config::ProbeSettings;
use crate::metrics::{MemberLabels, Metrics, PoolLabels, TransitionLabels};

/// What one prober task watches.
#[derive(Debug, Clone)]
pub struct MemberProbe {
    pub pool: Name,
    pub target: SocketAddr,
    pub settings: ProbeSettings,
    pub status: Arc<MemberStatus>,
    pub metrics: Arc<Metrics>,
}

/// Probes until `stop` is cancelled. Every change of health bumps `changes`, so that the live
/// sets are rebuilt.
pub async fn run(probe: MemberProbe, changes: watch::Sender<u64>, stop: CancellationToken) {
    let MemberProbe {
        pool,
        target,
        settings,
        status,
        metrics,
    } = probe;
    let pool_labels = PoolLabels {
        pool: pool.to_string(),
    };
    let member_labels = MemberLabels {
        pool: pool.to_string(),
        member: target.to_string(),
    };
    let member_up = metrics.member_up.get_or_create_owned(&member_labels);
    member_up.set(i64::from(status.health() == Health::Up));
    warn_if_insecure(&pool, &settings);
    let mut machine = match status.health() {
        Health::Pending => Machine::new(settings.clone()),
        known => Machine::resume(settings.clone(), known),
    };
    let mut first = true;
    let mut scheduled: Option<Instant> = None;
    loop {
        let started = Instant::now();
        if let Some(scheduled) = scheduled {
            // How late the timer fired: the measure of whether probing keeps its schedule.
            metrics
                .probe_lateness
                .observe(started.saturating_duration_since(scheduled).as_secs_f64());
        }
        let result = tokio::select! {
            result = check(&settings, target) => result,
            () = stop.cancelled() => return,
        };
        status.record(&result);
        if let Ok(latency) = &result {
            metrics
                .probe_seconds
                .get_or_create(&pool_labels)
                .observe(latency.as_secs_f64());
        }
        if let Some(transition) = machine.observe(result.is_ok()) {
            status.set(transition.to);
            member_up.set(i64::from(transition.to == Health::Up));
            metrics
                .member_transitions
                .get_or_create(&TransitionLabels {
                    pool: member_labels.pool.clone(),
                    member: member_labels.member.clone(),
                    to: transition.to.as_str().to_string(),
                })
                .inc();
            let reason = match &result {
                Ok(latency) => success_reason(&settings, *latency),
                Err(failure) => failure.to_string(),
            };
            let (from, to) = (transition.from.as_str(), transition.to.as_str());
            if transition.to == Health::Up {
                info!(pool = %pool, member = %target, from, to, %reason, consecutive = transition.consecutive, "member up");
            } else {
                warn!(pool = %pool, member = %target, from, to, %reason, consecutive = transition.consecutive, "member down");
            }
            changes.send_modify(|generation| *generation += 1);
        }
        let delay = jittered(machine.next_delay(), first);
        first = false;
        scheduled = Some((started + delay).max(Instant::now()));
        tokio::select! {
            () = tokio::time::sleep_until(started + delay) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// Spreads probes so that they do not march in step: the first wait after start-up is anywhere
/// in the interval, later ones vary by ±10%.
fn jittered(delay: Duration, first: bool) -> Duration {
    let factor = if first {
        rand::random_range(0.0..1.0)
    } else {
        rand::random_range(0.9..1.1)
    };
    delay.mul_f64(factor)
}
