//! Rebuilding what the query path reads: a whole `Snapshot` from a configuration (a reload),
//! and one pool's live set after a member changes state (a health change, the common case).
//!
//! `cargo bench --bench snapshot` (add `-- --quick` for a fast, rougher run).

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

use apidns::health::{Health, MemberStatus};
use apidns::zone::Snapshot;

const POOLS: usize = 10;
const MEMBERS: usize = 100;

fn bench_snapshot(c: &mut Criterion) {
    let zone = testkit::zones::many_pools_zone(POOLS, MEMBERS);
    let config = testkit::snapshot::config(
        testkit::zones::SNAPSHOT_MAIN,
        &[("k8s.example.com.toml", &zone)],
    );
    let up = |_: &_, _: SocketAddr| Arc::new(MemberStatus::new(Health::Up));
    let mut group = c.benchmark_group("snapshot");
    group.bench_function("build 10 pools x 100 members", |b| {
        b.iter(|| Snapshot::build(black_box(&config), up))
    });

    // One member of one pool goes down and comes back: the live set is rebuilt each time.
    let statuses: Vec<Arc<MemberStatus>> = (0..POOLS * MEMBERS)
        .map(|_| testkit::snapshot::status(Health::Up))
        .collect();
    let mut next = statuses.iter();
    let snapshot = testkit::snapshot::with_statuses(&config, |_, _| {
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
