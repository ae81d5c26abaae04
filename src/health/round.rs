//! One probe of every member, for `apidns probe`.

use std::fmt::Write;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::rr::Name;

use super::check::check;
use crate::config::Config;
use crate::zone::ProbeFailure;

#[derive(Debug, Clone)]
pub struct RoundResult {
    pub pool: Name,
    pub member: SocketAddr,
    pub result: Result<Duration, ProbeFailure>,
}

/// Probes every member of every pool once, all at the same time.
pub async fn probe_round(config: &Config) -> Vec<RoundResult> {
    let mut tasks = tokio::task::JoinSet::new();
    let mut order = Vec::new();
    for pool in config.zones.iter().flat_map(|zone| &zone.pools) {
        for member in pool.members().iter().map(|m| m.address) {
            let index = order.len();
            order.push((pool.name.clone(), member));
            let settings = pool.probe.clone();
            tasks.spawn(async move { (index, check(&settings, member).await) });
        }
    }
    let mut results: Vec<Option<Result<Duration, ProbeFailure>>> = vec![None; order.len()];
    while let Some(joined) = tasks.join_next().await {
        if let Ok((index, result)) = joined {
            results[index] = Some(result);
        }
    }
    order
        .into_iter()
        .zip(results)
        .map(|((pool, member), result)| RoundResult {
            pool,
            member,
            result: result.unwrap_or_else(|| Err(ProbeFailure::Error("probe task failed".into()))),
        })
        .collect()
}

/// The results as a table, and whether every pool has at least one member up.
pub fn round_table(config: &Config, results: &[RoundResult]) -> (String, bool) {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<32} {:<28} {:<6} {:<28} {:>9}",
        "POOL", "MEMBER", "PORT", "RESULT", "LATENCY"
    );
    for row in results {
        let (result, latency) = match &row.result {
            Ok(latency) => (
                "up".to_string(),
                format!("{:.1}ms", latency.as_secs_f64() * 1000.0),
            ),
            Err(failure) => (failure.to_string(), "-".to_string()),
        };
        let _ = writeln!(
            out,
            "{:<32} {:<28} {:<6} {:<28} {:>9}",
            row.pool.to_string(),
            row.member.ip().to_string(),
            row.member.port(),
            result,
            latency
        );
    }
    let mut every_pool_up = true;
    for pool in config.zones.iter().flat_map(|zone| &zone.pools) {
        let up = results
            .iter()
            .filter(|row| row.pool == pool.name && row.result.is_ok())
            .count();
        let _ = writeln!(
            out,
            "pool {}: {up} of {} members up",
            pool.name,
            pool.members().len()
        );
        every_pool_up &= up > 0;
    }
    (out, every_pool_up)
}
