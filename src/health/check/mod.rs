//! Checks: how one member is asked, once, whether it is alive. One kind per file: a TCP connect
//! ([`tcp`]), an HTTP or HTTPS `GET` on a fresh connection ([`http`]), and the kept HTTP(S)
//! connection that held probes ask on ([`held_http`]); held TCP probes hold a connection made by
//! [`held_tcp`]. [`connect`] is the cheap TCP connect under all of them, and [`http_failure`]
//! turns hyper's and rustls's errors into the [`ProbeFailure`] an operator reads.
//!
//! Checks do I/O and say what happened; they decide nothing. When to ask and what a result
//! means for the member is the watch loops' business (`super::watch`).

mod connect;
pub(crate) mod held_http;
pub(crate) mod held_tcp;
mod http;
mod http_failure;
pub(crate) mod tcp;

use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use hickory_proto::rr::Name;
use tracing::warn;

use crate::config::{ProbeKind, ProbeSettings};
use crate::zone::ProbeFailure;

/// Probes `target` once as `settings` say, within `settings.timeout`: the one function that
/// periodic probers and `apidns probe` call. Success carries the time the probe took.
pub async fn check(settings: &ProbeSettings, target: SocketAddr) -> Result<Duration, ProbeFailure> {
    match &settings.kind {
        ProbeKind::Tcp => tcp::tcp_connect(target, settings.timeout).await,
        // Boxed: the HTTP client's state is large, and inline it would size every prober task
        // (ten thousand of them for a large pool set) for the biggest probe kind.
        ProbeKind::Http(http) => Box::pin(http::check(target, settings.timeout, http, None)).await,
        ProbeKind::Https(https) => {
            Box::pin(http::check(
                target,
                settings.timeout,
                &https.http,
                Some(https),
            ))
            .await
        }
    }
}

/// What a successful probe says in a transition log: `connected in 0.3ms`, `HTTP 200 in 2.1ms`.
pub fn success_reason(settings: &ProbeSettings, latency: Duration) -> String {
    let milliseconds = latency.as_secs_f64() * 1000.0;
    match settings.kind.http() {
        None => format!("connected in {milliseconds:.1}ms"),
        Some(http) => format!("HTTP {} in {milliseconds:.1}ms", http.expect_status),
    }
}

/// Warns, once per pool for the life of the process, that the pool's HTTPS probes accept any
/// certificate. Every prober of the pool calls this when it starts.
pub fn warn_if_insecure(pool: &Name, settings: &ProbeSettings) {
    static WARNED: Mutex<Vec<Name>> = Mutex::new(Vec::new());
    if !settings
        .kind
        .https()
        .is_some_and(|https| https.tls.skips_verification())
    {
        return;
    }
    let mut warned = WARNED.lock().unwrap_or_else(PoisonError::into_inner);
    if warned.contains(pool) {
        return;
    }
    warned.push(pool.clone());
    warn!(
        pool = %pool,
        "insecure_skip_verify is on: HTTPS probes accept any certificate for any name, so they cannot tell this pool's API servers from anything else that speaks TLS on the port"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_reason_names_the_kind() {
        let tcp = ProbeSettings::default();
        assert_eq!(
            success_reason(&tcp, Duration::from_micros(300)),
            "connected in 0.3ms"
        );
        let http = ProbeSettings {
            kind: ProbeKind::Http(crate::config::HttpCheck::default()),
            ..ProbeSettings::default()
        };
        assert_eq!(
            success_reason(&http, Duration::from_micros(2100)),
            "HTTP 200 in 2.1ms"
        );
    }
}
