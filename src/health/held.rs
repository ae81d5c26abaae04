//! Held TCP probes (`kind = "tcp"`, `hold = true`, the default for TCP): the prober keeps one
//! connection open to the member and waits on it, so that a killed server is noticed when its
//! kernel closes or resets that connection, in well under a millisecond on a LAN, instead of at
//! the next periodic probe.
//!
//! - **Held connection lost** (FIN, RST, or keepalive / `TCP_USER_TIMEOUT` giving up): reconnect
//!   at once. A refused or timed-out reconnect takes the member down at once, whatever `fall`
//!   says: the loss and the failed reconnect are two independent failure signals. A successful
//!   reconnect is no failure (servers close idle connections: kube-apiserver closes one that
//!   never starts a TLS handshake after about 32 s), and the new connection is held instead.
//! - **Periodic probes** go on every `interval` with fresh connections, as without `hold`, so a
//!   black-holed host (no FIN, no RST) is still caught by timeouts, and a down member still
//!   needs `rise` successes on fresh connections to come back.
//! - **Short-lived connections**: a server that closes every held connection quickly (within
//!   `interval`) twice in a row is re-held only after a backoff, `interval` doubling up to 30 s,
//!   so the prober never spins on it. Each close is still checked with a reconnect.
//! - **Hold-down**: a member that goes down again within `5 × interval` of coming back flaps;
//!   each consecutive flap keeps it down for at least `interval`, doubling, up to 30 s, before
//!   successes count towards `rise` again.

use std::io;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::machine::{Machine, Transition};
use super::probe::{ProbeFailure, connect, tcp_connect};
use super::prober::{Reporter, jittered};
use super::status::Health;

/// The longest hold-down of a flapping member, and the longest re-hold backoff.
pub const HOLD_DOWN_MAX: Duration = Duration::from_secs(30);
/// A member that goes down within this many intervals of coming back up has flapped.
const FLAP_WINDOW_INTERVALS: u32 = 5;
/// Keepalive on held sockets: first probe after 1 s idle, then every second, 2 unanswered ones
/// end the connection; `TCP_USER_TIMEOUT` bounds unacknowledged data (and keepalives) at 3 s.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(1);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);
const KEEPALIVE_RETRIES: u32 = 2;
const USER_TIMEOUT: Duration = Duration::from_secs(3);

enum Event {
    /// The held connection ended; the text says how ("closed", "reset", ...).
    Lost(String),
    /// Time for the periodic fresh-connection probe.
    Probe,
    /// Time to hold a connection again.
    Rehold,
}

struct State {
    interval: Duration,
    held: Option<TcpStream>,
    held_since: Instant,
    /// Consecutive held connections that the server closed within `interval`.
    short_lived: u32,
    rehold_at: Option<Instant>,
    /// Consecutive flaps (down again soon after coming back).
    flaps: u32,
    /// When the member last came back up from down.
    up_since: Option<Instant>,
    /// Until when successes do not count towards `rise`.
    hold_down_until: Option<Instant>,
}

/// The held-mode prober loop; returns when `stop` is cancelled.
pub(super) async fn run(reporter: &mut Reporter, machine: &mut Machine, stop: &CancellationToken) {
    let target = reporter.target;
    let timeout = reporter.settings.timeout;
    let mut state = State {
        interval: reporter.settings.interval,
        held: None,
        held_since: Instant::now(),
        short_lived: 0,
        rehold_at: None,
        flaps: 0,
        up_since: None,
        hold_down_until: None,
    };

    // The first probe is the held connection itself: its result decides at once.
    let first = tokio::select! {
        result = connect_held(target, timeout) => result,
        () = stop.cancelled() => return,
    };
    let result = match first {
        Ok((stream, latency)) => {
            state.held = Some(stream);
            state.held_since = Instant::now();
            Ok(latency)
        }
        Err(failure) => Err(failure),
    };
    state.feed(reporter, machine, result);

    let mut next_probe = Instant::now() + jittered(machine.next_delay(), true);
    let mut scheduled: Option<Instant> = None;
    loop {
        let rehold_at = state.rehold_at;
        let event = tokio::select! {
            () = stop.cancelled() => return,
            lost = held_lost(state.held.as_ref()), if state.held.is_some() => Event::Lost(lost),
            () = tokio::time::sleep_until(next_probe) => Event::Probe,
            () = sleep_until_some(rehold_at), if state.held.is_none() && rehold_at.is_some() => Event::Rehold,
        };
        match event {
            Event::Lost(lost) => {
                state.held = None;
                let lived = state.held_since.elapsed();
                let reconnect = tokio::select! {
                    result = connect_held(target, timeout) => result,
                    () = stop.cancelled() => return,
                };
                match reconnect {
                    Err(reconnect) => {
                        let failure = ProbeFailure::HeldLost {
                            lost,
                            reconnect: Box::new(reconnect),
                        };
                        state.force_down(reporter, machine, failure);
                    }
                    Ok((stream, latency)) => {
                        debug!(pool = %reporter.pool, member = %target, %lost, lived_ms = lived.as_millis() as u64, "held connection ended, reconnected");
                        state.short_lived = if lived < state.interval {
                            state.short_lived + 1
                        } else {
                            0
                        };
                        if state.short_lived >= 2 {
                            let backoff = rehold_backoff(state.interval, state.short_lived);
                            drop(stream);
                            state.rehold_at = Some(Instant::now() + backoff);
                        } else {
                            state.held = Some(stream);
                            state.held_since = Instant::now();
                        }
                        state.feed(reporter, machine, Ok(latency));
                    }
                }
            }
            Event::Probe => {
                let started = Instant::now();
                reporter.lateness(started, scheduled);
                let result = tokio::select! {
                    result = tcp_connect(target, timeout) => result,
                    () = stop.cancelled() => return,
                };
                state.feed(reporter, machine, result);
                next_probe = started + jittered(machine.next_delay(), false);
                scheduled = Some(next_probe.max(Instant::now()));
            }
            Event::Rehold => {
                state.rehold_at = None;
                if machine.health() != Health::Up {
                    continue;
                }
                let result = tokio::select! {
                    result = connect_held(target, timeout) => result,
                    () = stop.cancelled() => return,
                };
                let result = match result {
                    Ok((stream, latency)) => {
                        state.held = Some(stream);
                        state.held_since = Instant::now();
                        Ok(latency)
                    }
                    Err(failure) => Err(failure),
                };
                let failed = result.is_err();
                state.feed(reporter, machine, result);
                if failed && machine.health() == Health::Up {
                    state.rehold_at = Some(Instant::now() + state.interval);
                }
            }
        }
    }
}

impl State {
    /// Feeds one probe result to the machine, unless the member is held down.
    fn feed(
        &mut self,
        reporter: &Reporter,
        machine: &mut Machine,
        result: Result<Duration, ProbeFailure>,
    ) {
        reporter.record(&result);
        let held_down = result.is_ok()
            && machine.health() == Health::Down
            && self
                .hold_down_until
                .is_some_and(|until| Instant::now() < until);
        if held_down {
            return;
        }
        let transition = machine.observe(result.is_ok());
        self.after(reporter, transition, &result);
    }

    fn force_down(&mut self, reporter: &Reporter, machine: &mut Machine, failure: ProbeFailure) {
        let result = Err(failure);
        // Two failure signals (the loss and the failed reconnect), counted as such in the
        // status's consecutive failures, as the transition's `consecutive` counts them.
        reporter.record(&result);
        reporter.record(&result);
        let transition = machine.force_down();
        self.after(reporter, transition, &result);
    }

    fn after(
        &mut self,
        reporter: &Reporter,
        transition: Option<Transition>,
        result: &Result<Duration, ProbeFailure>,
    ) {
        if let Some(transition) = &transition {
            let now = Instant::now();
            match transition.to {
                Health::Up => {
                    if transition.from == Health::Down {
                        self.up_since = Some(now);
                    }
                    if self.held.is_none() {
                        self.rehold_at = Some(now);
                    }
                }
                Health::Down => {
                    self.held = None;
                    self.rehold_at = None;
                    let window = self.interval.saturating_mul(FLAP_WINDOW_INTERVALS);
                    let flapped = self
                        .up_since
                        .is_some_and(|since| now.duration_since(since) < window);
                    self.flaps = if flapped { self.flaps + 1 } else { 0 };
                    let hold_down = hold_down(self.interval, self.flaps);
                    self.hold_down_until = (!hold_down.is_zero()).then(|| now + hold_down);
                    if !hold_down.is_zero() {
                        warn!(pool = %reporter.pool, member = %reporter.target, flaps = self.flaps, hold_down_ms = hold_down.as_millis() as u64, "member flaps: held down before rise counts again");
                    }
                }
                Health::Pending => {}
            }
        }
        reporter.announce(transition, result);
    }
}

/// How long a member that flapped `flaps` times in a row stays down at least.
fn hold_down(interval: Duration, flaps: u32) -> Duration {
    if flaps == 0 {
        return Duration::ZERO;
    }
    interval
        .saturating_mul(1 << (flaps - 1).min(16))
        .min(HOLD_DOWN_MAX)
}

/// How long to wait before holding again after `short_lived` quickly closed connections.
fn rehold_backoff(interval: Duration, short_lived: u32) -> Duration {
    interval
        .saturating_mul(1 << short_lived.saturating_sub(2).min(16))
        .min(HOLD_DOWN_MAX)
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Waits until the held connection ends and says how: "closed" (FIN), "reset" (RST), "timed
/// out" (keepalive or TCP_USER_TIMEOUT). Data the server sends is read and ignored.
async fn held_lost(stream: Option<&TcpStream>) -> String {
    let Some(stream) = stream else {
        return std::future::pending().await;
    };
    let mut buffer = [0u8; 512];
    loop {
        if let Err(error) = stream.readable().await {
            return describe(&error);
        }
        match stream.try_read(&mut buffer) {
            Ok(0) => return "closed".to_string(),
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(error) => return describe(&error),
        }
    }
}

fn describe(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionReset => "reset".to_string(),
        io::ErrorKind::TimedOut => "timed out".to_string(),
        _ => format!("failed ({error})"),
    }
}

/// Connects within `timeout` and tunes the socket for holding: short keepalive and
/// `TCP_USER_TIMEOUT`, so a dead peer ends the connection within seconds.
async fn connect_held(
    target: std::net::SocketAddr,
    timeout: Duration,
) -> Result<(TcpStream, Duration), ProbeFailure> {
    let started = Instant::now();
    let stream = match tokio::time::timeout(timeout, connect(target)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(failure)) => return Err(failure),
        Err(_) => return Err(ProbeFailure::Timeout(timeout)),
    };
    let latency = started.elapsed();
    let socket = socket2::SockRef::from(&stream);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_RETRIES);
    let _ = socket.set_tcp_keepalive(&keepalive);
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = socket.set_tcp_user_timeout(Some(USER_TIMEOUT));
    Ok((stream, latency))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_down_doubles_up_to_the_cap() {
        let second = Duration::from_secs(1);
        assert_eq!(hold_down(second, 0), Duration::ZERO);
        assert_eq!(hold_down(second, 1), second);
        assert_eq!(hold_down(second, 2), 2 * second);
        assert_eq!(hold_down(second, 3), 4 * second);
        assert_eq!(hold_down(second, 10), HOLD_DOWN_MAX);
        assert_eq!(hold_down(second, u32::MAX), HOLD_DOWN_MAX);
    }

    #[test]
    fn rehold_backoff_grows_after_the_second_short_connection() {
        let interval = Duration::from_secs(1);
        assert_eq!(rehold_backoff(interval, 2), interval);
        assert_eq!(rehold_backoff(interval, 3), 2 * interval);
        assert_eq!(rehold_backoff(interval, 40), HOLD_DOWN_MAX);
    }
}
