//! What etcd holds for the stand-in: the `default/kubernetes` EndpointSlices, one global
//! resourceVersion that every write bumps, and the history of changes a watch replays, which
//! `expire` compacts as etcd does (a watch from before it then gets 410 Gone).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

pub const GROUP_VERSION: &str = "discovery.k8s.io/v1";
pub const KIND: &str = "EndpointSlice";
pub const SERVICE_LABEL: &str = "kubernetes.io/service-name";

/// The slices kube-apiserver's reconciler writes: the primary family's, and the other one's
/// in a dual-stack cluster.
const MANAGED: [&str; 2] = ["kubernetes", "kubernetes-ipv6"];

/// One change, as a watch reports it.
#[derive(Debug, Clone)]
pub struct Event {
    pub resource_version: u64,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    /// The object with its kind and apiVersion, as watch events carry it.
    pub object: Value,
}

/// The answer to a watch or list from a resourceVersion whose history is gone.
#[derive(Debug)]
pub struct Expired {
    pub requested: u64,
    pub oldest: u64,
}

pub struct Store {
    resource_version: u64,
    /// A new watch or exact list from below this gets 410 Gone.
    oldest_valid: u64,
    /// The newest event that compaction removed: a watch that has sent it missed nothing.
    newest_dropped: u64,
    slices: BTreeMap<String, Value>,
    history: Vec<Event>,
    port: u16,
    next_uid: u64,
}

impl Store {
    /// A cluster whose `kubernetes` slice exists with no endpoints yet.
    pub fn new() -> Self {
        let mut store = Self {
            resource_version: 0,
            oldest_valid: 0,
            newest_dropped: 0,
            slices: BTreeMap::new(),
            history: Vec::new(),
            port: 6443,
            next_uid: 1,
        };
        store.set_addresses(&[]);
        store
    }

    pub fn resource_version(&self) -> u64 {
        self.resource_version
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn set_port(&mut self, port: u16) {
        self.port = port;
    }

    /// Writes the slices for `addresses` as kube-apiserver's endpoint reconciler would: one
    /// slice per address family (`kubernetes`, and `kubernetes-ipv6` when both families are
    /// present), one endpoint per address, port `https`. Slices that did not change are not
    /// written (no new resourceVersion, no event), as the reconciler skips equal writes.
    pub fn set_addresses(&mut self, addresses: &[IpAddr]) {
        let v4: Vec<IpAddr> = addresses.iter().filter(|a| a.is_ipv4()).copied().collect();
        let v6: Vec<IpAddr> = addresses.iter().filter(|a| a.is_ipv6()).copied().collect();
        let wanted: Vec<(&str, Vec<IpAddr>)> = match (v4.is_empty(), v6.is_empty()) {
            (_, true) => vec![(MANAGED[0], v4)],
            (true, false) => vec![(MANAGED[0], v6)],
            (false, false) => vec![(MANAGED[0], v4), (MANAGED[1], v6)],
        };
        for (name, addresses) in &wanted {
            self.put_slice(name, addresses);
        }
        for name in MANAGED {
            if wanted.iter().all(|(wanted, _)| *wanted != name) {
                self.delete_slice(name);
            }
        }
    }

    /// The addresses of the slices `set_addresses` manages.
    pub fn addresses(&self) -> Vec<IpAddr> {
        MANAGED
            .iter()
            .filter_map(|name| self.slices.get(*name))
            .flat_map(|slice| slice["endpoints"].as_array().cloned().unwrap_or_default())
            .filter_map(|endpoint| endpoint["addresses"][0].as_str()?.parse().ok())
            .collect()
    }

    /// Creates or rewrites the slice `name`, labelled for the `kubernetes` service, with
    /// `addresses` (one family: that of the first; IPv4 when there are none). Unchanged: not
    /// written.
    pub fn put_slice(&mut self, name: &str, addresses: &[IpAddr]) {
        let family = match addresses.first() {
            Some(IpAddr::V6(_)) => "IPv6",
            _ => "IPv4",
        };
        let endpoints: Vec<Value> = addresses
            .iter()
            .map(|address| {
                json!({
                    "addresses": [address.to_string()],
                    "conditions": {"ready": true, "serving": true, "terminating": false},
                })
            })
            .collect();
        let ports = json!([{"name": "https", "port": self.port, "protocol": "TCP"}]);
        let existing = self.slices.get(name);
        let unchanged = existing.is_some_and(|slice| {
            slice["addressType"] == family
                && slice["endpoints"] == Value::Array(endpoints.clone())
                && slice["ports"] == ports
        });
        if unchanged {
            return;
        }
        self.resource_version += 1;
        let (kind, mut slice) = match existing {
            Some(old) => {
                let mut slice = old.clone();
                let generation = slice["metadata"]["generation"].as_u64().unwrap_or(1) + 1;
                slice["metadata"]["generation"] = json!(generation);
                ("MODIFIED", slice)
            }
            None => ("ADDED", self.new_slice(name)),
        };
        slice["metadata"]["resourceVersion"] = json!(self.resource_version.to_string());
        slice["addressType"] = json!(family);
        slice["endpoints"] = Value::Array(endpoints);
        slice["ports"] = ports;
        self.record(kind, &slice);
        self.slices.insert(name.to_string(), slice);
    }

    /// Deletes the slice `name`, if there is one.
    pub fn delete_slice(&mut self, name: &str) {
        if let Some(mut slice) = self.slices.remove(name) {
            self.resource_version += 1;
            slice["metadata"]["resourceVersion"] = json!(self.resource_version.to_string());
            self.record("DELETED", &slice);
        }
    }

    fn new_slice(&mut self, name: &str) -> Value {
        let uid = format!("00000000-0000-4000-8000-{:012x}", self.next_uid);
        self.next_uid += 1;
        json!({
            "kind": KIND,
            "apiVersion": GROUP_VERSION,
            "metadata": {
                "name": name,
                "namespace": "default",
                "uid": uid,
                "generation": 1,
                "creationTimestamp": now_rfc3339(),
                "labels": {SERVICE_LABEL: "kubernetes"},
            },
        })
    }

    fn record(&mut self, kind: &'static str, object: &Value) {
        self.history.push(Event {
            resource_version: self.resource_version,
            kind,
            object: object.clone(),
        });
    }

    /// Compacts the history as etcd does, after a write elsewhere in the cluster moved the
    /// global resourceVersion on: every resourceVersion handed out so far is now too old to
    /// watch from, while the current one (what a new list returns) is not.
    pub fn expire(&mut self) {
        if let Some(last) = self.history.last() {
            self.newest_dropped = last.resource_version;
        }
        self.history.clear();
        self.resource_version += 1;
        self.oldest_valid = self.resource_version;
    }

    /// Whether a new watch (or exact list) may start from `resource_version`.
    pub fn check_start(&self, resource_version: u64) -> Result<(), Expired> {
        if resource_version < self.oldest_valid {
            return Err(Expired {
                requested: resource_version,
                oldest: self.oldest_valid,
            });
        }
        Ok(())
    }

    /// The changes after `resource_version`, for a watch that has sent everything up to it;
    /// `Expired` if compaction removed one it has not sent.
    pub fn events_after(&self, resource_version: u64) -> Result<Vec<Event>, Expired> {
        if resource_version < self.newest_dropped {
            return Err(Expired {
                requested: resource_version,
                oldest: self.oldest_valid,
            });
        }
        Ok(self
            .history
            .iter()
            .filter(|event| event.resource_version > resource_version)
            .cloned()
            .collect())
    }

    /// The slices now, in name order, with their kind and apiVersion.
    pub fn slices(&self) -> Vec<Value> {
        self.slices.values().cloned().collect()
    }

    pub fn slice(&self, name: &str) -> Option<Value> {
        self.slices.get(name).cloned()
    }
}

/// The current UTC time as Kubernetes writes timestamps (`2006-01-02T15:04:05Z`).
fn now_rfc3339() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Howard Hinnant's `civil_from_days`: the proleptic Gregorian date `days` after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A parsed `labelSelector`: equality (`k=v`, `k==v`), inequality (`k!=v`), existence (`k`)
/// and absence (`!k`) requirements, all of which must hold.
pub struct Selector {
    requirements: Vec<Requirement>,
}

enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    Absent(String),
}

impl Selector {
    /// `Err` with the reason for set-based requirements (`in`, `notin`), which the stand-in
    /// does not implement.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut requirements = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let requirement = if let Some((key, value)) = part.split_once("!=") {
                Requirement::NotEquals(key.trim().into(), value.trim().into())
            } else if let Some((key, value)) = part.split_once("==") {
                Requirement::Equals(key.trim().into(), value.trim().into())
            } else if let Some((key, value)) = part.split_once('=') {
                Requirement::Equals(key.trim().into(), value.trim().into())
            } else if let Some(key) = part.strip_prefix('!') {
                Requirement::Absent(key.trim().into())
            } else if part.contains(' ') || part.contains('(') {
                return Err(format!(
                    "unable to parse requirement {part:?}: set-based selectors are not implemented by the stand-in"
                ));
            } else {
                Requirement::Exists(part.into())
            };
            requirements.push(requirement);
        }
        Ok(Self { requirements })
    }

    pub fn matches(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        self.requirements
            .iter()
            .all(|requirement| match requirement {
                Requirement::Equals(key, value) => labels[key].as_str() == Some(value),
                Requirement::NotEquals(key, value) => labels[key].as_str() != Some(value),
                Requirement::Exists(key) => labels.get(key).is_some(),
                Requirement::Absent(key) => labels.get(key).is_none(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_gregorian() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn writes_bump_the_resource_version_and_equal_writes_do_not() {
        let mut store = Store::new();
        let start = store.resource_version();
        let address: IpAddr = "10.0.0.1".parse().unwrap();
        store.set_addresses(&[address]);
        assert_eq!(store.resource_version(), start + 1);
        store.set_addresses(&[address]);
        assert_eq!(store.resource_version(), start + 1);
        let events = store.events_after(start).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(store.addresses(), [address]);
        assert_eq!(events[0].kind, "MODIFIED");
    }

    #[test]
    fn both_families_make_two_slices_and_one_family_deletes_the_second() {
        let mut store = Store::new();
        let start = store.resource_version();
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let v6: IpAddr = "fd00::1".parse().unwrap();
        store.set_addresses(&[v4, v6]);
        assert_eq!(store.slices().len(), 2);
        store.set_addresses(&[v4]);
        let kinds: Vec<&str> = store
            .events_after(start)
            .unwrap()
            .iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["MODIFIED", "ADDED", "DELETED"]);
    }

    #[test]
    fn other_slices_are_left_to_their_writer() {
        let mut store = Store::new();
        let other: IpAddr = "192.0.2.66".parse().unwrap();
        store.put_slice("kubernetes-extra", &[other]);
        store.set_addresses(&["10.0.0.1".parse().unwrap()]);
        assert_eq!(store.slices().len(), 2);
        assert_eq!(store.addresses(), ["10.0.0.1".parse::<IpAddr>().unwrap()]);
        store.delete_slice("kubernetes-extra");
        assert_eq!(store.slices().len(), 1);
    }

    #[test]
    fn expiry_refuses_old_starts_but_not_the_current_one() {
        let mut store = Store::new();
        let old = store.resource_version();
        store.expire();
        assert!(store.check_start(old).is_err());
        assert!(store.check_start(store.resource_version()).is_ok());
        // A watch that had sent everything keeps going.
        assert!(store.events_after(old).is_ok());
    }

    #[test]
    fn selectors_match_labels() {
        let store = Store::new();
        let slice = &store.slices()[0];
        let matches = |text: &str| Selector::parse(text).unwrap().matches(slice);
        assert!(matches("kubernetes.io/service-name=kubernetes"));
        assert!(matches(
            "kubernetes.io/service-name==kubernetes,kubernetes.io/service-name"
        ));
        assert!(!matches("kubernetes.io/service-name!=kubernetes"));
        assert!(!matches("!kubernetes.io/service-name"));
        assert!(Selector::parse("a in (b)").is_err());
    }
}
