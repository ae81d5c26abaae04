//! Periodic probes (`hold = false`): a fresh check every `interval` (`fast_interval` while a
//! change is being confirmed), each result fed to the rise/fall machine.

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::health::check::check;
use crate::health::jitter::jittered;
use crate::health::report::Reporter;
use crate::health::rise_fall::Machine;

/// The periodic prober loop; returns when `stop` is cancelled.
pub(crate) async fn run(reporter: &mut Reporter, machine: &mut Machine, stop: &CancellationToken) {
    let settings = reporter.settings.clone();
    let target = reporter.target;
    let mut first = true;
    let mut scheduled: Option<Instant> = None;
    loop {
        let started = Instant::now();
        reporter.lateness(started, scheduled);
        let result = tokio::select! {
            result = check(&settings, target) => result,
            () = stop.cancelled() => return,
        };
        reporter.record(&result);
        let transition = machine.observe(result.is_ok());
        reporter.announce(transition, &result);
        let delay = jittered(machine.next_delay(), first);
        first = false;
        scheduled = Some((started + delay).max(Instant::now()));
        tokio::select! {
            () = tokio::time::sleep_until(started + delay) => {}
            () = stop.cancelled() => return,
        }
    }
}
