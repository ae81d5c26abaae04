//! How a pool's members are probed, as configured.

use std::sync::Arc;
use std::time::Duration;

use crate::config::tls::TlsClient;

/// How one pool's members are probed.
///
/// Not `Copy`: an HTTPS probe carries its TLS material (in an `Arc`, loaded once). Equality is
/// what the prober registry compares to decide whether a prober must restart after a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSettings {
    /// Time between probes in steady state.
    pub interval: Duration,
    /// A probe that has not succeeded after this long has failed.
    pub timeout: Duration,
    /// Time between probes while a member's state is being confirmed (HAProxy's `fastinter`).
    pub fast_interval: Duration,
    /// Consecutive successes that bring a down member up.
    pub rise: u32,
    /// Consecutive failures that take an up member down.
    pub fall: u32,
    /// What a probe checks: a TCP connection, or an HTTP(S) request's status.
    pub kind: ProbeKind,
    /// Keep one connection open to the member and take it down the moment that connection
    /// closes and a reconnect fails (see `health::held` for TCP, `health::held_https` for
    /// HTTP(S), which also sends its requests on it).
    pub hold: bool,
}

impl ProbeSettings {
    /// Whether probers hold a connection open.
    pub fn holds(&self) -> bool {
        self.hold
    }
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            fast_interval: Duration::from_millis(200),
            rise: 2,
            fall: 2,
            kind: ProbeKind::Tcp,
            hold: true,
        }
    }
}

/// The path an HTTP(S) probe requests by default: the API server's readiness endpoint, which
/// Kubernetes lets anyone read (the `system:public-info-viewer` cluster role binding).
pub const DEFAULT_PROBE_PATH: &str = "/readyz";
/// The status an HTTP(S) probe expects by default.
pub const DEFAULT_EXPECT_STATUS: u16 = 200;

/// What a probe checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeKind {
    /// Something accepts a TCP connection (closed at once).
    Tcp,
    /// A plain HTTP GET answers with the expected status.
    Http(HttpCheck),
    /// An HTTPS GET, over a TLS connection whose certificate is verified, answers with the
    /// expected status.
    Https(HttpsCheck),
}

impl ProbeKind {
    /// The name used in the configuration: `"tcp"`, `"http"` or `"https"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ProbeKind::Tcp => "tcp",
            ProbeKind::Http(_) => "http",
            ProbeKind::Https(_) => "https",
        }
    }

    /// The request of an HTTP or HTTPS probe.
    pub fn http(&self) -> Option<&HttpCheck> {
        match self {
            ProbeKind::Tcp => None,
            ProbeKind::Http(http) => Some(http),
            ProbeKind::Https(https) => Some(&https.http),
        }
    }

    pub fn https(&self) -> Option<&HttpsCheck> {
        match self {
            ProbeKind::Https(https) => Some(https),
            _ => None,
        }
    }
}

/// The request an HTTP(S) probe sends and the answer it wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    /// Path and query in origin form, e.g. `/readyz`.
    pub path: String,
    /// The status that means ready; anything else is a failure.
    pub expect_status: u16,
}

impl Default for HttpCheck {
    fn default() -> Self {
        Self {
            path: DEFAULT_PROBE_PATH.to_string(),
            expect_status: DEFAULT_EXPECT_STATUS,
        }
    }
}

/// An HTTPS probe: the request, the name the certificate must carry, and the TLS material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsCheck {
    pub http: HttpCheck,
    /// Sent as SNI and verified against the certificate's subject alternative names. Every
    /// pool has one (its own DNS name unless `server_name` is set); only the `[probe]` defaults
    /// may leave it unset.
    pub server_name: Option<String>,
    /// Trust anchors, client identity and the rustls configuration, shared by every prober
    /// that uses them.
    pub tls: Arc<TlsClient>,
}
