//! The human summary that `apidns check` prints.

use std::fmt::Write;

use super::{Config, ProbeKind, Trust, format_duration};

/// What a probe checks, in one line: `tcp connect`, `https GET /readyz expecting 200, server
/// name api.k8s.example.com, CA file /etc/kubernetes/pki/ca.crt`.
fn describe_probe(kind: &ProbeKind) -> String {
    let Some(http) = kind.http() else {
        return "tcp connect".to_string();
    };
    let mut text = format!(
        "{} GET {} expecting {}",
        kind.as_str(),
        http.path,
        http.expect_status
    );
    if let Some(https) = kind.https() {
        if let Some(name) = &https.server_name {
            let _ = write!(text, ", server name {name}");
        }
        match https.tls.trust() {
            Trust::System => text.push_str(", system trust store"),
            Trust::CaFile(path) => {
                let _ = write!(text, ", CA file {}", path.display());
            }
            Trust::Insecure => text.push_str(", certificate NOT verified (insecure_skip_verify)"),
        }
        if let Some(identity) = https.tls.identity() {
            let _ = write!(text, ", client certificate {}", identity.cert.display());
        }
    }
    text
}

/// Zones, pools and members, one per line, indented.
pub fn summary(config: &Config) -> String {
    let mut out = String::new();
    let server = &config.server;
    let listen: Vec<String> = server.listen.iter().map(ToString::to_string).collect();
    let _ = writeln!(out, "config {}: ok", config.path.display());
    let _ = writeln!(out, "listen {} (udp and tcp)", listen.join(", "));
    if let Some(http) = server.http {
        let _ = writeln!(out, "http   {http}");
    }
    for zone in &config.zones {
        let _ = writeln!(
            out,
            "zone {} ({}): serial {}, {} static records, {} pools",
            zone.origin,
            zone.file.display(),
            zone.soa.serial,
            zone.records.len(),
            zone.pools.len()
        );
        for pool in &zone.pools {
            let probe = &pool.probe;
            let _ = writeln!(
                out,
                "  pool {}: ttl {}, all_down {}, min_up {}, max_answers {}, probe every {} (timeout {}, rise {}, fall {})",
                pool.name,
                pool.ttl,
                pool.all_down.as_str(),
                pool.min_up(),
                pool.max_answers(),
                format_duration(probe.interval),
                format_duration(probe.timeout),
                probe.rise,
                probe.fall
            );
            let held = if probe.holds() {
                " (held connection)"
            } else {
                ""
            };
            let _ = writeln!(out, "    probe {}{held}", describe_probe(&probe.kind));
            for member in pool.members() {
                let _ = writeln!(
                    out,
                    "    member {} ({}, weight {}, priority {})",
                    member.address, member.host, member.weight, member.priority
                );
            }
        }
    }
    for zone in &config.secondaries {
        let key = zone
            .primary
            .key
            .as_ref()
            .map_or("unsigned".to_string(), |key| format!("key {key}"));
        let _ = writeln!(
            out,
            "zone {} ({}): secondary of {} ({key}), {} pools",
            zone.origin,
            zone.file.display(),
            zone.primary.address,
            zone.pools.len()
        );
        for pool in &zone.pools {
            let _ = writeln!(
                out,
                "  pool {}: ttl {}, all_down {}, min_up {}, members from the primary",
                pool.name,
                pool.ttl,
                pool.all_down.as_str(),
                pool.min_up
            );
        }
    }
    out
}
