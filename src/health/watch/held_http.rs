//! Held HTTP(S) probes (`kind = "https"` or `"http"` with `hold = true`, the default): the
//! prober keeps one connection open to the member (HTTP/2 when the server offers it, HTTP/1.1
//! keep-alive otherwise) and asks `GET /readyz` on it every `interval`, instead of a new
//! connection and TLS handshake per probe. It watches the connection between requests.
//!
//! - **A failed request** (a status other than `expect_status`, a timeout, a broken answer) is
//!   one failure signal. It is confirmed at once with a request on a fresh connection: a second
//!   failure takes the member down whatever `fall` says, a success keeps it up. A kube-apiserver
//!   that starts a graceful shutdown answers 500 on `/readyz` at once, so it leaves the answers
//!   at the first request that sees the 500: within `interval`, not `fall × interval`.
//! - **The connection ends** (FIN, RST, GOAWAY, a PING unanswered within `timeout`, or
//!   `TCP_USER_TIMEOUT`): reconnect and ask at once. A failed reconnect or request takes the
//!   member down at once; a good answer is no failure (servers close connections: idle
//!   timeouts, `--goaway-chance`). A killed server is gone in milliseconds; one that shuts down
//!   gracefully stops listening and sends GOAWAY, and the reconnect is refused.
//! - **Between requests**, HTTP/2 connections send a PING whenever idle for `interval / 4`
//!   (at most 250 ms) and end when its ack is later than `timeout / 2`: a frozen server is
//!   caught in about `interval / 8 + 1.5 × timeout`. HTTP/1.1 has no PING: there, the next request's
//!   timeout notices.
//! - **Coming back** needs `rise` successes, each on a fresh connection; the hold-down of
//!   flapping members ([`crate::health::flap`]) applies as in held TCP probes.
//! - **Short-lived connections**: when the server closes two connections in a row within
//!   `interval` of opening them, the prober stops reconnecting on every close for a while
//!   (`interval`, doubling up to 30 s) and reconnects at the next request instead, so it never
//!   spins on a server that closes idle connections quickly.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::health::check::held_http::{Endpoint, HeldConnection};
use crate::health::flap::{Flaps, rehold_backoff};
use crate::health::jitter::jittered;
use crate::health::report::Reporter;
use crate::health::rise_fall::{Machine, Transition};
use crate::zone::{Health, ProbeFailure};

enum Event {
    /// The held connection ended; the text says how ("closed", "reset", ...).
    Lost(String),
    /// Time for the next request.
    Probe,
}

struct HeldProber {
    endpoint: Endpoint,
    interval: Duration,
    held: Option<HeldConnection>,
    /// Consecutive held connections that the server closed within `interval`.
    short_lived: u32,
    /// Until when a closed connection is not replaced at once.
    rehold_at: Option<Instant>,
    flaps: Flaps,
}

/// The held HTTP(S) prober loop; returns when `stop` is cancelled.
pub(crate) async fn run(reporter: &mut Reporter, machine: &mut Machine, stop: &CancellationToken) {
    let interval = reporter.settings.interval;
    let endpoint = match Endpoint::new(&reporter.settings, reporter.target) {
        Ok(endpoint) => endpoint,
        Err(failure) => return unprobeable(reporter, machine, stop, failure).await,
    };
    let mut prober = HeldProber {
        endpoint,
        interval,
        held: None,
        short_lived: 0,
        rehold_at: None,
        flaps: Flaps::new(interval),
    };
    let mut next_probe = Instant::now();
    let mut scheduled: Option<Instant> = None;
    let mut first = true;
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => return,
            lost = lost(&mut prober.held, &prober.endpoint) => Event::Lost(lost),
            () = tokio::time::sleep_until(next_probe) => Event::Probe,
        };
        let work = async {
            match event {
                Event::Lost(lost) => prober.on_lost(lost, reporter, machine).await,
                Event::Probe => {
                    let started = Instant::now();
                    reporter.lateness(started, scheduled);
                    prober.probe(reporter, machine).await;
                    next_probe = started + jittered(machine.next_delay(), first);
                    first = false;
                    scheduled = Some(next_probe.max(Instant::now()));
                }
            }
        };
        tokio::select! {
            () = work => {}
            () = stop.cancelled() => return,
        }
    }
}

async fn lost(held: &mut Option<HeldConnection>, endpoint: &Endpoint) -> String {
    match held {
        Some(connection) => connection.lost(endpoint).await,
        None => std::future::pending().await,
    }
}

/// A member that cannot be asked at all (its settings make no request): fails every interval.
async fn unprobeable(
    reporter: &mut Reporter,
    machine: &mut Machine,
    stop: &CancellationToken,
    failure: ProbeFailure,
) {
    let result = Err(failure);
    loop {
        reporter.record(&result);
        reporter.announce(machine.observe(false), &result);
        tokio::select! {
            () = tokio::time::sleep(reporter.settings.interval) => {}
            () = stop.cancelled() => return,
        }
    }
}

impl HeldProber {
    /// One request, on the held connection or on a new one; the connection is held on success.
    async fn request(&mut self) -> Result<Duration, ProbeFailure> {
        let started = Instant::now();
        let mut connection = match self.held.take() {
            Some(connection) => connection,
            None => HeldConnection::open(&self.endpoint).await?,
        };
        connection.get(&self.endpoint).await?;
        self.held = Some(connection);
        Ok(started.elapsed())
    }

    /// The scheduled request.
    async fn probe(&mut self, reporter: &mut Reporter, machine: &mut Machine) {
        if machine.health() != Health::Up {
            // A member comes back only on successes on fresh connections.
            self.held = None;
        }
        match self.request().await {
            Err(failure) if machine.health() == Health::Up => {
                self.confirm(failure, reporter, machine).await;
            }
            result => self.feed(reporter, machine, result),
        }
    }

    /// One failure signal on an up member: ask again at once, on a fresh connection.
    async fn confirm(
        &mut self,
        failure: ProbeFailure,
        reporter: &mut Reporter,
        machine: &mut Machine,
    ) {
        reporter.failure_seen(Instant::now());
        self.held = None;
        match self.request().await {
            Ok(latency) => {
                debug!(pool = %reporter.pool, member = %reporter.target, %failure, "a failed request was not confirmed");
                self.feed(reporter, machine, Err(failure));
                self.feed(reporter, machine, Ok(latency));
            }
            Err(again) => {
                reporter.record(&Err(failure));
                self.force_down(reporter, machine, again);
            }
        }
    }

    /// The held connection ended: one signal, confirmed or not by a reconnect and a request.
    async fn on_lost(&mut self, lost: String, reporter: &mut Reporter, machine: &mut Machine) {
        let Some(connection) = self.held.take() else {
            return;
        };
        let now = Instant::now();
        let lived = connection.opened.elapsed();
        drop(connection);
        let backing_off = self.rehold_at.is_some_and(|at| now < at);
        if machine.health() != Health::Up || backing_off {
            // The next scheduled request opens a fresh connection.
            return;
        }
        reporter.failure_seen(now);
        self.short_lived = if lived < self.interval {
            self.short_lived + 1
        } else {
            0
        };
        if self.short_lived >= 2 {
            let backoff = rehold_backoff(self.interval, self.short_lived);
            self.rehold_at = Some(now + backoff);
            debug!(pool = %reporter.pool, member = %reporter.target, %lost, lived_ms = lived.as_millis() as u64, backoff_ms = backoff.as_millis() as u64, "held connections end quickly: reconnecting at the next request for a while");
        }
        match self.request().await {
            Ok(latency) => {
                debug!(pool = %reporter.pool, member = %reporter.target, %lost, lived_ms = lived.as_millis() as u64, "held connection ended, reconnected");
                self.feed(reporter, machine, Ok(latency));
            }
            Err(reconnect) => {
                let failure = ProbeFailure::HeldLost {
                    lost,
                    reconnect: Box::new(reconnect),
                };
                // Two signals, as the transition's `consecutive` counts them.
                reporter.record(&Err(failure.clone()));
                self.force_down(reporter, machine, failure);
            }
        }
    }

    /// Feeds one result to the machine, unless the member is held down after flapping.
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
        let transition = self.flaps.force_down(reporter, machine, &result);
        self.after(reporter, transition, &result);
    }

    fn after(
        &mut self,
        reporter: &mut Reporter,
        transition: Option<Transition>,
        result: &Result<Duration, ProbeFailure>,
    ) {
        if transition
            .as_ref()
            .is_some_and(|transition| transition.to == Health::Down)
        {
            self.held = None;
            self.rehold_at = None;
            self.short_lived = 0;
        }
        reporter.announce(transition, result);
    }
}
