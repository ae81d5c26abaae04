//! One member's prober task: it sets up the member's reporting and rise/fall state, then runs
//! the watch loop that the member's probe settings call for.

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::check::warn_if_insecure;
use super::report::{MemberProbe, Reporter};
use super::rise_fall::Machine;
use super::watch::{held_http, held_tcp, periodic};
use crate::config::ProbeKind;
use crate::zone::Health;

/// Probes until `stop` is cancelled. Every change of health bumps `changes`, so that the live
/// sets are rebuilt.
pub async fn run(probe: MemberProbe, changes: watch::Sender<u64>, stop: CancellationToken) {
    let mut reporter = Reporter::new(probe, changes);
    warn_if_insecure(&reporter.pool, &reporter.settings);
    let mut machine = match reporter.status.health() {
        Health::Pending => Machine::new(reporter.settings.clone()),
        known => Machine::resume(reporter.settings.clone(), known),
    };
    if !reporter.settings.holds() {
        return periodic::run(&mut reporter, &mut machine, &stop).await;
    }
    match reporter.settings.kind {
        ProbeKind::Tcp => held_tcp::run(&mut reporter, &mut machine, &stop).await,
        // Boxed: the HTTP client's state would size every prober task for the largest kind.
        _ => Box::pin(held_http::run(&mut reporter, &mut machine, &stop)).await,
    }
}
