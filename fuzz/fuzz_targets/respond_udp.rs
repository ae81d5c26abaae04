//! Arbitrary bytes as a UDP message: `respond` never panics, and any reply is a parsable response
//! with the query's ID, no larger than the client accepts. The message also goes where the
//! server's edge sends it (an UPDATE to `apidns::update`), and that answer, whatever its
//! response code, keeps to the same limit.
#![no_main]

mod common;

use apidns::dns::{Transport, size_limit};
use apidns::server::dispatch::{Route, route};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::check_respond(data, Transport::Udp);
    if route(data) == Route::Update {
        // As the listener does: an update's answer carries no OPT, so 512 bytes over UDP.
        let limit = size_limit(Transport::Udp, None, common::MAX_UDP_PAYLOAD);
        let reply = apidns::update::answer_without_writer(&[], data, limit);
        assert!(
            reply.bytes.len() <= 512,
            "{} bytes: {}",
            reply.bytes.len(),
            reply.rcode
        );
        assert!(
            reply.bytes.len() <= common::udp_limit(data).unwrap_or(512),
            "{} bytes: {}",
            reply.bytes.len(),
            reply.rcode
        );
        assert_eq!(
            reply.bytes.get(..2),
            data.get(..2),
            "the reply's ID is the update's"
        );
    }
});
