//! Rebuilding what the query path reads: a whole `Snapshot` from a configuration (a reload),
//! and one pool's live set after a member changes state (a health change, the common case).
//!
//! `cargo bench --bench snapshot` (add `-- --quick` for a fast, rougher run).

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

use apidns::health::{Health, MemberStatus};
use apidns::zone::Snapshot;

const POOLS: usize = 10;
const MEMBERS: usize = 100;

/// One zone of `POOLS` pools of `MEMBERS` IPv4 members each.
fn zone_file() -> String {
    let mut zone = String::from(
        "origin = \"k8s.example.com.\"\nrecords = [\n  { name = \"@\", type = \"NS\", value = \"ns1\" },\n  { name = \"ns1\", type = \"A\", value = \"192.0.2.53\" },\n]\n[soa]\nmname = \"ns1\"\nrname = \"hostmaster.example.com.\"\nminimum = 5\n",
    );
    for pool in 0..POOLS {
        let members: Vec<String> = (0..MEMBERS)
            .map(|member| format!("\"10.{pool}.{}.{}\"", member / 250, member % 250 + 1))
            .collect();
        zone.push_str(&format!(
            "[pool.api{pool}]\nttl = 5\nport = 6443\nmembers = [{}]\n",
            members.join(", ")
        ));
    }
    zone
}

/// The configuration directory, removed when the benchmark is done with it.
struct ConfigDir(PathBuf);

impl ConfigDir {
    fn write() -> Self {
        let dir =
            std::env::temp_dir().join(format!("apidns-bench-snapshot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("zones")).expect("create the config directory");
        std::fs::write(
            dir.join("apidns.toml"),
            "[server]\nlisten = [\"127.0.0.1:5353\"]\nzones = \"zones\"\n",
        )
        .expect("write apidns.toml");
        std::fs::write(dir.join("zones/k8s.example.com.toml"), zone_file())
            .expect("write the zone file");
        Self(dir)
    }
}

impl Drop for ConfigDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bench_snapshot(c: &mut Criterion) {
    let dir = ConfigDir::write();
    let config = apidns::config::load(&dir.0.join("apidns.toml")).expect("a valid configuration");
    let up = |_: &_, _: SocketAddr| Arc::new(MemberStatus::new(Health::Up));
    let mut group = c.benchmark_group("snapshot");
    group.bench_function("build 10 pools x 100 members", |b| {
        b.iter(|| Snapshot::build(black_box(&config), up))
    });

    // One member of one pool goes down and comes back: the live set is rebuilt each time.
    let statuses: Vec<Arc<MemberStatus>> = (0..POOLS * MEMBERS)
        .map(|_| Arc::new(MemberStatus::new(Health::Up)))
        .collect();
    let mut next = statuses.iter();
    let snapshot = Snapshot::build(&config, |_, _| {
        next.next().cloned().expect("one status per member")
    });
    let pool = snapshot.pools().next().expect("a pool").clone();
    let flipped = &statuses[0];
    let flip = || {
        flipped.set(match flipped.health() {
            Health::Up => Health::Down,
            _ => Health::Up,
        });
    };
    group.bench_function("live set after one member changes (100 members)", |b| {
        b.iter(|| {
            flip();
            assert!(pool.refresh(), "the live set changed");
        })
    });
    group.bench_function("every pool after one member changes (10 x 100)", |b| {
        b.iter(|| {
            flip();
            assert!(snapshot.refresh_live_sets(), "a live set changed");
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_snapshot
}
criterion_main!(benches);
