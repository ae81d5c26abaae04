//! Zone and configuration fixtures, each written once: the zone head most servers extend, the
//! names they ask for, probe timings, and the zones the in-process snapshots answer from.

/// A zone file that most tests extend: NS with glue, and `[soa]`.
pub const ZONE_HEAD: &str = r#"
origin = "k8s.example.com."
ttl = 300
records = [
  { name = "@", type = "NS", value = "ns1" },
  { name = "@", type = "NS", value = "ns2" },
  { name = "ns1", type = "A", value = "192.0.2.53" },
  { name = "ns2", type = "A", value = "192.0.2.54" },
  { name = "ns2", type = "AAAA", value = "2001:db8::54" },
]
[soa]
mname = "ns1"
rname = "hostmaster.example.com."
serial = 42
minimum = 5
ttl = 60
"#;

/// `ZONE_HEAD` with `extra` static records (inline tables such as
/// `{ name = "www", type = "A", value = "192.0.2.80" }`) appended to its `records` array.
pub fn zone_with_records(extra: &[&str]) -> String {
    let mut records = String::new();
    for record in extra {
        records.push_str("  ");
        records.push_str(record);
        records.push_str(",\n");
    }
    let head = ZONE_HEAD.replacen("]\n[soa]", &format!("{records}]\n[soa]"), 1);
    assert_ne!(
        head, ZONE_HEAD,
        "ZONE_HEAD's records array ends before [soa]"
    );
    head
}

/// The pool name most tests ask for.
pub const API: &str = "api.k8s.example.com.";
/// The same name without the final dot, as TLS certificates and HTTP clients spell it.
pub const API_NAME: &str = "api.k8s.example.com";

/// Probe timings short enough for a test to see several rounds in a second.
pub const FAST_PROBE: &str =
    "interval = \"300ms\"\ntimeout = \"200ms\"\nfast_interval = \"100ms\"\n";

/// The smallest valid main file for an in-process snapshot (no file is read).
pub const SNAPSHOT_MAIN: &str = "[server]\nlisten = [\"127.0.0.1:53\"]\n";

/// `count` IPv4 members of 198.51.100.0/24 as a TOML array body, for pools large enough to
/// truncate a UDP answer.
pub fn big_members(count: usize) -> String {
    (1..=count)
        .map(|i| format!("\"198.51.100.{i}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every kind of data apidns serves: NS with glue, a delegation, CNAME chains and a loop, many
/// record types, a pool large enough to truncate, IPv6 members. The fuzz targets answer from it,
/// with [`INNER_ZONE`] below it.
pub fn rich_zone() -> String {
    RICH_ZONE.replace("BIG", &big_members(80))
}

const RICH_ZONE: &str = r#"
origin = "k8s.example.com."
ttl = 300
records = [
  { name = "@", type = "NS", value = "ns1" },
  { name = "@", type = "NS", value = "ns2" },
  { name = "ns1", type = "A", value = "192.0.2.53" },
  { name = "ns2", type = "A", value = "192.0.2.54" },
  { name = "ns2", type = "AAAA", value = "2001:db8::54" },
  { name = "@", type = "TXT", value = "apidns example zone" },
  { name = "@", type = "MX", value = "10 mail" },
  { name = "@", type = "CAA", value = '0 issue "letsencrypt.org"' },
  { name = "mail", type = "A", value = "192.0.2.25" },
  { name = "k8s-api", type = "CNAME", value = "api" },
  { name = "loop1", type = "CNAME", value = "loop2" },
  { name = "loop2", type = "CNAME", value = "loop1" },
  { name = "dangling", type = "CNAME", value = "nowhere" },
  { name = "outside", type = "CNAME", value = "www.example.org." },
  { name = "_etcd._tcp", type = "SRV", value = "0 5 2379 ns1" },
  { name = "a.b.c.deep", type = "TXT", value = "empty non-terminals above" },
  { name = "sub", type = "NS", value = "ns.sub" },
  { name = "ns.sub", type = "A", value = "192.0.2.99" },
]
[soa]
mname = "ns1"
rname = "hostmaster.example.com."
serial = 42
minimum = 5

[pool.api]
ttl = 5
members = ["192.0.2.10", "192.0.2.11", "192.0.2.12", "2001:db8::10"]

[pool.big]
members = [BIG]
"#;

/// A zone below [`rich_zone`]'s, served by the same snapshot.
pub const INNER_ZONE: &str = r#"
origin = "inner.k8s.example.com."
records = [
  { name = "@", type = "NS", value = "ns1.k8s.example.com." },
  { name = "www", type = "A", value = "192.0.2.80" },
]
[soa]
mname = "ns1.k8s.example.com."
rname = "hostmaster.example.com."
serial = 1
"#;

/// The property tests' zone: few names, so that random names often hit one
/// ([`PROPERTIES_EXISTING`] is their oracle for NOERROR versus NXDOMAIN).
pub fn properties_zone() -> String {
    PROPERTIES_ZONE.replace("BIG", &big_members(80))
}

const PROPERTIES_ZONE: &str = r#"
origin = "k8s.example.com."
records = [
  { name = "@", type = "NS", value = "ns1" },
  { name = "ns1", type = "A", value = "192.0.2.53" },
  { name = "@", type = "TXT", value = "hello" },
  { name = "www", type = "CNAME", value = "api" },
  { name = "sub", type = "NS", value = "ns.sub" },
  { name = "ns.sub", type = "A", value = "192.0.2.99" },
]
[soa]
mname = "ns1"
rname = "hostmaster.example.com."
serial = 1

[pool.api]
members = ["192.0.2.10", "192.0.2.11", "2001:db8::10"]

[pool.big]
members = [BIG]
"#;

/// Names [`properties_zone`] holds data at.
pub const PROPERTIES_EXISTING: [&str; 5] = [
    "k8s.example.com.",
    "ns1.k8s.example.com.",
    "www.k8s.example.com.",
    "api.k8s.example.com.",
    "big.k8s.example.com.",
];

/// The fast-path differential test's zone: a pool per shape the fast path must answer or
/// decline (rotation, `max_answers`, IPv4 only, none answered, truncation, below a delegation).
/// Its `empty` pool is down in [`crate::snapshot::fast_path`].
pub fn fast_path_zone() -> String {
    FAST_PATH_ZONE.replace("BIG", &big_members(60))
}

const FAST_PATH_ZONE: &str = r#"
origin = "k8s.example.com."
records = [
  { name = "@", type = "NS", value = "ns1" },
  { name = "ns1", type = "A", value = "192.0.2.53" },
  { name = "www", type = "A", value = "192.0.2.80" },
  { name = "alias", type = "CNAME", value = "api" },
  { name = "sub", type = "NS", value = "ns.sub" },
  { name = "ns.sub", type = "A", value = "192.0.2.99" },
]
[soa]
mname = "ns1"
rname = "hostmaster.example.com."
serial = 7
minimum = 5
[pool.api]
ttl = 5
members = ["192.0.2.10", "192.0.2.11", "192.0.2.12", "2001:db8::10"]
[pool.two]
max_answers = 2
members = ["192.0.2.20", "192.0.2.21", "192.0.2.22"]
[pool.v4only]
members = ["192.0.2.30"]
[pool.empty]
all_down = "none"
members = ["192.0.2.40"]
[pool.big]
members = [BIG]
[pool."x.sub"]
members = ["192.0.2.50"]
"#;

/// The shape of the example zone in `zones/`: NS with glue, static data, a CNAME to the pool,
/// and a pool of three IPv4 members and one IPv6 member. The query benchmark answers from it.
pub const EXAMPLE_ZONE: &str = r#"
origin = "k8s.example.com."
ttl = 300
records = [
  { name = "@",   type = "NS", value = "ns1" },
  { name = "@",   type = "NS", value = "ns2" },
  { name = "ns1", type = "A",  value = "192.0.2.53" },
  { name = "ns2", type = "A",  value = "192.0.2.54" },
  { name = "@",   type = "TXT", value = "apidns example zone" },
  { name = "k8s-api", type = "CNAME", value = "api" },
]

[soa]
mname = "ns1"
rname = "hostmaster.example.com."
minimum = 5

[pool.api]
ttl = 5
port = 6443
members = ["192.0.2.10", "192.0.2.11", "192.0.2.12", "2001:db8::10"]
all_down = "all"
"#;

/// One zone of `pools` pools (`api0`, `api1`, ...) of `members` IPv4 members each, for
/// snapshot rebuild benchmarks.
pub fn many_pools_zone(pools: usize, members: usize) -> String {
    let mut zone = String::from(
        "origin = \"k8s.example.com.\"\nrecords = [\n  { name = \"@\", type = \"NS\", value = \"ns1\" },\n  { name = \"ns1\", type = \"A\", value = \"192.0.2.53\" },\n]\n[soa]\nmname = \"ns1\"\nrname = \"hostmaster.example.com.\"\nminimum = 5\n",
    );
    for pool in 0..pools {
        let list: Vec<String> = (0..members)
            .map(|member| format!("\"10.{pool}.{}.{}\"", member / 250, member % 250 + 1))
            .collect();
        zone.push_str(&format!(
            "[pool.api{pool}]\nttl = 5\nport = 6443\nmembers = [{}]\n",
            list.join(", ")
        ));
    }
    zone
}
