//! The human summary that `apidns check` prints.

use std::fmt::Write;

use super::{Config, format_duration};

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
                pool.min_up,
                pool.max_answers,
                format_duration(probe.interval),
                format_duration(probe.timeout),
                probe.rise,
                probe.fall
            );
            for member in &pool.members {
                let _ = writeln!(out, "    member {member}");
            }
        }
    }
    out
}
