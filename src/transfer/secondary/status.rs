//! Each secondary zone's refresh state, for /status, `apidns status` and the metrics.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use hickory_proto::rr::Name;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

/// Where a secondary zone stands with its primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// No copy yet: the zone answers SERVFAIL.
    NoCopy,
    /// Refreshed within the SOA's refresh interval.
    Fresh,
    /// The last successful refresh is older than the SOA's refresh: the primary has not
    /// been reached since (long before expire, so that monitoring sees it first).
    RefreshOverdue,
    /// Past the SOA's expire without reaching the primary: the zone answers SERVFAIL.
    Expired,
}

impl Freshness {
    pub fn as_str(self) -> &'static str {
        match self {
            Freshness::NoCopy => "no copy",
            Freshness::Fresh => "fresh",
            Freshness::RefreshOverdue => "refresh overdue",
            Freshness::Expired => "expired",
        }
    }
}

/// One secondary zone's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneRefresh {
    pub primary: SocketAddr,
    /// The serial of the copy in force (or withdrawn at expire).
    pub serial: Option<u32>,
    /// When the primary last answered (a transfer, or a serial no newer than ours).
    pub last_success: Option<SystemTime>,
    /// Why the last attempt failed, when it did.
    pub last_error: Option<String>,
    /// The SOA's refresh and expire of the copy.
    pub refresh: Duration,
    pub expire: Duration,
    /// The copy was withdrawn at expire.
    pub expired: bool,
}

impl ZoneRefresh {
    pub fn new(primary: SocketAddr) -> Self {
        Self {
            primary,
            serial: None,
            last_success: None,
            last_error: None,
            refresh: Duration::ZERO,
            expire: Duration::ZERO,
            expired: false,
        }
    }

    pub fn freshness(&self, now: SystemTime) -> Freshness {
        if self.expired {
            return Freshness::Expired;
        }
        let (Some(_), Some(last)) = (self.serial, self.last_success) else {
            return Freshness::NoCopy;
        };
        let age = now.duration_since(last).unwrap_or_default();
        // A refresh takes a moment: overdue only once a whole second past it.
        if age > self.refresh + Duration::from_secs(1) {
            Freshness::RefreshOverdue
        } else {
            Freshness::Fresh
        }
    }
}

/// Every secondary zone's state, shared by the refresh loops (writing) and /status (reading).
#[derive(Debug, Clone, Default)]
pub struct SecondaryStatus(Arc<Mutex<BTreeMap<Name, ZoneRefresh>>>);

impl SecondaryStatus {
    pub(super) fn update(
        &self,
        zone: &Name,
        primary: SocketAddr,
        change: impl FnOnce(&mut ZoneRefresh),
    ) {
        let mut zones = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = zones
            .entry(zone.clone())
            .or_insert_with(|| ZoneRefresh::new(primary));
        entry.primary = primary;
        change(entry);
    }

    pub fn get(&self, zone: &Name) -> Option<ZoneRefresh> {
        let zones = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        zones.get(zone).cloned()
    }

    pub fn all(&self) -> Vec<(Name, ZoneRefresh)> {
        let zones = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        zones
            .iter()
            .map(|(name, state)| (name.clone(), state.clone()))
            .collect()
    }

    pub(super) fn forget(&self, zone: &Name) {
        let mut zones = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        zones.remove(zone);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TransferLabels {
    pub zone: String,
    /// `axfr`, `ixfr`, `up_to_date` (the serial was not newer), or `soa` (the SOA query alone
    /// failed).
    pub kind: String,
    /// `ok`, `refused` (the copy broke the zone's rules), or the fetch error's label
    /// (`timeout`, `bad_tsig`, `unreachable`, ...).
    pub result: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ZoneLabel {
    pub zone: String,
}

/// The secondary side's metrics, registered by `crate::metrics` and recorded here.
#[derive(Debug, Clone, Default)]
pub struct SecondaryMetrics {
    /// Refresh attempts, by zone, kind and result.
    pub transfers: Family<TransferLabels, Counter>,
    /// Seconds since the primary last answered, by zone (updated every second).
    pub seconds_since_refresh: Family<ZoneLabel, Gauge>,
    /// 1 while the zone's copy is past the SOA's expire (SERVFAIL), by zone.
    pub expired: Family<ZoneLabel, Gauge>,
    /// The serial of the copy in force, by zone.
    pub serial: Family<ZoneLabel, Gauge>,
}

impl SecondaryMetrics {
    pub(super) fn count(&self, zone: &Name, kind: &str, result: &str) {
        self.transfers
            .get_or_create(&TransferLabels {
                zone: zone.to_string(),
                kind: kind.to_string(),
                result: result.to_string(),
            })
            .inc();
    }

    pub(super) fn zone(zone: &Name) -> ZoneLabel {
        ZoneLabel {
            zone: zone.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_follows_the_last_refresh() {
        let now = SystemTime::now();
        let mut zone = ZoneRefresh::new("127.0.0.1:53".parse().unwrap());
        assert_eq!(zone.freshness(now), Freshness::NoCopy);
        zone.serial = Some(1);
        zone.refresh = Duration::from_secs(60);
        zone.last_success = Some(now - Duration::from_secs(30));
        assert_eq!(zone.freshness(now), Freshness::Fresh);
        zone.last_success = Some(now - Duration::from_secs(62));
        assert_eq!(zone.freshness(now), Freshness::RefreshOverdue);
        zone.expired = true;
        assert_eq!(zone.freshness(now), Freshness::Expired);
    }
}
