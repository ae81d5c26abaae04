//! In-process snapshots for tests, benches and fuzz targets that call the query path without a
//! server: the one place that turns fixture text into a `Config` and a `Snapshot`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use apidns::config::{Config, PoolConfig, parse_main_text, parse_zone_text};
use apidns::health::{Health, MemberStatus};
use apidns::zone::Snapshot;

use crate::zones;

/// The configuration of `main` and the zone files `zones` (file name, text), parsed as
/// `apidns::config::load` parses them but without touching the disk. Every zone without an SOA
/// serial gets serial 1 (a file's modification time in `load`).
pub fn config(main: &str, zone_files: &[(&str, &str)]) -> Config {
    let path = Path::new("/etc/apidns/apidns.toml");
    let (server, probe) = parse_main_text(path, main).expect("the fixture's main file is valid");
    let zones = zone_files
        .iter()
        .map(|(name, text)| {
            parse_zone_text(&Path::new("zones").join(name), text, &probe, 1)
                .unwrap_or_else(|error| panic!("the fixture zone {name} is invalid: {error}"))
        })
        .collect();
    Config {
        path: path.to_path_buf(),
        server,
        probe,
        zones,
        secondaries: Vec::new(),
    }
}

/// A snapshot of `config` whose members have the health `health_of` gives their pool.
pub fn build(config: &Config, health_of: impl Fn(&PoolConfig) -> Health) -> Snapshot {
    Snapshot::build(config, |pool, _| {
        Arc::new(MemberStatus::new(health_of(pool)))
    })
}

/// A snapshot of `config` with every member up, as after a round in which all answered.
pub fn all_up(config: &Config) -> Snapshot {
    build(config, |_| Health::Up)
}

/// A snapshot whose members take their statuses from `status_of` (shared statuses a bench
/// flips).
pub fn with_statuses(
    config: &Config,
    status_of: impl FnMut(&PoolConfig, SocketAddr) -> Arc<MemberStatus>,
) -> Snapshot {
    Snapshot::build(config, status_of)
}

/// A status a caller can change later.
pub fn status(health: Health) -> Arc<MemberStatus> {
    Arc::new(MemberStatus::new(health))
}

/// [`zones::rich_zone`] and [`zones::INNER_ZONE`], every member up: what the `respond_*` fuzz
/// targets answer from. Built once per process.
pub fn rich() -> &'static Snapshot {
    static SNAPSHOT: OnceLock<Snapshot> = OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        let rich = zones::rich_zone();
        all_up(&config(
            zones::SNAPSHOT_MAIN,
            &[
                ("k8s.example.com.toml", &rich),
                ("inner.toml", zones::INNER_ZONE),
            ],
        ))
    })
}

/// [`zones::properties_zone`], every member up. Built once per process.
pub fn properties() -> &'static Snapshot {
    static SNAPSHOT: OnceLock<Snapshot> = OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        all_up(&config(
            zones::SNAPSHOT_MAIN,
            &[("k8s.toml", &zones::properties_zone())],
        ))
    })
}

/// [`zones::fast_path_zone`]: every member up but the `empty` pool's. A fresh snapshot per call,
/// so that each test sees the rotation from its start.
pub fn fast_path() -> Snapshot {
    let config = config(
        zones::SNAPSHOT_MAIN,
        &[("k8s.toml", &zones::fast_path_zone())],
    );
    build(&config, |pool| {
        if pool.name.to_string().starts_with("empty.") {
            Health::Down
        } else {
            Health::Up
        }
    })
}

/// [`zones::EXAMPLE_ZONE`], every member up.
pub fn example() -> Snapshot {
    all_up(&config(
        zones::SNAPSHOT_MAIN,
        &[("k8s.example.com.toml", zones::EXAMPLE_ZONE)],
    ))
}
