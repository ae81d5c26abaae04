//! Differential test of the fast path: for many query shapes, whenever the fast path answers,
//! its message equals the general path's (header, question, records in rotation order, OPT);
//! and it does answer the shapes it exists for.

use apidns::dns::{Transport, fast, respond_general};
use hickory_proto::op::Message;
use hickory_proto::rr::{RData, Record};

/// A query's OPT record: (payload size, version, DO bit, options RDATA).
type Opt = (u16, u8, bool, Vec<u8>);

/// A query in wire format with the given pieces.
struct Shape {
    name: Vec<u8>,
    qtype: u16,
    qclass: u16,
    flags: [u8; 2],
    edns: Option<Opt>,
    counts: Option<[u16; 4]>,
    trailing: Vec<u8>,
}

impl Shape {
    fn new(name: &str, qtype: u16) -> Self {
        Self {
            name: wire(name),
            qtype,
            qclass: 1,
            flags: [0x01, 0x00],
            edns: None,
            counts: None,
            trailing: Vec::new(),
        }
    }

    fn bytes(&self, id: u16) -> Vec<u8> {
        let ar = u16::from(self.edns.is_some());
        let [qd, an, ns, arc] = self.counts.unwrap_or([1, 0, 0, ar]);
        let mut out = id.to_be_bytes().to_vec();
        out.extend_from_slice(&self.flags);
        for count in [qd, an, ns, arc] {
            out.extend_from_slice(&count.to_be_bytes());
        }
        out.extend_from_slice(&self.name);
        out.extend_from_slice(&self.qtype.to_be_bytes());
        out.extend_from_slice(&self.qclass.to_be_bytes());
        if let Some((payload, version, dnssec_ok, options)) = &self.edns {
            out.push(0);
            out.extend_from_slice(&41u16.to_be_bytes());
            out.extend_from_slice(&payload.to_be_bytes());
            out.extend_from_slice(&[0, *version, if *dnssec_ok { 0x80 } else { 0 }, 0]);
            out.extend_from_slice(&(options.len() as u16).to_be_bytes());
            out.extend_from_slice(options);
        }
        out.extend_from_slice(&self.trailing);
        out
    }
}

fn wire(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

fn shapes() -> Vec<Shape> {
    let names = [
        "api.k8s.example.com.",
        "API.K8s.Example.COM.",
        "two.k8s.example.com.",
        "v4only.k8s.example.com.",
        "empty.k8s.example.com.",
        "big.k8s.example.com.",
        "x.sub.k8s.example.com.",
        "www.k8s.example.com.",
        "alias.k8s.example.com.",
        "nope.k8s.example.com.",
        "NoPe.K8s.Example.COM.",
        "a.b.nope.k8s.example.com.",
        "_tcp.api.k8s.example.com.",
        "y.sub.k8s.example.com.",
        "k8s.example.com.",
        "api.example.org.",
        "_https._tcp.api.k8s.example.com.",
    ];
    let types = [1u16, 28, 33, 255, 5, 16, 6];
    let edns_variants: Vec<Option<Opt>> = vec![
        None,
        Some((1232, 0, false, vec![])),
        Some((4096, 0, true, vec![])),
        Some((100, 0, false, vec![])),
        Some((1232, 1, false, vec![])),
        // A client cookie (code 10, 8 bytes), padding (12), keepalive (11, empty).
        Some((
            1232,
            0,
            false,
            [&[0, 10, 0, 8][..], &[1, 2, 3, 4, 5, 6, 7, 8]].concat(),
        )),
        Some((1232, 0, false, vec![0, 12, 0, 2, 0, 0, 0, 11, 0, 0])),
        // Client subnet, NSID, and a truncated option.
        Some((1232, 0, false, vec![0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2])),
        Some((1232, 0, false, vec![0, 3, 0, 0])),
        Some((1232, 0, false, vec![0, 10, 0, 8, 1])),
    ];
    let mut shapes = Vec::new();
    for name in names {
        for qtype in types {
            for edns in &edns_variants {
                let mut shape = Shape::new(name, qtype);
                shape.edns = edns.clone();
                shapes.push(shape);
            }
        }
    }
    let api = "api.k8s.example.com.";
    let mut odd = Vec::new();
    for flags in [
        [0x00, 0x00],
        [0x01, 0x10],
        [0x01, 0x20],
        [0x03, 0x00],
        [0x81, 0x00],
        [0x11, 0x00],
        [0x29, 0x00],
        [0x01, 0x0F],
    ] {
        let mut shape = Shape::new(api, 1);
        shape.flags = flags;
        odd.push(shape);
    }
    for qclass in [3u16, 255, 254] {
        let mut shape = Shape::new(api, 1);
        shape.qclass = qclass;
        odd.push(shape);
    }
    for counts in [
        [0, 0, 0, 0],
        [2, 0, 0, 0],
        [1, 1, 0, 0],
        [1, 0, 1, 0],
        [1, 0, 0, 1],
        [1, 0, 0, 2],
    ] {
        let mut shape = Shape::new(api, 1);
        shape.counts = Some(counts);
        odd.push(shape);
    }
    let mut trailing = Shape::new(api, 1);
    trailing.trailing = vec![0xde, 0xad];
    odd.push(trailing);
    let mut pointer = Shape::new(api, 1);
    pointer.name = vec![3, b'a', b'p', b'i', 0xC0, 0x0C];
    odd.push(pointer);
    let mut long = Shape::new(api, 1);
    long.name = [vec![64], vec![b'a'; 64], wire("k8s.example.com.")].concat();
    odd.push(long);
    shapes.extend(odd);
    shapes
}

/// The answer records as comparable text, lower-cased owner names.
fn records(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {} {}",
                r.name.to_lowercase(),
                r.ttl,
                r.dns_class,
                r.record_type(),
                r.data
            )
        })
        .collect()
}

/// `later` is `earlier` one step further along the rotation: equal for a single record, else
/// every record but the first of `earlier` comes first in `later`, in order.
pub(crate) fn is_shifted_by_one(earlier: &[String], later: &[String]) -> bool {
    let mut distinct = earlier.to_vec();
    distinct.sort();
    distinct.dedup();
    if earlier.len() <= 1 || distinct.len() == 1 {
        return earlier == later;
    }
    earlier[1..] == later[..later.len() - 1]
}

#[test]
fn fast_answers_equal_general_answers() {
    let snapshot = testkit::snapshot::fast_path();
    let mut answered = 0;
    let mut buffer = Vec::new();
    for (index, shape) in shapes().iter().enumerate() {
        for transport in [Transport::Udp, Transport::Tcp] {
            let query = shape.bytes(index as u16);
            let Some(_) = fast::answer(&snapshot, &query, transport, 1232, &mut buffer) else {
                continue;
            };
            answered += 1;
            let general = respond_general(&snapshot, &query, transport, 1232)
                .expect("the general path answers what the fast path answers");
            let fast_message = Message::from_vec(&buffer).expect("fast answer parses");
            let general_message = Message::from_vec(&general.bytes).expect("general answer parses");
            let context = format!("shape {index} over {transport:?}: {:02x?}", query);
            assert_eq!(fast_message.metadata, general_message.metadata, "{context}");
            assert_eq!(
                buffer[12..12 + shape.name.len() + 4],
                general.bytes[12..12 + shape.name.len() + 4],
                "question echoed byte for byte: {context}"
            );
            let (fast_records, general_records) = (
                records(&fast_message.answers),
                records(&general_message.answers),
            );
            // The general path answered right after the fast path, so its window starts one
            // member further along the same cycle.
            assert_eq!(fast_records.len(), general_records.len(), "{context}");
            assert!(
                is_shifted_by_one(&fast_records, &general_records),
                "{context}\nfast {fast_records:?}\ngeneral {general_records:?}"
            );
            assert_eq!(
                records(&fast_message.authorities),
                records(&general_message.authorities),
                "{context}"
            );
            assert_eq!(
                fast_message.additionals, general_message.additionals,
                "{context}"
            );
            assert_eq!(fast_message.edns, general_message.edns, "{context}");
            // A negative answer writes the SOA's names whole, so only records are compared.
            assert!(
                !fast_message.authorities.is_empty() || buffer.len() <= general.bytes.len(),
                "compression never makes it longer: {context}"
            );
        }
    }
    // The shapes it exists for: A and AAAA at pools with live members, with and without EDNS,
    // any letter case, cookies and padding (over UDP and TCP).
    assert!(answered >= 60, "fast path answered only {answered} shapes");
}

#[test]
fn fast_path_answers_the_common_shapes_and_declines_the_rest() {
    let snapshot = testkit::snapshot::fast_path();
    let mut buffer = Vec::new();
    let mut ask = |shape: &Shape, transport| {
        fast::answer(&snapshot, &shape.bytes(1), transport, 1232, &mut buffer).is_some()
    };
    assert!(ask(&Shape::new("api.k8s.example.com.", 1), Transport::Udp));
    assert!(ask(&Shape::new("ApI.k8S.example.com.", 28), Transport::Udp));
    let mut edns = Shape::new("api.k8s.example.com.", 1);
    edns.edns = Some((1232, 0, true, [&[0, 10, 0, 8][..], &[9; 8]].concat()));
    assert!(
        ask(&edns, Transport::Udp),
        "a resolver's query with a cookie"
    );
    // Negative answers: NODATA at a pool name, NXDOMAIN in a served zone.
    assert!(ask(
        &Shape::new("v4only.k8s.example.com.", 28),
        Transport::Udp
    ));
    assert!(ask(
        &Shape::new("empty.k8s.example.com.", 1),
        Transport::Udp
    ));
    assert!(ask(&Shape::new("NOPE.k8s.example.com.", 1), Transport::Udp));
    assert!(ask(
        &Shape::new("a.nope.k8s.example.com.", 28),
        Transport::Udp
    ));
    // Declined: names outside every zone, names that exist without being pools (static data,
    // an empty non-terminal), names below a delegation, other types, truncation, EDNS
    // version 1, CNAME, referral.
    assert!(!ask(&Shape::new("api.example.org.", 1), Transport::Udp));
    assert!(!ask(
        &Shape::new("_tcp.api.k8s.example.com.", 1),
        Transport::Udp
    ));
    assert!(!ask(
        &Shape::new("y.sub.k8s.example.com.", 1),
        Transport::Udp
    ));
    assert!(!ask(
        &Shape::new("nope.k8s.example.com.", 16),
        Transport::Udp
    ));
    assert!(!ask(&Shape::new("www.k8s.example.com.", 1), Transport::Udp));
    assert!(!ask(
        &Shape::new("alias.k8s.example.com.", 1),
        Transport::Udp
    ));
    assert!(!ask(
        &Shape::new("x.sub.k8s.example.com.", 1),
        Transport::Udp
    ));
    assert!(
        !ask(&Shape::new("big.k8s.example.com.", 1), Transport::Udp),
        "60 records need TC"
    );
    assert!(ask(&Shape::new("big.k8s.example.com.", 1), Transport::Tcp));
    let mut badvers = Shape::new("api.k8s.example.com.", 1);
    badvers.edns = Some((1232, 1, false, vec![]));
    assert!(!ask(&badvers, Transport::Udp));
}

#[test]
fn rotation_is_shared_with_the_general_path() {
    let snapshot = testkit::snapshot::fast_path();
    let mut buffer = Vec::new();
    let query = Shape::new("api.k8s.example.com.", 1).bytes(9);
    let mut firsts = Vec::new();
    for round in 0..6 {
        let first = if round % 2 == 0 {
            fast::answer(&snapshot, &query, Transport::Udp, 1232, &mut buffer).unwrap();
            Message::from_vec(&buffer).unwrap().answers[0].data.clone()
        } else {
            let reply = respond_general(&snapshot, &query, Transport::Udp, 1232).unwrap();
            Message::from_vec(&reply.bytes).unwrap().answers[0]
                .data
                .clone()
        };
        firsts.push(match first {
            RData::A(a) => a.0.to_string(),
            other => panic!("{other:?}"),
        });
    }
    assert_eq!(
        firsts,
        [
            "192.0.2.10",
            "192.0.2.11",
            "192.0.2.12",
            "192.0.2.10",
            "192.0.2.11",
            "192.0.2.12"
        ],
        "one counter per pool and family, whichever path answers"
    );
}
