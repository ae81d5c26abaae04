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
use super::probe::tcp_connect;
use super::status::{Health, MemberStatus};
use crate::config::ProbeSettings;

/// What one prober task watches.
#[derive(Debug, Clone)]
pub struct MemberProbe {
    pub pool: Name,
    pub target: SocketAddr,
    pub settings: ProbeSettings,
    pub status: Arc<MemberStatus>,
}

/// Probes until `stop` is cancelled. Every change of health bumps `changes`, so that the live
/// sets are rebuilt.
pub async fn run(probe: MemberProbe, changes: watch::Sender<u64>, stop: CancellationToken) {
    let MemberProbe {
        pool,
        target,
        settings,
        status,
    } = probe;
    let mut machine = match status.health() {
        Health::Pending => Machine::new(settings),
        known => Machine::resume(settings, known),
    };
    let mut first = true;
    loop {
        let started = Instant::now();
        let result = tokio::select! {
            result = tcp_connect(target, settings.timeout) => result,
            () = stop.cancelled() => return,
        };
        status.record(&result);
        if let Some(transition) = machine.observe(result.is_ok()) {
            status.set(transition.to);
            let reason = match &result {
                Ok(latency) => format!("connected in {:.1}ms", latency.as_secs_f64() * 1000.0),
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
