//! Which failure signal took a member down: the `signal` label of `apidns_member_down_total`
//! and `apidns_detection_seconds`, and `down_signal` in `/status`. A handful of fixed words, so
//! that dashboards can tell a crashed server (closed, reset, refused) from a vanished host
//! (timeout) and from one that is up but unwell (stalled, HTTP status, certificate, TLS).

use super::probe_failure::ProbeFailure;

/// The kind of failure signal that took a member down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// The held connection was closed (FIN): the server process ended or closed it.
    Closed,
    /// The held connection was reset (RST).
    Reset,
    /// A connect was refused: nothing listens on the port.
    Refused,
    /// No answer in time: a connect that timed out, or a held connection whose keepalive went
    /// unanswered. A host that vanished, or a network that drops packets.
    Timeout,
    /// Connected, but no HTTP answer in time.
    Stalled,
    /// An HTTP answer with another status than expected (e.g. `/readyz` 500 while stopping).
    HttpStatus,
    /// The certificate is not trusted or does not carry the expected name.
    Certificate,
    /// Any other TLS failure.
    Tls,
    /// Anything else: an unreachable network, a malformed HTTP answer.
    Other,
}

impl Signal {
    /// Every signal, for code that clears per-signal metrics.
    pub const ALL: [Signal; 9] = [
        Signal::Closed,
        Signal::Reset,
        Signal::Refused,
        Signal::Timeout,
        Signal::Stalled,
        Signal::HttpStatus,
        Signal::Certificate,
        Signal::Tls,
        Signal::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Closed => "closed",
            Signal::Reset => "reset",
            Signal::Refused => "refused",
            Signal::Timeout => "timeout",
            Signal::Stalled => "stalled",
            Signal::HttpStatus => "http_status",
            Signal::Certificate => "certificate",
            Signal::Tls => "tls",
            Signal::Other => "other",
        }
    }
}

impl ProbeFailure {
    /// The signal this failure carries. A held connection that ended is the first of its two
    /// signals, so its end (closed, reset, timed out) names it; the failed reconnect only
    /// confirmed it.
    pub fn signal(&self) -> Signal {
        match self {
            ProbeFailure::Refused => Signal::Refused,
            ProbeFailure::Timeout(_) => Signal::Timeout,
            ProbeFailure::Stalled { .. } => Signal::Stalled,
            ProbeFailure::UntrustedCertificate(_) | ProbeFailure::NameMismatch { .. } => {
                Signal::Certificate
            }
            ProbeFailure::Tls(_) => Signal::Tls,
            ProbeFailure::HttpStatus { .. } => Signal::HttpStatus,
            ProbeFailure::Http(_) | ProbeFailure::Error(_) => Signal::Other,
            ProbeFailure::HeldLost { lost, reconnect } => match held_loss(lost) {
                Some(signal) => signal,
                None => reconnect.signal(),
            },
        }
    }
}

/// The signal of a held connection's end, from the words held probes use for it; `None` for an
/// end described otherwise (an unexpected socket error), which the reconnect then names.
fn held_loss(lost: &str) -> Option<Signal> {
    match lost {
        "closed" => Some(Signal::Closed),
        "reset" => Some(Signal::Reset),
        // TCP: keepalive gave up, or went unanswered.
        "timed out" | "stopped answering" => Some(Signal::Timeout),
        // HTTP/2: the connection works, the server does not answer on it.
        "stopped answering PINGs" => Some(Signal::Stalled),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn held(lost: &str, reconnect: ProbeFailure) -> ProbeFailure {
        ProbeFailure::HeldLost {
            lost: lost.to_string(),
            reconnect: Box::new(reconnect),
        }
    }

    #[test]
    fn every_failure_names_its_signal() {
        let timeout = ProbeFailure::Timeout(Duration::from_millis(500));
        let cases = [
            (ProbeFailure::Refused, Signal::Refused),
            (timeout.clone(), Signal::Timeout),
            (
                ProbeFailure::Stalled {
                    after: Duration::from_millis(500),
                    waiting_for: "the HTTP response",
                },
                Signal::Stalled,
            ),
            (
                ProbeFailure::UntrustedCertificate("unknown issuer".into()),
                Signal::Certificate,
            ),
            (
                ProbeFailure::NameMismatch {
                    server_name: "api".into(),
                    presented: Vec::new(),
                },
                Signal::Certificate,
            ),
            (ProbeFailure::Tls("bad record".into()), Signal::Tls),
            (
                ProbeFailure::HttpStatus {
                    status: 500,
                    expected: 200,
                },
                Signal::HttpStatus,
            ),
            (ProbeFailure::Http("not HTTP".into()), Signal::Other),
            (
                ProbeFailure::Error("network unreachable".into()),
                Signal::Other,
            ),
            (held("closed", ProbeFailure::Refused), Signal::Closed),
            (held("reset", ProbeFailure::Refused), Signal::Reset),
            (held("timed out", timeout.clone()), Signal::Timeout),
            (held("stopped answering", timeout.clone()), Signal::Timeout),
            (
                held("stopped answering PINGs", timeout.clone()),
                Signal::Stalled,
            ),
            (
                held("failed (broken pipe)", ProbeFailure::Refused),
                Signal::Refused,
            ),
        ];
        for (failure, signal) in cases {
            assert_eq!(failure.signal(), signal, "{failure}");
        }
    }

    #[test]
    fn labels_are_distinct() {
        let mut labels: Vec<&str> = Signal::ALL.iter().map(|s| s.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), Signal::ALL.len());
    }
}
