//! Reporting: what every watch loop tells the rest of apidns about a member. One probe result
//! goes to the member's status cell and the latency histogram; a transition also goes to the
//! metrics, the log, and the change counter that the publisher watches.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::Name;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use super::check::success_reason;
use super::rise_fall::Transition;
use crate::config::ProbeSettings;
use crate::metrics::{
    DetectionLabels, DownLabels, MemberLabels, Metrics, PoolLabels, TransitionLabels,
};
use crate::zone::{DownReport, Health, MemberStatus, ProbeFailure};

/// What one prober task watches, and where it reports.
#[derive(Debug, Clone)]
pub struct MemberProbe {
    pub pool: Name,
    pub target: SocketAddr,
    pub settings: ProbeSettings,
    pub status: Arc<MemberStatus>,
    pub metrics: Arc<Metrics>,
}

/// What a prober reports to: the member's status cell, its metrics, the logs and the change
/// counter that the publisher watches.
pub(crate) struct Reporter {
    pub(crate) pool: Name,
    pub(crate) target: SocketAddr,
    pub(crate) settings: ProbeSettings,
    pub(crate) status: Arc<MemberStatus>,
    metrics: Arc<Metrics>,
    changes: watch::Sender<u64>,
    pool_labels: PoolLabels,
    member_labels: MemberLabels,
    member_up: Gauge,
    /// When the current streak of failures began: the first failure signal that the next down
    /// transition is measured from.
    failing_since: Option<Instant>,
}

impl Reporter {
    /// A reporter for `probe`, bumping `changes` on every transition.
    pub(crate) fn new(probe: MemberProbe, changes: watch::Sender<u64>) -> Self {
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
        Self {
            pool,
            target,
            settings,
            status,
            metrics,
            changes,
            pool_labels,
            member_labels,
            member_up,
            failing_since: None,
        }
    }

    /// How late the timer fired: the measure of whether probing keeps its schedule.
    pub(crate) fn lateness(&self, started: Instant, scheduled: Option<Instant>) {
        if let Some(scheduled) = scheduled {
            self.metrics
                .probe_lateness
                .observe(started.saturating_duration_since(scheduled).as_secs_f64());
        }
    }

    /// Notes a failure signal seen before its probe result is known (a held connection that
    /// ended, a keepalive left unanswered), so that detection time counts from it.
    pub(crate) fn failure_seen(&mut self, at: Instant) {
        self.failing_since.get_or_insert(at);
    }

    /// Records one probe result in the status cell and the latency histogram.
    pub(crate) fn record(&mut self, result: &Result<Duration, ProbeFailure>) {
        self.status.record(result);
        match result {
            Ok(_) => self.failing_since = None,
            Err(_) => self.failure_seen(Instant::now()),
        }
        if let Ok(latency) = result {
            self.metrics
                .probe_seconds
                .get_or_create(&self.pool_labels)
                .observe(latency.as_secs_f64());
        }
    }

    /// Publishes a transition, if any: status cell, metrics, log line and change counter.
    pub(crate) fn announce(
        &mut self,
        transition: Option<Transition>,
        result: &Result<Duration, ProbeFailure>,
    ) {
        let Some(transition) = transition else {
            return;
        };
        if let Err(failure) = result {
            self.count_down(&transition, failure);
        }
        let (pool, target) = (&self.pool, self.target);
        self.status.set(transition.to);
        self.member_up.set(i64::from(transition.to == Health::Up));
        self.metrics
            .member_transitions
            .get_or_create(&TransitionLabels {
                pool: self.member_labels.pool.clone(),
                member: self.member_labels.member.clone(),
                to: transition.to.as_str().to_string(),
            })
            .inc();
        let reason = match result {
            Ok(latency) => success_reason(&self.settings, *latency),
            Err(failure) => failure.to_string(),
        };
        let (from, to) = (transition.from.as_str(), transition.to.as_str());
        if transition.to == Health::Up {
            info!(pool = %pool, member = %target, from, to, %reason, consecutive = transition.consecutive, "member up");
        } else {
            warn!(pool = %pool, member = %target, from, to, %reason, consecutive = transition.consecutive, "member down");
        }
        self.changes.send_modify(|generation| *generation += 1);
    }

    /// A down transition: which signal caused it, and how long after the streak's first failure
    /// signal (measured only for a member that was up: a first probe that fails detects
    /// nothing that was serving).
    fn count_down(&mut self, transition: &Transition, failure: &ProbeFailure) {
        if transition.to != Health::Down {
            return;
        }
        let signal = failure.signal();
        let detection = (transition.from == Health::Up).then(|| {
            self.failing_since
                .map_or(Duration::ZERO, |since| since.elapsed())
        });
        self.failing_since = None;
        self.status.record_down(DownReport { signal, detection });
        self.metrics
            .member_down
            .get_or_create(&DownLabels {
                pool: self.member_labels.pool.clone(),
                member: self.member_labels.member.clone(),
                signal,
            })
            .inc();
        if let Some(detection) = detection {
            self.metrics
                .detection_seconds
                .get_or_create(&DetectionLabels {
                    pool: self.member_labels.pool.clone(),
                    signal,
                })
                .observe(detection.as_secs_f64());
        }
    }
}
