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
//!   (see [`crate::health::keepalive`]). An unanswered keepalive and a failed connect take the member
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

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::health::check::held_tcp::{connect_held, held_lost};
use crate::health::check::tcp::tcp_connect;
use crate::health::flap::{Flaps, rehold_backoff};
use crate::health::jitter::jittered;
use crate::health::keepalive::{self, Assessment, KeepaliveInfo};
use crate::health::report::Reporter;
use crate::health::rise_fall::{Machine, Transition};
use crate::zone::{Health, ProbeFailure};

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
    target: SocketAddr,
    timeout: Duration,
    interval: Duration,
    held: Option<TcpStream>,
    held_since: Instant,
    /// The next fresh-connection probe, while nothing is held.
    next_probe: Instant,
    /// When the last fresh-connection probe was due to start, for the lateness histogram.
    scheduled: Option<Instant>,
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
pub(crate) async fn run(reporter: &mut Reporter, machine: &mut Machine, stop: &CancellationToken) {
    let mut state = State::new(reporter);

    // The first probe is the held connection itself: its result decides at once.
    let first = tokio::select! {
        result = connect_held(state.target, state.timeout) => result,
        () = stop.cancelled() => return,
    };
    let result = first.map(|(stream, latency)| {
        state.hold(stream);
        latency
    });
    state.feed(reporter, machine, result);
    state.next_probe = Instant::now() + jittered(machine.next_delay(), true);

    loop {
        let event = tokio::select! {
            () = stop.cancelled() => return,
            event = state.next_event() => event,
        };
        // A stop ends the loop wherever the event's handling waits (on a connect).
        tokio::select! {
            () = state.handle(event, reporter, machine) => {}
            () = stop.cancelled() => return,
        }
    }
}

impl State {
    fn new(reporter: &Reporter) -> Self {
        let now = Instant::now();
        let interval = reporter.settings.interval;
        Self {
            target: reporter.target,
            timeout: reporter.settings.timeout,
            interval,
            held: None,
            held_since: now,
            next_probe: now,
            scheduled: None,
            check_at: None,
            outstanding: false,
            short_lived: 0,
            rehold_at: None,
            flaps: Flaps::new(interval),
        }
    }

    /// Waits for the next thing to do: while a connection is held, its end or its next
    /// keepalive check; while none is, the next fresh-connection probe or the re-hold.
    async fn next_event(&self) -> Event {
        let holding = self.held.is_some();
        let (rehold_at, check_at, next_probe) = (self.rehold_at, self.check_at, self.next_probe);
        tokio::select! {
            lost = held_lost(self.held.as_ref()), if holding => Event::Lost(lost),
            () = sleep_until_some(check_at), if holding && check_at.is_some() => Event::KeepaliveCheck,
            () = tokio::time::sleep_until(next_probe), if !holding => Event::Probe,
            () = sleep_until_some(rehold_at), if !holding && rehold_at.is_some() => Event::Rehold,
        }
    }

    async fn handle(&mut self, event: Event, reporter: &mut Reporter, machine: &mut Machine) {
        match event {
            Event::Lost(lost) => self.on_lost(lost, reporter, machine).await,
            Event::KeepaliveCheck => self.on_keepalive_check(reporter, machine).await,
            Event::Probe => self.on_probe(reporter, machine).await,
            Event::Rehold => self.on_rehold(reporter, machine).await,
        }
    }

    /// The held connection ended: one failure signal, which a reconnect made at once confirms
    /// (the member goes down) or not (the new connection is held, unless connections end
    /// quickly, when re-holding backs off).
    async fn on_lost(&mut self, lost: String, reporter: &mut Reporter, machine: &mut Machine) {
        reporter.failure_seen(Instant::now());
        let lived = self.held_since.elapsed();
        self.release();
        match connect_held(self.target, self.timeout).await {
            Err(reconnect) => {
                let failure = ProbeFailure::HeldLost {
                    lost,
                    reconnect: Box::new(reconnect),
                };
                self.force_down(reporter, machine, failure);
            }
            Ok((stream, latency)) => {
                debug!(pool = %reporter.pool, member = %self.target, %lost, lived_ms = lived.as_millis() as u64, "held connection ended, reconnected");
                self.short_lived = if lived < self.interval {
                    self.short_lived + 1
                } else {
                    0
                };
                if self.short_lived >= 2 {
                    let backoff = rehold_backoff(self.interval, self.short_lived);
                    drop(stream);
                    self.rehold_at = Some(Instant::now() + backoff);
                } else {
                    self.hold(stream);
                }
                self.feed(reporter, machine, Ok(latency));
            }
        }
    }

    /// Reads the held connection's `TCP_INFO` and acts on what it says of the keepalive.
    async fn on_keepalive_check(&mut self, reporter: &mut Reporter, machine: &mut Machine) {
        let Some(stream) = self.held.as_ref() else {
            return;
        };
        let info = match keepalive::read(stream) {
            Ok(info) => info,
            Err(error) => {
                debug!(pool = %reporter.pool, member = %self.target, %error, "cannot read TCP_INFO: black holes are left to the kernel's keepalive");
                self.check_at = None;
                return;
            }
        };
        let now = Instant::now();
        match keepalive::assess(info, self.outstanding) {
            Assessment::CheckIn(after) => {
                self.outstanding = false;
                self.check_at = Some(now + after);
            }
            Assessment::Outstanding(after) => {
                self.outstanding = true;
                self.check_at = Some(now + after);
            }
            Assessment::Unanswered => {
                reporter.failure_seen(now);
                self.confirm_unanswered(info, reporter, machine).await;
            }
        }
    }

    /// A keepalive went unanswered: the second signal is a fresh connect. A host that just left
    /// a keepalive unanswered gets half the timeout to answer a SYN (a LAN answers in well
    /// under a millisecond; a lost SYN is retried only after a second anyway).
    async fn confirm_unanswered(
        &mut self,
        info: KeepaliveInfo,
        reporter: &mut Reporter,
        machine: &mut Machine,
    ) {
        match connect_held(self.target, self.timeout / 2).await {
            Ok((stream, latency)) => {
                // The path works (one keepalive or its answer was lost): the fresh connection
                // replaces the doubtful one.
                debug!(pool = %reporter.pool, member = %self.target, since_ack_ms = info.since_ack.as_millis() as u64, "keepalive unanswered, but a fresh connection answered: holding it instead");
                self.hold(stream);
                self.feed(reporter, machine, Ok(latency));
            }
            Err(reconnect) => {
                let failure = ProbeFailure::HeldLost {
                    lost: "stopped answering".to_string(),
                    reconnect: Box::new(reconnect),
                };
                self.force_down(reporter, machine, failure);
            }
        }
    }

    /// A fresh-connection probe, while nothing is held.
    async fn on_probe(&mut self, reporter: &mut Reporter, machine: &mut Machine) {
        let started = Instant::now();
        reporter.lateness(started, self.scheduled);
        let result = tcp_connect(self.target, self.timeout).await;
        self.feed(reporter, machine, result);
        self.next_probe = started + jittered(machine.next_delay(), false);
        self.scheduled = Some(self.next_probe.max(Instant::now()));
    }

    /// Holds a connection again, after a backoff or once the member came back up.
    async fn on_rehold(&mut self, reporter: &mut Reporter, machine: &mut Machine) {
        self.rehold_at = None;
        if machine.health() != Health::Up {
            return;
        }
        let result = connect_held(self.target, self.timeout)
            .await
            .map(|(stream, latency)| {
                self.hold(stream);
                latency
            });
        let failed = result.is_err();
        self.feed(reporter, machine, result);
        if failed && machine.health() == Health::Up {
            self.rehold_at = Some(Instant::now() + self.interval);
        }
    }

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
        if self.held.is_none() {
            // Whatever probed (a re-hold, a reconnect), the next fresh probe is due within the
            // machine's delay, as with periodic probing: `fast_interval` once a failure needs
            // confirming. Otherwise a failed re-hold would wait a whole `interval` for its
            // confirmation, and a member that holds nothing would be slower to go than with
            // `hold = false`.
            let due = Instant::now() + jittered(machine.next_delay(), false);
            self.next_probe = self.next_probe.min(due);
        }
    }

    fn force_down(
        &mut self,
        reporter: &mut Reporter,
        machine: &mut Machine,
        failure: ProbeFailure,
    ) {
        let result = Err(failure);
        let transition = self.flaps.force_down(reporter, machine, &result);
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
