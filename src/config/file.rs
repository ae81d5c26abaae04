//! What the TOML files say, as written: every value keeps its span so that validation can point
//! at it. Nothing here is checked beyond its TOML type; `model` turns it into checked types.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// The main file, e.g. `apidns.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MainFile {
    pub server: ServerSection,
    #[serde(default)]
    pub probe: ProbeSection,
    /// TSIG keys, one `[[tsig]]` table each.
    #[serde(default)]
    pub tsig: Vec<Spanned<TsigSection>>,
}

/// One TSIG key: the secret inline, or in a BIND-style key file (`tsig-keygen` output).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsigSection {
    pub name: Spanned<String>,
    pub algorithm: Option<Spanned<String>>,
    pub secret: Option<Spanned<String>>,
    pub secret_file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    pub listen: Spanned<Vec<Spanned<String>>>,
    pub http: Option<Spanned<String>>,
    pub zones: Option<Spanned<String>>,
    pub tcp_idle_timeout: Option<Spanned<String>>,
    pub tcp_max_connections: Option<Spanned<i64>>,
    pub max_udp_payload: Option<Spanned<i64>>,
    pub admin_token: Option<Spanned<String>>,
    pub user: Option<Spanned<String>>,
    pub rrl: Option<Spanned<RrlSection>>,
    pub state_dir: Option<Spanned<String>>,
    pub nsid: Option<Spanned<String>>,
    pub cookie_secret: Option<Spanned<String>>,
    pub cookie_secret_previous: Option<Spanned<String>>,
    pub require_server_cookie: Option<Spanned<bool>>,
}

/// Response rate limiting: `rrl = { responses_per_second = 20 }` or a `[server.rrl]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RrlSection {
    pub responses_per_second: Spanned<i64>,
    pub slip: Option<Spanned<i64>>,
    pub window: Option<Spanned<String>>,
    pub ipv4_prefix_length: Option<Spanned<i64>>,
    pub ipv6_prefix_length: Option<Spanned<i64>>,
}

/// Probe settings, as defaults under `[probe]` or as a pool's `probe = { ... }` override.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSection {
    pub interval: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub fast_interval: Option<Spanned<String>>,
    pub rise: Option<Spanned<i64>>,
    pub fall: Option<Spanned<i64>>,
    pub kind: Option<Spanned<String>>,
    pub path: Option<Spanned<String>>,
    pub expect_status: Option<Spanned<i64>>,
    pub server_name: Option<Spanned<String>>,
    pub ca_file: Option<Spanned<String>>,
    pub insecure_skip_verify: Option<Spanned<bool>>,
    pub client_cert: Option<Spanned<String>>,
    pub client_key: Option<Spanned<String>>,
    pub hold: Option<Spanned<bool>>,
}

/// One zone file under the zones directory.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneFile {
    pub origin: Spanned<String>,
    pub ttl: Option<Spanned<i64>>,
    /// An RFC 1035 master file with static records (and maybe the SOA), relative to this file.
    pub records_file: Option<Spanned<String>>,
    pub soa: Option<Spanned<SoaSection>>,
    #[serde(default)]
    pub records: Vec<Spanned<RecordEntry>>,
    #[serde(default)]
    pub pool: BTreeMap<Spanned<String>, Spanned<PoolSection>>,
    pub update: Option<Spanned<UpdateSection>>,
    pub transfer: Option<Spanned<TransferSection>>,
    /// On a secondary zone: the primary its data comes from.
    pub primary: Option<Spanned<PrimarySection>>,
}

/// `primary = { address = "192.0.2.53:53", key = "xfr-key" }`: the zone's data comes from this
/// primary by zone transfer; `key` is optional (unsigned transfers on a private network).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrimarySection {
    pub address: Spanned<String>,
    pub key: Option<Spanned<String>>,
}

/// `transfer = { keys = ["xfr-key"], notify = ["192.0.2.54:53"] }`: zone transfers (AXFR,
/// IXFR) to secondaries that sign with one of `keys`, and NOTIFY to `notify` on every change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferSection {
    pub keys: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub notify: Vec<Spanned<String>>,
}

/// `update = { keys = ["ops-key"], allow = "pool-members" }`: dynamic updates to this zone.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateSection {
    pub keys: Spanned<Vec<Spanned<String>>>,
    pub allow: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoaSection {
    pub mname: Spanned<String>,
    pub rname: Spanned<String>,
    pub serial: Option<Spanned<i64>>,
    pub refresh: Option<Spanned<i64>>,
    pub retry: Option<Spanned<i64>>,
    pub expire: Option<Spanned<i64>>,
    pub minimum: Option<Spanned<i64>>,
    pub ttl: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordEntry {
    pub name: Spanned<String>,
    #[serde(rename = "type")]
    pub record_type: Spanned<String>,
    pub value: Spanned<String>,
    pub ttl: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSection {
    /// Required unless the zone is a secondary (whose members come from the primary).
    pub members: Option<Spanned<Vec<Spanned<MemberEntry>>>>,
    /// Service label of the pool's SRV records, e.g. `_https._tcp`.
    pub srv: Option<Spanned<String>>,
    /// Where member names live, relative to the origin (default: under the pool's name).
    pub member_domain: Option<Spanned<String>>,
    pub weight: Option<Spanned<i64>>,
    pub priority: Option<Spanned<i64>>,
    pub port: Option<Spanned<i64>>,
    pub ttl: Option<Spanned<i64>>,
    pub all_down: Option<Spanned<String>>,
    pub min_up: Option<Spanned<i64>>,
    pub max_answers: Option<Spanned<i64>>,
    pub probe: Option<ProbeSection>,
    pub drain: Option<Spanned<Vec<Spanned<String>>>>,
    pub discover: Option<Spanned<DiscoverSection>>,
}

/// `discover = { kubeconfig = "...", allow = ["192.0.2.0/24"] }`: members proposed by the
/// cluster's `default/kubernetes` EndpointSlice.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoverSection {
    pub kubeconfig: Spanned<String>,
    pub allow: Spanned<Vec<Spanned<String>>>,
}

/// A pool member: `"192.0.2.10"` / `"192.0.2.10:6443"`, or a table with a name.
#[derive(Debug)]
pub enum MemberEntry {
    Address(String),
    Table(MemberTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberTable {
    pub address: Spanned<String>,
    pub name: Option<Spanned<String>>,
    pub port: Option<Spanned<i64>>,
    pub weight: Option<Spanned<i64>>,
    pub priority: Option<Spanned<i64>>,
}

// By hand rather than `#[serde(untagged)]`, whose only error is "data did not match any
// variant": a misspelt key in a member table should be named.
impl<'de> Deserialize<'de> for MemberEntry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = MemberEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "an address string or a table { name = \"cp1\", address = \"192.0.2.10\" }",
                )
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<MemberEntry, E> {
                Ok(MemberEntry::Address(value.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<MemberEntry, A::Error> {
                MemberTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(MemberEntry::Table)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}
