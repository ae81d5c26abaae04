//! Wildcards (RFC 4592) against Knot: one zone, written from one list as apidns's TOML `records`
//! and as an RFC 1035 master file for `knotd`, served by both on loopback; a few hundred
//! generated questions (existing names, names under wildcards at several depths, empty
//! non-terminals, names under a pool and under a delegation; seven types and ANY) go to both,
//! and the answers must agree on rcode, AA, the answer RRsets and the authority section.
//!
//! The test needs Debian's `knot` package (`knotd`); without it, it fails and says so.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use apidns::dns::{Transport, fast, respond_general};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Record, RecordType};
use testkit::client::{free_port, query, udp_raw_timeout};
use testkit::server::{ServerSpec, TempDir, TestServer};
use testkit::wait::wait_until;

const ORIGIN: &str = "wild.test.";

/// The zone's static data, owner relative to the origin: the one source both servers read.
const RECORDS: &[(&str, &str, &str)] = &[
    ("@", "NS", "ns1"),
    ("ns1", "A", "192.0.2.53"),
    ("@", "TXT", "\"apex\""),
    ("@", "MX", "10 mail"),
    ("mail", "A", "192.0.2.25"),
    // A wildcard at the apex, with several types.
    ("*", "A", "192.0.2.1"),
    ("*", "TXT", "\"wild apex\""),
    ("*", "MX", "10 mail"),
    // Existing names: never covered.
    ("www", "A", "192.0.2.80"),
    ("www", "AAAA", "2001:db8::80"),
    // Empty non-terminals b.c.deep, c.deep and deep; a wildcard below deep only.
    ("a.b.c.deep", "AAAA", "2001:db8::a"),
    ("*.deep", "TXT", "\"under deep\""),
    ("*.deep", "AAAA", "2001:db8::d"),
    // An empty non-terminal without a wildcard of its own blocks the apex wildcard.
    ("e.f.ent", "A", "192.0.2.70"),
    // Wildcard CNAMEs: into the zone, along a chain of synthesized names, out of the zone.
    ("*.cn", "CNAME", "www"),
    ("*.chain", "CNAME", "x.cn"),
    ("*.out", "CNAME", "target.elsewhere.example."),
    ("host.out", "A", "192.0.2.90"),
    // A wildcard with an existing sibling, below an empty non-terminal.
    ("*.lit.ent", "A", "192.0.2.111"),
    ("sib.lit.ent", "A", "192.0.2.112"),
    // A delegation: nothing below the cut is synthesized, glue included.
    ("sub", "NS", "ns.sub"),
    ("ns.sub", "A", "192.0.2.99"),
];

/// The pool, as apidns configures it. Its members' probes fail (nothing listens on the discard
/// port of these loopback addresses) and `all_down = "all"` answers every member, so its answer
/// is fixed: Knot serves the same records statically.
const POOL: &str = r#"
[pool.api]
members = [
  { name = "cp1", address = "127.0.0.61:9" },
  { name = "cp2", address = "127.0.0.62:9" },
]
probe = { interval = "10s", timeout = "1s", fast_interval = "1s" }
"#;

/// What the pool adds to the zone, for Knot: the pool's addresses, its members' names and its
/// SRV records (pool TTL 5).
const POOL_RECORDS: &[(&str, &str, &str)] = &[
    ("api", "A", "127.0.0.61"),
    ("api", "A", "127.0.0.62"),
    ("cp1.api", "A", "127.0.0.61"),
    ("cp2.api", "A", "127.0.0.62"),
    ("_https._tcp.api", "SRV", "0 10 9 cp1.api"),
    ("_https._tcp.api", "SRV", "0 10 9 cp2.api"),
];

const SOA_TEXT: &str = "ns1 hostmaster.example.com. 42 3600 600 604800 5";

fn apidns_zone() -> String {
    let mut text = format!("origin = \"{ORIGIN}\"\nttl = 300\nrecords = [\n");
    for (name, rtype, value) in RECORDS {
        // TOML literal strings: values carry double quotes (TXT).
        text.push_str(&format!(
            "  {{ name = \"{name}\", type = \"{rtype}\", value = '{value}' }},\n"
        ));
    }
    text.push_str(
        "]\n[soa]\nmname = \"ns1\"\nrname = \"hostmaster.example.com.\"\nserial = 42\n\
         refresh = 3600\nretry = 600\nexpire = 604800\nminimum = 5\nttl = 300\n",
    );
    text.push_str(POOL);
    text
}

fn master_file() -> String {
    let mut text = format!("$ORIGIN {ORIGIN}\n$TTL 300\n@ 300 IN SOA {SOA_TEXT}\n");
    for (name, rtype, value) in RECORDS {
        text.push_str(&format!("{name} 300 IN {rtype} {value}\n"));
    }
    for (name, rtype, value) in POOL_RECORDS {
        text.push_str(&format!("{name} 5 IN {rtype} {value}\n"));
    }
    text
}

/// `knotd` on loopback, serving the master file; stopped on drop.
struct Knot {
    child: Child,
    address: SocketAddr,
    _dir: TempDir,
}

impl Knot {
    fn start(zone_text: &str) -> Self {
        let knotd = knotd().unwrap_or_else(|| {
            panic!(
                "knotd (Knot DNS) is missing: this differential test compares apidns with it. \
                 Install Debian's package: apt-get install knot"
            )
        });
        let dir = TempDir::new("knot");
        let zone = dir.write("wild.test.zone", zone_text);
        let port = free_port();
        let root = dir.path().display().to_string();
        let config = dir.write(
            "knot.conf",
            &format!(
                "server:\n    listen: 127.0.0.1@{port}\n    rundir: {root}\n    udp-workers: 1\n    \
                 tcp-workers: 1\n    background-workers: 1\ndatabase:\n    storage: {root}\n\
                 log:\n  - target: stderr\n    any: warning\n\
                 zone:\n  - domain: {ORIGIN}\n    file: {}\n    semantic-checks: on\n",
                zone.display()
            ),
        );
        let child = Command::new(knotd)
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start knotd");
        let knot = Self {
            child,
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            _dir: dir,
        };
        // Ready when it answers the zone's SOA with authority.
        let ready = wait_until(Duration::from_secs(10), || {
            ask(
                knot.address,
                ORIGIN,
                RecordType::SOA,
                Duration::from_millis(200),
            )
            .is_some_and(|reply| reply.authoritative && !reply.answers.is_empty())
        });
        assert!(ready.is_some(), "knotd did not serve {ORIGIN} within 10 s");
        knot
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn knotd() -> Option<PathBuf> {
    let mut places: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    places.extend(["/usr/sbin", "/usr/local/sbin"].map(PathBuf::from));
    places
        .into_iter()
        .map(|dir| dir.join("knotd"))
        .find(|path| path.is_file())
}

/// The parts of a reply that both servers must agree on.
#[derive(Debug, PartialEq)]
struct Summary {
    rcode: String,
    authoritative: bool,
    /// Every answer record as text (owner, TTL, class, type, data), lower case, sorted.
    answers: Vec<String>,
    /// The authority section's owners and types, sorted.
    authority: Vec<String>,
}

fn summary(reply: &Message) -> Summary {
    let text = |record: &Record| record.to_string().to_ascii_lowercase();
    let mut answers: Vec<String> = reply.answers.iter().map(text).collect();
    answers.sort();
    let mut authority: Vec<String> = reply
        .authorities
        .iter()
        .map(|record| {
            format!(
                "{} {}",
                record.name.to_string().to_ascii_lowercase(),
                record.record_type()
            )
        })
        .collect();
    authority.sort();
    Summary {
        rcode: reply.metadata.response_code.to_string(),
        authoritative: reply.metadata.authoritative,
        answers,
        authority,
    }
}

/// One question over UDP with EDNS (1232 bytes: no answer here comes near it).
fn ask(server: SocketAddr, name: &str, rtype: RecordType, timeout: Duration) -> Option<Message> {
    let message = query(name, rtype, Some(1232));
    let bytes = message.to_vec().ok()?;
    let reply = udp_raw_timeout(server, &bytes, timeout)?;
    Message::from_vec(&reply).ok()
}

/// The question names: every owner and empty non-terminal, names below each wildcard at depths
/// one to three, below empty non-terminals, below the pool and its members, below the
/// delegation, and names that exist nowhere. Deterministic: a fixed-seed generator picks labels.
fn question_names() -> Vec<String> {
    let mut seed: u64 = 0x5eed_2026;
    let mut label = move || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        format!("q{}", (seed >> 33) % 10_000)
    };
    let mut relative: Vec<String> = [
        "@",
        "ns1",
        "mail",
        "www",
        "deep",
        "c.deep",
        "b.c.deep",
        "a.b.c.deep",
        "*.deep",
        "ent",
        "f.ent",
        "e.f.ent",
        "cn",
        "chain",
        "out",
        "host.out",
        "lit.ent",
        "*.lit.ent",
        "sib.lit.ent",
        "x.*.lit.ent",
        "x.sib.lit.ent",
        "*",
        "x.*",
        "sub",
        "ns.sub",
        "api",
        "cp1.api",
        "cp2.api",
        "_tcp.api",
        "_https._tcp.api",
        "_http._tcp.api",
    ]
    .map(String::from)
    .to_vec();
    let parents = [
        "",
        "deep",
        "c.deep",
        "b.c.deep",
        "ent",
        "f.ent",
        "cn",
        "chain",
        "out",
        "host.out",
        "lit.ent",
        "*.lit.ent",
        "sub",
        "api",
        "cp1.api",
        "www",
        "mail",
    ];
    for parent in parents {
        for depth in 1..=3 {
            let mut name: Vec<String> = (0..depth).map(|_| label()).collect();
            if !parent.is_empty() {
                name.push(parent.to_string());
            }
            relative.push(name.join("."));
        }
    }
    relative
        .into_iter()
        .map(|name| match name.as_str() {
            "@" => ORIGIN.to_string(),
            _ => format!("{name}.{ORIGIN}"),
        })
        .collect()
}

#[test]
#[cfg_attr(
    not(apidns_has_knotd),
    ignore = "needs knotd: apt-get install knot, then cargo test --test it wildcards::"
)]
fn wildcard_answers_match_knot() {
    let knot = Knot::start(&master_file());
    let mut spec = ServerSpec::zone(&apidns_zone());
    spec.zones = vec![("wild.test.toml".to_string(), apidns_zone())];
    let apidns = TestServer::start(spec);
    let apidns_address = apidns.addresses[0];

    let types = [
        RecordType::A,
        RecordType::AAAA,
        RecordType::TXT,
        RecordType::MX,
        RecordType::CNAME,
        RecordType::SRV,
        RecordType::NS,
        RecordType::ANY,
    ];
    let mut compared = 0;
    let mut differences = Vec::new();
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for name in question_names() {
        for rtype in types {
            let timeout = Duration::from_secs(3);
            let ours = ask(apidns_address, &name, rtype, timeout)
                .unwrap_or_else(|| panic!("apidns did not answer {name} {rtype}"));
            let theirs = ask(knot.address, &name, rtype, timeout)
                .unwrap_or_else(|| panic!("knotd did not answer {name} {rtype}"));
            let (mut ours, mut theirs) = (summary(&ours), summary(&theirs));
            if rtype == RecordType::ANY {
                // ANY at a CNAME: apidns follows the chain, as for every type but CNAME (its
                // behaviour with or without wildcards); Knot stops at the CNAME. Compare the
                // records at the question's name.
                let owner = format!("{} ", name.to_ascii_lowercase());
                for side in [&mut ours, &mut theirs] {
                    side.answers.retain(|record| record.starts_with(&owner));
                }
            }
            compared += 1;
            let kind = match (ours.rcode.as_str(), ours.answers.is_empty()) {
                ("No Error", true) if ours.authoritative => "NODATA",
                ("No Error", true) => "referral",
                ("No Error", false) => "answer",
                (other, _) => other,
            };
            *outcomes.entry(kind.to_string()).or_default() += 1;
            if ours != theirs {
                differences.push(format!(
                    "{name} {rtype}:\n  apidns: {ours:?}\n  knotd:  {theirs:?}"
                ));
            }
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {compared} answers differ from Knot's:\n{}",
        differences.len(),
        differences.join("\n")
    );
    // The questions must reach every outcome, or the comparison proves little.
    for kind in ["answer", "NODATA", "referral", "Non-Existent Domain"] {
        assert!(
            outcomes.get(kind).is_some_and(|&count| count >= 5),
            "too few {kind} outcomes: {outcomes:?}"
        );
    }
    assert!(compared >= 300, "only {compared} questions compared");
}

/// The fast path answers NXDOMAIN only where no wildcard stands in: a synthesized name goes to
/// the general path, which answers it; a name that really does not exist keeps its fast NXDOMAIN.
#[test]
fn the_fast_path_leaves_synthesized_names_to_the_general_path() {
    let config = testkit::snapshot::config(
        testkit::zones::SNAPSHOT_MAIN,
        &[("wild.test.toml", &apidns_zone())],
    );
    let snapshot = testkit::snapshot::all_up(&config);
    let mut buffer = Vec::new();
    for (name, rtype, synthesized) in [
        ("nope.wild.test.", RecordType::A, true),
        ("a.b.nope.wild.test.", RecordType::A, true),
        ("x.deep.wild.test.", RecordType::AAAA, true),
        ("x.cn.wild.test.", RecordType::A, true),
        ("x.www.wild.test.", RecordType::A, false),
        ("x.c.deep.wild.test.", RecordType::A, false),
        ("x.f.ent.wild.test.", RecordType::AAAA, false),
        ("x.api.wild.test.", RecordType::A, false),
        ("x.cp1.api.wild.test.", RecordType::A, false),
    ] {
        let bytes = query(name, rtype, Some(1232)).to_vec().expect("encode");
        let fast = fast::answer(&snapshot, &bytes, Transport::Udp, 1232, &mut buffer)
            .map(|reply| reply.rcode);
        let general =
            respond_general(&snapshot, &bytes, Transport::Udp, 1232).expect("a general answer");
        let general = Message::from_vec(&general.bytes).expect("a parsable answer");
        if synthesized {
            assert_eq!(fast, None, "{name} {rtype}: the fast path must not answer");
            assert_eq!(
                general.metadata.response_code,
                ResponseCode::NoError,
                "{name}"
            );
            assert!(!general.answers.is_empty(), "{name} {rtype}: synthesized");
        } else {
            assert_eq!(fast, Some(ResponseCode::NXDomain), "{name} {rtype}");
            assert_eq!(
                general.metadata.response_code,
                ResponseCode::NXDomain,
                "{name}"
            );
        }
    }
}

/// `*` makes a wildcard only as the leftmost label of a record's name; a wildcard owns no NS
/// records; pool and member names stay plain names.
#[test]
fn the_configuration_takes_wildcards_only_where_they_mean_one() {
    let (_, probe) = apidns::config::parse_main_text(
        std::path::Path::new("/etc/apidns/apidns.toml"),
        testkit::zones::SNAPSHOT_MAIN,
    )
    .expect("main");
    let parse = |record: &str, pool: &str| {
        let text = format!("{}{pool}", testkit::zones::zone_with_records(&[record]));
        apidns::config::parse_zone_text(std::path::Path::new("zones/z.toml"), &text, &probe, 1)
            .map(|zone| {
                zone.records
                    .iter()
                    .map(|record| record.name.to_string())
                    .collect::<Vec<_>>()
            })
            .map_err(|error| error.to_string())
    };
    for (name, owner) in [
        ("*", "*.k8s.example.com."),
        ("*.dev", "*.dev.k8s.example.com."),
        ("*.dev.k8s.example.com.", "*.dev.k8s.example.com."),
    ] {
        let owners = parse(
            &format!("{{ name = \"{name}\", type = \"A\", value = \"192.0.2.1\" }}"),
            "",
        )
        .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert!(owners.iter().any(|o| o == owner), "{name}: {owners:?}");
    }
    for (record, pool, expected) in [
        (
            "{ name = \"a.*\", type = \"A\", value = \"192.0.2.1\" }",
            "",
            "only as the leftmost label",
        ),
        (
            "{ name = \"*.*\", type = \"A\", value = \"192.0.2.1\" }",
            "",
            "only as the leftmost label",
        ),
        (
            "{ name = \"*.dev\", type = \"NS\", value = \"ns1\" }",
            "",
            "cannot own NS records",
        ),
        (
            "{ name = \"*.other.example.\", type = \"A\", value = \"192.0.2.1\" }",
            "",
            "outside the zone",
        ),
        (
            "{ name = \"www\", type = \"A\", value = \"192.0.2.1\" }",
            "\n[pool.\"*\"]\nmembers = [\"192.0.2.10\"]\n",
            "wildcard",
        ),
        (
            "{ name = \"www\", type = \"A\", value = \"192.0.2.1\" }",
            "\n[pool.api]\nmembers = [{ name = \"*\", address = \"192.0.2.10\" }]\n",
            "not a host name",
        ),
        (
            "{ name = \"www\", type = \"A\", value = \"192.0.2.1\" }",
            "\n[pool.api]\nsrv = \"*\"\nmembers = [\"192.0.2.10\"]\n",
            "not a service label",
        ),
    ] {
        let error = parse(record, pool).expect_err(&format!("{record}{pool}"));
        assert!(error.contains(expected), "{record}{pool}: {error}");
    }
}
