//! Held TCP probes (`kind = "tcp"`, `hold = true`, the default for TCP): the prober keeps one
//! connection open to the member and waits on it, so that a killed server is noticed when its
//! kernel closes or resets that connection, in well under a millisecond on a LAN, instead of at
//! the next periodic probe.
//!
//! - **No fresh connections while one is held.** kube-apiserver logs a TLS handshake error for
//!   every connection that closes without a handshake, so periodic connects would cost each
//!   API server one log line per member per `interval`. The held connection is the probe.
//! - **Held connection lost** (FIN, RST, or keepalive giving up): reconnect at once. A refused
//!   or timed-out reconnect takes the member down at once, whatever `fall` says: the loss and
//!   the failed reconnect are two independent failure signals. A successful reconnect is no
//!   failure (servers close idle connections: kube-apiserver closes one that never starts a TLS
//!   handshake after about 32 s), and the new connection is held instead.
//! - **Black holes** (no FIN, no RST): keepalive probes the idle connection every second, and a
//!   look at `TCP_INFO` after each probe sees one go unanswered; a fresh connect then confirms
//!   (see [`super::keepalive`]). An unanswered keepalive and a failed connect take the member
//!   down at once, like a loss and a failed reconnect.
//! - **Periodic probes** with fresh connections run only while nothing is held: while the
//!   member is down (it needs `rise` successes on fresh connections to come back) and while
//!   re-holding backs off.
//! - **Short-lived connections**: a server that closes every held connection quickly (within
//!   `interval`) twice in a row is re-held only after a backoff, `interval` doubling up to 30 s,
//!   so the prober never spins on it. Each close is still checked with a reconnect.
//! - **Hold-down**: a member that goes down again within `5 × interval` of coming back flaps;
//!   each consecutive flap keeps it down for at least `interval`, doubling, up to 30 s, before
//!   successes count towards `rise` again.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::flap::{Flaps, rehold_backoff};
use super::keepalive::{self, Assessment};
use super::machine::{Machine, Transition};
use super::probe::{ProbeFailure, connect, tcp_connect};
use super::prober::{Reporter, jittered};
use super::status::Health;

enum Event {
    /// The held connection ended; the text says how ("closed", "reset", ...).
    Lost(String),
    /// Time for a fresh-connection probe (only while nothing is held).
    Probe,
    /// Time to hold a connection again.
    Rehold,
    /// Time to look at the held connection's keepalive.
    KeepaliveCheck,
}

struct State {
    interval: Duration,
    held: Option<TcpStream>,
    held_since: Instant,
    /// The next fresh-connection probe, while nothing is held.
    next_probe: Instant,
    /// The next look at the held connection's keepalive; `None` where `TCP_INFO` is unreadable.
    check_at: Option<Instant>,
    /// The last look saw a keepalive probe out.
    outstanding: bool,
    /// Consecutive held connections that the server closed within `interval`.
    short_lived: u32,
    rehold_at: Option<Instant>,
    flaps: Flaps,
}

/// The held-mode prober loop; returns when `stop` is cancelled.
pub(super) async fn run(reporter: &mut Reporter, machine: &mut Machine, stop: &CancellationToken) {
    let target = reporter.target;
    let timeout = reporter.settings.timeout;
    let now = Instant::now();
    let mut state = State {
        interval: reporter.settings.interval,
        held: None,
        held_since: now,
        next_probe: now,
        check_at: None,
        outstanding: false,
        short_lived: 0,
        rehold_at: None,
        flaps: Flaps::new(reporter.settings.interval),
    };

    // The first probe is the held connection itself: its result decides at once.
    let first = tokio::select! {
        result = connect_held(target, timeout) => result,
        () = stop.cancelled() => return,
    };
    let result = first.map(|(stream, latency)| {
        state.hold(stream);
        latency
    });
    state.feed(reporter, machine, result);
    state.next_probe = Instant::now() + jittered(machine.next_delay(), true);

    let mut scheduled: Option<Instant> = None;
    loop {
        let (rehold_at, check_at, next_probe) = (state.rehold_at, state.check_at, state.next_probe);
        let holding = state.held.is_some();
        let event = tokio::select! {
            () = stop.cancelled() => return,
            lost = held_lost(state.held.as_ref()), if holding => Event::Lost(lost),
            () = sleep_until_some(check_at), if holding && check_at.is_some() => Event::KeepaliveCheck,
            () = tokio::time::sleep_until(next_probe), if !holding => Event::Probe,
            () = sleep_until_some(rehold_at), if !holding && rehold_at.is_some() => Event::Rehold,
        };
        match event {
            Event::Lost(lost) => {
                reporter.failure_seen(Instant::now());
                let lived = state.held_since.elapsed();
                state.release();
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
                            state.hold(stream);
                        }
                        state.feed(reporter, machine, Ok(latency));
                    }
                }
            }
            Event::KeepaliveCheck => {
                let Some(stream) = state.held.as_ref() else {
                    continue;
                };
                let info = match keepalive::read(stream) {
                    Ok(info) => info,
                    Err(error) => {
                        debug!(pool = %reporter.pool, member = %target, %error, "cannot read TCP_INFO: black holes are left to the kernel's keepalive");
                        state.check_at = None;
                        continue;
                    }
                };
                let now = Instant::now();
                match keepalive::assess(info, state.outstanding) {
                    Assessment::CheckIn(after) => {
                        state.outstanding = false;
                        state.check_at = Some(now + after);
                    }
                    Assessment::Outstanding(after) => {
                        state.outstanding = true;
                        state.check_at = Some(now + after);
                    }
                    Assessment::Unanswered => {
                        reporter.failure_seen(now);
                        // The second signal: a host that just left a keepalive unanswered
                        // gets half the timeout to answer a SYN (a LAN answers in well under
                        // a millisecond; a lost SYN is retried only after a second anyway).
                        let confirm = tokio::select! {
                            result = connect_held(target, timeout / 2) => result,
                            () = stop.cancelled() => return,
                        };
                        match confirm {
                            Ok((stream, latency)) => {
                                // The path works (one keepalive or its answer was lost): the
                                // fresh connection replaces the doubtful one.
                                debug!(pool = %reporter.pool, member = %target, since_ack_ms = info.since_ack.as_millis() as u64, "keepalive unanswered, but a fresh connection answered: holding it instead");
                                state.hold(stream);
                                state.feed(reporter, machine, Ok(latency));
                            }
                            Err(reconnect) => {
                                let failure = ProbeFailure::HeldLost {
                                    lost: "stopped answering".to_string(),
                                    reconnect: Box::new(reconnect),
                                };
                                state.force_down(reporter, machine, failure);
                            }
                        }
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
                state.next_probe = started + jittered(machine.next_delay(), false);
                scheduled = Some(state.next_probe.max(Instant::now()));
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
                let result = result.map(|(stream, latency)| {
                    state.hold(stream);
                    latency
                });
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
    /// Holds `stream` (replacing any held one) and schedules its first keepalive check.
    fn hold(&mut self, stream: TcpStream) {
        let now = Instant::now();
        self.held = Some(stream);
        self.held_since = now;
        self.check_at = Some(now + keepalive::first_check());
        self.outstanding = false;
        self.rehold_at = None;
    }

    /// Lets go of the held connection; fresh-connection probes take over after an interval.
    fn release(&mut self) {
        self.held = None;
        self.check_at = None;
        self.outstanding = false;
        self.next_probe = Instant::now() + jittered(self.interval, false);
    }

    /// Feeds one probe result to the machine, unless the member is held down.
    fn feed(
        &mut self,
        reporter: &mut Reporter,
        machine: &mut Machine,
        result: Result<Duration, ProbeFailure>,
    ) {
        let transition = self.flaps.feed(reporter, machine, &result);
        self.after(reporter, transition, &result);
    }

    fn force_down(
        &mut self,
        reporter: &mut Reporter,
        machine: &mut Machine,
        failure: ProbeFailure,
    ) {
        let result = Err(failure);
        // Two failure signals (the loss and the failed reconnect), counted as such in the
        // status's consecutive failures, as the transition's `consecutive` counts them.
        reporter.record(&result);
        reporter.record(&result);
        let transition = self.flaps.force_down(reporter, machine);
        self.after(reporter, transition, &result);
    }

    fn after(
        &mut self,
        reporter: &mut Reporter,
        transition: Option<Transition>,
        result: &Result<Duration, ProbeFailure>,
    ) {
        match transition.as_ref().map(|transition| transition.to) {
            Some(Health::Up) if self.held.is_none() => self.rehold_at = Some(Instant::now()),
            Some(Health::Down) => {
                if self.held.is_some() {
                    self.release();
                }
                self.rehold_at = None;
            }
            _ => {}
        }
        reporter.announce(transition, result);
    }
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

/// Connects within `timeout` and tunes the socket for holding (see [`keepalive::tune`]).
async fn connect_held(
    target: SocketAddr,
    timeout: Duration,
) -> Result<(TcpStream, Duration), ProbeFailure> {
    let started = Instant::now();
    let stream = match tokio::time::timeout(timeout, connect(target)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(failure)) => return Err(failure),
        Err(_) => return Err(ProbeFailure::Timeout(timeout)),
    };
    let latency = started.elapsed();
    keepalive::tune(&stream);
    Ok((stream, latency))
}
