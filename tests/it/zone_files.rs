//! RFC 1035 zone files (`records_file`): served by the real binary over UDP, errors with file and
//! line from `apidns check`, a bad file at reload keeping the old data, and a differential test
//! against BIND's `named-checkzone` over a corpus of valid and invalid files.

use std::path::Path;
use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use testkit::client::{a_sorted, query, udp};
use testkit::server::{TempDir, TestServer, binary};

const ORIGIN: &str = "k8s.example.com.";

/// A zone file's first lines: TTL, SOA (across lines, with comments), NS and its address.
const HEAD: &str = "$TTL 300
@   IN SOA ns1 hostmaster.example.com. (
           2026113001 ; serial
           3600 600 604800 5 )
    IN NS ns1
ns1 IN A  192.0.2.53
";

/// One corpus case: a zone file for `k8s.example.com.` (and files it `$INCLUDE`s).
struct Case {
    name: &'static str,
    text: &'static str,
    includes: &'static [(&'static str, &'static str)],
}

const fn case(name: &'static str, text: &'static str) -> Case {
    Case {
        name,
        text,
        includes: &[],
    }
}

/// Files both BIND and apidns load.
const VALID: &[Case] = &[
    case("head only", ""),
    case(
        "wildcards",
        "*.apps A 192.0.2.80\n*.apps TXT \"any app\"\n* MX 10 mail\nmail A 192.0.2.25\n",
    ),
    case(
        "relative names and @",
        "www A 192.0.2.1\n@ TXT apex\nmail.k8s.example.com. A 192.0.2.2\n",
    ),
    case(
        "blank owner continues the last one",
        "www A 192.0.2.1\n    AAAA 2001:db8::1\n    TXT \"hello world\"\n",
    ),
    case(
        "$ORIGIN changes relative names",
        "$ORIGIN sub.k8s.example.com.\nhost A 192.0.2.3\n@ TXT sub-apex\n",
    ),
    case(
        "explicit TTL and class, units",
        "a 60 IN A 192.0.2.4\nb IN 120 A 192.0.2.5\nc 1h A 192.0.2.6\nd 1d2h A 192.0.2.7\n",
    ),
    case(
        "$TTL changes the default",
        "a A 192.0.2.8\n$TTL 42\nb A 192.0.2.9\n",
    ),
    case(
        "TXT strings, escapes and semicolons in quotes",
        "t TXT \"a;b\" \"c\\\"d\" plain\nu TXT \"one\" \"two\" ; end\n",
    ),
    case(
        "MX, SRV, PTR, CAA",
        "@ MX 10 mail\nmail A 192.0.2.10\n_https._tcp SRV 0 5 6443 api\napi A 192.0.2.11\nptr PTR www.example.org.\n@ CAA 0 issue \"letsencrypt.org\"\n",
    ),
    case(
        "CNAME inside and outside the zone",
        "www CNAME api\napi A 192.0.2.12\nout CNAME www.example.org.\n",
    ),
    case(
        "identical records are one",
        "a A 192.0.2.13\na A 192.0.2.13\n",
    ),
    case(
        "an RRset takes its first TTL",
        "a 60 A 192.0.2.14\na 120 A 192.0.2.15\n",
    ),
    case("upper-case names", "WWW A 192.0.2.16\nMixed.Case TXT x\n"),
    case(
        "parentheses inside rdata",
        "@ MX ( 10\n  mx ) ; comment\nmx A 192.0.2.17\n",
    ),
    case("a second NS", "@ NS ns2\nns2 A 192.0.2.54\n"),
    Case {
        name: "$INCLUDE",
        text: "$INCLUDE extra.inc\nafter A 192.0.2.18\n",
        includes: &[("extra.inc", "inc A 192.0.2.19\ninc2 TXT included\n")],
    },
];

/// Files both reject.
const INVALID: &[Case] = &[
    case("bad IPv4 address", "www A 192.0.2\n"),
    case("unknown type", "www FROB 1\n"),
    case("CNAME and other data", "www CNAME api\nwww A 192.0.2.1\n"),
    case(
        "two CNAMEs at one name",
        "www CNAME a\nb A 192.0.2.1\nwww CNAME b\na A 192.0.2.2\n",
    ),
    case("CNAME at the apex", "@ CNAME www.example.org.\n"),
    case("two SOAs", "@ SOA ns1 h.example.com. 2 3 4 5 6\n"),
    case(
        "SOA not at the apex",
        "sub SOA ns1 h.example.com. 2 3 4 5 6\n",
    ),
    case("unclosed parenthesis", "www ( A 192.0.2.1\n"),
    case("class CH", "www CH TXT x\n"),
    case("missing rdata", "www A\n"),
    case("bad TTL", "$TTL forever\nwww A 192.0.2.1\n"),
    case("$INCLUDE of a missing file", "$INCLUDE nowhere.inc\n"),
    case("AAAA with an IPv4 address", "www AAAA 192.0.2.1\n"),
    case("MX without preference", "@ MX mail\n"),
];

/// Files without the usual head, both reject.
const INVALID_WHOLE: &[Case] = &[
    case("no SOA", "$TTL 300\n@ NS ns1\nns1 A 192.0.2.53\n"),
    case(
        "no NS at the apex",
        "$TTL 300\n@ SOA ns1 h.example.com. 1 2 3 4 5\nns1 A 192.0.2.53\n",
    ),
    case(
        "first record has no TTL",
        "@ NS ns1\n$TTL 300\n@ SOA ns1 h.example.com. 1 2 3 4 5\nns1 A 192.0.2.53\n",
    ),
];

/// Where apidns and BIND disagree on purpose: (case, the case is a whole file, which one loads
/// it, why). Keep this list short: each entry is a file an operator may bring that apidns
/// refuses (or a check BIND makes that apidns does not).
const EXPECTED_DIFFERENCES: &[(Case, bool, &str, &str)] = &[
    (
        case("out-of-zone data", "www.example.org. A 192.0.2.1\n"),
        false,
        "BIND",
        "BIND ignores out-of-zone data with a warning; apidns refuses it, as in `records`",
    ),
    (
        case(
            "SOA without a TTL and no $TTL",
            "@ SOA ns1 h.example.com. 1 2 3 4 5\n@ 300 NS ns1\nns1 A 192.0.2.53\n",
        ),
        true,
        "BIND",
        "BIND falls back to the SOA minimum (pre-RFC 2308); hickory's parser wants a TTL",
    ),
    (
        Case {
            name: "$INCLUDE with an origin",
            text: "$INCLUDE extra.inc sub\n",
            includes: &[("extra.inc", "host A 192.0.2.20\n")],
        },
        false,
        "BIND",
        "hickory's parser does not support $INCLUDE's origin argument",
    ),
    (
        case("in-zone NS target without an address", "@ NS ns2\n"),
        false,
        "apidns",
        "BIND checks glue; apidns does not (a pool name can be an NS target, and `records` never checked it)",
    ),
    (
        case(
            "parentheses before the type",
            "p ( 300 IN\n  A 192.0.2.17 )\n",
        ),
        false,
        "BIND",
        "hickory's parser accepts parentheses only in the rdata",
    ),
    (
        case(
            "quoted strings inside parentheses",
            "u TXT ( \"one\"\n  \"two\" )\n",
        ),
        false,
        "BIND",
        "hickory's parser keeps the quotes of strings inside parentheses: apidns refuses them rather than serve other data",
    ),
    (
        case("\\DDD escapes", "t TXT \"\\065\" \\066\n"),
        false,
        "BIND",
        "hickory's parser decodes \\DDD wrongly (quoted) or not at all (TXT words): apidns refuses them rather than serve other data",
    ),
];

/// Writes a zone TOML using `text` as its `records_file` (no `[soa]`: the file's SOA is used).
fn write_zone(dir: &Path, case: &Case, whole: bool) -> std::path::PathBuf {
    let zones = dir.join("zones");
    let text = if whole {
        case.text.to_string()
    } else {
        format!("{HEAD}{}", case.text)
    };
    std::fs::write(zones.join("k8s.zone"), &text).expect("write zone file");
    for (name, included) in case.includes {
        std::fs::write(zones.join(name), included).expect("write included file");
    }
    std::fs::write(
        zones.join("k8s.toml"),
        format!("origin = \"{ORIGIN}\"\nrecords_file = \"k8s.zone\"\n"),
    )
    .expect("write zone toml");
    zones.join("k8s.zone")
}

/// Runs in the zone file's directory: BIND resolves a relative `$INCLUDE` from its working
/// directory (named's `directory`), apidns from the including file's directory.
fn named_checkzone(args: &[&str], file: &Path) -> std::process::Output {
    Command::new("named-checkzone")
        .current_dir(file.parent().expect("the zone file is in a directory"))
        .args(args)
        .arg(ORIGIN)
        .arg(file)
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "named-checkzone cannot run ({error}): this test compares apidns with BIND; install it with `apt-get install bind9-utils`"
            )
        })
}

fn apidns_check(dir: &TempDir) -> std::process::Output {
    let config = dir.write("apidns.toml", "[server]\nlisten = [\"127.0.0.1:0\"]\n");
    Command::new(binary())
        .args(["check", "--config"])
        .arg(config)
        .output()
        .expect("run apidns check")
}

/// (apidns loads it, BIND loads it, what each said).
fn verdicts(case: &Case, whole: bool) -> (bool, bool, String) {
    let dir = TempDir::new("zone-corpus");
    let file = write_zone(dir.path(), case, whole);
    let apidns = apidns_check(&dir);
    let bind = named_checkzone(&[], &file);
    (
        apidns.status.success(),
        bind.status.success(),
        format!(
            "apidns: {}\nBIND: {}",
            String::from_utf8_lossy(&apidns.stderr).trim(),
            String::from_utf8_lossy(&bind.stdout).trim()
        ),
    )
}

#[test]
#[cfg_attr(
    not(apidns_has_named_checkzone),
    ignore = "needs named-checkzone: apt-get install bind9-utils, then cargo test --test it zone_files::"
)]
fn apidns_and_bind_agree_on_which_zone_files_are_valid() {
    let mut disagreements = Vec::new();
    for (cases, whole, valid) in [
        (VALID, false, true),
        (INVALID, false, false),
        (INVALID_WHOLE, true, false),
    ] {
        for case in cases {
            let (apidns, bind, said) = verdicts(case, whole);
            if apidns != valid || bind != valid {
                disagreements.push(format!(
                    "{} (expected {}): apidns {apidns}, BIND {bind}\n{said}",
                    case.name,
                    if valid { "valid" } else { "invalid" }
                ));
            }
        }
    }
    for (case, whole, loads, why) in EXPECTED_DIFFERENCES {
        let (apidns, bind, said) = verdicts(case, *whole);
        let expected = (loads == &"apidns", loads == &"BIND");
        if (apidns, bind) != expected {
            disagreements.push(format!(
                "{} (only {loads} should load it: {why}): apidns {apidns}, BIND {bind}\n{said}",
                case.name
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "apidns and named-checkzone disagree:\n\n{}",
        disagreements.join("\n\n")
    );
}

/// One record as `named-checkzone -D` prints it: `name. TTL IN TYPE rdata`.
struct Printed {
    name: String,
    ttl: u32,
    record_type: RecordType,
    data: RData,
}

fn printed_records(output: &str) -> Vec<Printed> {
    output
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with(';'))
        .map(|line| {
            let mut fields = line.split_whitespace();
            let name = fields.next().expect("owner").to_ascii_lowercase();
            let ttl = fields.next().expect("ttl").parse().expect("numeric ttl");
            assert_eq!(fields.next(), Some("IN"), "{line}");
            let record_type = RecordType::from_str(fields.next().expect("type")).expect("type");
            let rest: Vec<&str> = fields.collect();
            let data = RData::try_from_str(record_type, &rest.join(" "))
                .unwrap_or_else(|error| panic!("BIND's rdata in {line:?}: {error}"));
            Printed {
                name,
                ttl,
                record_type,
                data,
            }
        })
        .collect()
}

/// Names compare without regard to case: BIND prints owners as written.
fn lower_names(data: &RData) -> String {
    data.to_string().to_ascii_lowercase()
}

#[test]
#[cfg_attr(
    not(apidns_has_named_checkzone),
    ignore = "needs named-checkzone: apt-get install bind9-utils, then cargo test --test it zone_files::"
)]
fn every_record_bind_prints_is_answered_as_printed() {
    for case in VALID {
        let dir = TempDir::new("zone-answers");
        let file = write_zone(dir.path(), case, false);
        let bind = named_checkzone(&["-D", "-o", "-"], &file);
        assert!(bind.status.success(), "{}: BIND refuses it", case.name);
        let printed = printed_records(&String::from_utf8_lossy(&bind.stdout));
        assert!(!printed.is_empty(), "{}: BIND printed nothing", case.name);
        let config = dir.write(
            "apidns.toml",
            "[server]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\n",
        );
        let server = TestServer::start_with(dir, config, &[]);
        let mut keys: Vec<(String, RecordType)> = printed
            .iter()
            .map(|record| (record.name.clone(), record.record_type))
            .collect();
        keys.dedup();
        for (name, record_type) in keys {
            let mut expected: Vec<(u32, String)> = printed
                .iter()
                .filter(|record| record.name == name && record.record_type == record_type)
                .map(|record| (record.ttl, lower_names(&record.data)))
                .collect();
            expected.sort();
            let reply = udp(server.addr(), &query(&name, record_type, Some(1232)));
            let mut answered: Vec<(u32, String)> = reply
                .answers
                .iter()
                .filter(|record| {
                    record.record_type() == record_type
                        && record.name.to_ascii().eq_ignore_ascii_case(&name)
                })
                .map(|record| (record.ttl, lower_names(&record.data)))
                .collect();
            answered.sort();
            assert_eq!(
                answered, expected,
                "{}: {name} {record_type} is not answered as named-checkzone -D prints it",
                case.name
            );
        }
    }
}

#[test]
fn check_names_the_zone_file_and_line() {
    let dir = TempDir::new("zone-check");
    let text = "www A 192.0.2.1\nbad ( A\n  192.0.2 )\n";
    write_zone(dir.path(), &case("bad", text), false);
    let output = apidns_check(&dir);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = HEAD.lines().count() + 2;
    assert!(
        stderr.contains(&format!("zones/k8s.zone:{line}:")),
        "names the zone file and the entry's first line: {stderr}"
    );

    let included = Case {
        name: "included",
        text: "www A 192.0.2.1\n$INCLUDE more.inc\n",
        includes: &[("more.inc", "a A 192.0.2.2\nt TXT \"\\065\"\n")],
    };
    write_zone(dir.path(), &included, false);
    let stderr = String::from_utf8_lossy(&apidns_check(&dir).stderr).to_string();
    assert!(
        stderr.contains("zones/more.inc:2:") && stderr.contains("DDD escapes"),
        "a problem in an included file names that file and line: {stderr}"
    );

    let pool = "origin = \"k8s.example.com.\"\nrecords_file = \"k8s.zone\"\n[pool.api]\nmembers = [\"192.0.2.10\"]\n";
    write_zone(dir.path(), &case("pool", "api A 192.0.2.1\n"), false);
    dir.write("zones/k8s.toml", pool);
    let stderr = String::from_utf8_lossy(&apidns_check(&dir).stderr).to_string();
    assert!(
        stderr.contains("pool name api.k8s.example.com. collides with the static A record"),
        "a pool name with an A record in the file: {stderr}"
    );

    write_zone(dir.path(), &case("both SOAs", ""), false);
    dir.write(
        "zones/k8s.toml",
        "origin = \"k8s.example.com.\"\nrecords_file = \"k8s.zone\"\n[soa]\nmname = \"ns1\"\nrname = \"h.example.com.\"\n",
    );
    let stderr = String::from_utf8_lossy(&apidns_check(&dir).stderr).to_string();
    assert!(
        stderr.contains("has an SOA both here and in its records_file"),
        "{stderr}"
    );
}

/// A wildcard from a zone file answers names it covers with the question's name as owner, and
/// `*` elsewhere than the leftmost label, or an NS at a wildcard, is refused with the line.
#[test]
fn wildcards_in_a_zone_file() {
    let dir = TempDir::new("zone-wildcard");
    write_zone(
        dir.path(),
        &case("wildcard", "*.apps A 192.0.2.80\n"),
        false,
    );
    let config = dir.write(
        "apidns.toml",
        "[server]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\n",
    );
    let server = TestServer::start_with(dir, config, &[]);
    let reply = udp(
        server.addr(),
        &query("shop.apps.k8s.example.com.", RecordType::A, Some(1232)),
    );
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    let answers: Vec<String> = reply
        .answers
        .iter()
        .map(|record| format!("{} {}", record.name, record.data))
        .collect();
    assert_eq!(answers, ["shop.apps.k8s.example.com. 192.0.2.80"]);
    drop(server);

    for (text, expected) in [
        ("www.*.apps A 192.0.2.81\n", "only as the leftmost label"),
        ("*.apps NS ns1\n", "cannot own NS records"),
    ] {
        let dir = TempDir::new("zone-wildcard-bad");
        write_zone(dir.path(), &case("bad wildcard", text), false);
        let output = apidns_check(&dir);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{text}: {stderr}");
        let line = HEAD.lines().count() + 1;
        assert!(
            stderr.contains(&format!("zones/k8s.zone:{line}:")) && stderr.contains(expected),
            "{text}: {stderr}"
        );
    }
}

#[test]
fn a_bad_zone_file_at_reload_keeps_the_old_data_and_a_good_one_is_picked_up() {
    let dir = TempDir::new("zone-reload");
    let zone = write_zone(dir.path(), &case("reload", "www A 192.0.2.1\n"), false);
    let config = dir.write(
        "apidns.toml",
        "[server]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\n",
    );
    let server = TestServer::start_with(dir, config, &[]);
    let www = "www.k8s.example.com.";
    assert_eq!(a_sorted(server.addr(), www), ["192.0.2.1"]);

    // Saved in the editor: the file watch reloads, the error names the file and line.
    std::fs::write(&zone, format!("{HEAD}www A 192.0.2.999\n")).expect("write");
    let error = server
        .wait_for_log(Duration::from_secs(10), |l| {
            l.contains("configuration not reloaded")
        })
        .expect("the failed reload is logged");
    let line = HEAD.lines().count() + 1;
    assert!(error.contains(&format!("k8s.zone:{line}:")), "{error}");
    assert_eq!(
        a_sorted(server.addr(), www),
        ["192.0.2.1"],
        "old data served"
    );

    std::fs::write(&zone, format!("{HEAD}www A 192.0.2.2\n")).expect("write");
    server
        .wait_for_log(Duration::from_secs(10), |l| {
            l.contains("configuration reloaded")
        })
        .expect("the fixed file is reloaded by the file watch");
    assert_eq!(a_sorted(server.addr(), www), ["192.0.2.2"]);
}
