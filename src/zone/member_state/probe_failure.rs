//! Why a probe failed, in words an operator recognises: what transition logs show as `reason=`,
//! what `/status` and `apidns probe` print, and what a member's status cell keeps as its last
//! result.

use std::time::Duration;

/// Why a probe failed. The text is what transition logs show as `reason=` and what
/// `apidns probe` prints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeFailure {
    /// The host answered with a reset: nothing listens on the port.
    #[error("connection refused")]
    Refused,
    /// No connection within the timeout: a dead or unreachable host, or a firewall dropping
    /// packets.
    #[error("timeout after {}ms", .0.as_millis())]
    Timeout(Duration),
    /// Connected, but the probe did not finish within the timeout: an API server that accepts
    /// connections and then hangs (overloaded, or stopping).
    #[error("timeout after {}ms waiting for {waiting_for}", after.as_millis())]
    Stalled {
        after: Duration,
        /// What the probe was waiting for, e.g. "the HTTP response".
        waiting_for: &'static str,
    },
    /// The certificate chain does not lead to a trusted CA, or is not valid now.
    #[error("certificate not trusted: {0}")]
    UntrustedCertificate(String),
    /// The certificate is valid but does not carry the name the probe asked for.
    #[error(
        "certificate does not match server name {server_name}{}",
        valid_for(presented)
    )]
    NameMismatch {
        server_name: String,
        /// The names the certificate does carry, when known.
        presented: Vec<String>,
    },
    /// Any other TLS failure: the server refused the handshake, or does not speak TLS.
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// The server answered with another status than the one expected.
    #[error("HTTP status {status} (expected {expected})")]
    HttpStatus { status: u16, expected: u16 },
    /// The answer was not an HTTP response, or the connection closed before it.
    #[error("{0}")]
    Http(String),
    /// Any other error, e.g. "network unreachable".
    #[error("{0}")]
    Error(String),
    /// Held probes: the held connection ended (`lost`: "closed" for a FIN, "reset" for an RST,
    /// "timed out" when keepalive or TCP_USER_TIMEOUT gave up) and the reconnect made at once
    /// failed. Two independent signals, so the member goes down at once.
    #[error("held connection {lost}, reconnect {}", reconnect_words(reconnect))]
    HeldLost {
        lost: String,
        reconnect: Box<ProbeFailure>,
    },
}

/// ` (it is valid for a, b)`, or nothing when the certificate's names are not known.
fn valid_for(presented: &[String]) -> String {
    if presented.is_empty() {
        String::new()
    } else {
        format!(" (it is valid for {})", presented.join(", "))
    }
}

/// How the reconnect after a lost held connection failed, worded to follow "reconnect".
fn reconnect_words(reconnect: &ProbeFailure) -> String {
    match reconnect {
        ProbeFailure::Refused => "refused".to_string(),
        ProbeFailure::Timeout(after) => format!("timeout after {}ms", after.as_millis()),
        other => format!("failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_sentences() {
        let cases = [
            (ProbeFailure::Refused, "connection refused"),
            (
                ProbeFailure::Timeout(Duration::from_millis(500)),
                "timeout after 500ms",
            ),
            (
                ProbeFailure::Stalled {
                    after: Duration::from_millis(200),
                    waiting_for: "the HTTP response",
                },
                "timeout after 200ms waiting for the HTTP response",
            ),
            (
                ProbeFailure::HttpStatus {
                    status: 500,
                    expected: 200,
                },
                "HTTP status 500 (expected 200)",
            ),
            (
                ProbeFailure::NameMismatch {
                    server_name: "api.k8s.example.com".into(),
                    presented: vec!["other.example.com".into(), "10.0.0.1".into()],
                },
                "certificate does not match server name api.k8s.example.com (it is valid for other.example.com, 10.0.0.1)",
            ),
            (
                ProbeFailure::HeldLost {
                    lost: "closed".into(),
                    reconnect: Box::new(ProbeFailure::Refused),
                },
                "held connection closed, reconnect refused",
            ),
            (
                ProbeFailure::HeldLost {
                    lost: "reset".into(),
                    reconnect: Box::new(ProbeFailure::Timeout(Duration::from_millis(500))),
                },
                "held connection reset, reconnect timeout after 500ms",
            ),
            (
                ProbeFailure::UntrustedCertificate("unknown issuer".into()),
                "certificate not trusted: unknown issuer",
            ),
        ];
        for (failure, text) in cases {
            assert_eq!(failure.to_string(), text);
        }
    }
}
