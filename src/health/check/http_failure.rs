//! How the errors of an HTTP(S) exchange read to an operator: hyper's and rustls's errors, and
//! webpki's view of a certificate, turned into a [`ProbeFailure`]. Shared by the periodic check
//! ([`super::http`]) and the held connection ([`super::held_http`]), so that both say the same
//! thing about the same server.

use std::io;

use rustls::{AlertDescription, CertificateError};

use crate::config::{HttpsCheck, Trust};
use crate::zone::ProbeFailure;

pub(super) fn http_failure(error: &hyper::Error, tls: Option<(&str, &HttpsCheck)>) -> ProbeFailure {
    // A TLS 1.3 server reports a rejected client certificate after the client has finished
    // its handshake, so TLS alerts can surface here, as an I/O error inside hyper's error.
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(inner) = source {
        if let Some(io_error) = inner.downcast_ref::<io::Error>() {
            if let Some((name, https)) = tls
                && rustls_error(io_error).is_some()
            {
                return tls_failure(io_error, name, https);
            }
            return match io_error.kind() {
                io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof => {
                    ProbeFailure::Http("connection closed before the HTTP response".into())
                }
                _ => ProbeFailure::Http(format!("HTTP request failed: {io_error}")),
            };
        }
        source = inner.source();
    }
    if error.is_incomplete_message() || error.is_closed() || error.is_canceled() {
        ProbeFailure::Http("connection closed before the HTTP response".into())
    } else if error.is_parse() {
        ProbeFailure::Http(format!("not an HTTP response: {error}"))
    } else {
        ProbeFailure::Http(format!("HTTP request failed: {error}"))
    }
}

fn rustls_error(error: &io::Error) -> Option<&rustls::Error> {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

pub(super) fn tls_failure(
    error: &io::Error,
    server_name: &str,
    https: &HttpsCheck,
) -> ProbeFailure {
    let Some(tls_error) = rustls_error(error) else {
        return match error.kind() {
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted => ProbeFailure::Tls(
                "the server closed the connection during the handshake (does the port serve TLS?)"
                    .into(),
            ),
            _ => ProbeFailure::Tls(error.to_string()),
        };
    };
    match tls_error {
        rustls::Error::InvalidCertificate(certificate) => {
            certificate_failure(certificate, server_name, https.tls.trust())
        }
        rustls::Error::AlertReceived(AlertDescription::CertificateRequired) => ProbeFailure::Tls(
            "the server requires a client certificate (set client_cert and client_key)".into(),
        ),
        rustls::Error::AlertReceived(alert) if https.tls.identity().is_some() => ProbeFailure::Tls(
            format!("the server sent the alert {alert:?} (does it accept client_cert?)"),
        ),
        rustls::Error::AlertReceived(alert) => {
            ProbeFailure::Tls(format!("the server sent the alert {alert:?}"))
        }
        rustls::Error::InvalidMessage(_) => {
            ProbeFailure::Tls(format!("{tls_error} (does the port serve TLS?)"))
        }
        other => ProbeFailure::Tls(other.to_string()),
    }
}

fn certificate_failure(error: &CertificateError, server_name: &str, trust: &Trust) -> ProbeFailure {
    let untrusted = |detail: &str| ProbeFailure::UntrustedCertificate(detail.to_string());
    match error {
        CertificateError::NotValidForName => ProbeFailure::NameMismatch {
            server_name: server_name.to_string(),
            presented: Vec::new(),
        },
        CertificateError::NotValidForNameContext { presented, .. } => ProbeFailure::NameMismatch {
            server_name: server_name.to_string(),
            presented: presented.iter().map(|name| presented_name(name)).collect(),
        },
        CertificateError::UnknownIssuer => match trust {
            Trust::CaFile(path) => {
                untrusted(&format!("it is not signed by the CA in {}", path.display()))
            }
            Trust::System => untrusted("it is not signed by a CA in the system trust store"),
            Trust::Insecure => untrusted("unknown issuer"),
        },
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => untrusted("expired"),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            untrusted("not valid yet")
        }
        CertificateError::Revoked => untrusted("revoked"),
        CertificateError::BadSignature => untrusted("bad signature"),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            untrusted("not issued for TLS servers (extended key usage)")
        }
        other => untrusted(&other.to_string()),
    }
}

/// webpki describes the names a certificate carries as `DnsName("a.example")` and
/// `IpAddress(192.0.2.1)`; operators want the names.
fn presented_name(text: &str) -> String {
    text.strip_prefix("DnsName(\"")
        .and_then(|rest| rest.strip_suffix("\")"))
        .or_else(|| {
            text.strip_prefix("IpAddress(")
                .and_then(|rest| rest.strip_suffix(')'))
        })
        .unwrap_or(text)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presented_names_lose_their_wrapping() {
        assert_eq!(presented_name("DnsName(\"a.example\")"), "a.example");
        assert_eq!(presented_name("IpAddress(192.0.2.1)"), "192.0.2.1");
        assert_eq!(presented_name("DirectoryName"), "DirectoryName");
    }
}
