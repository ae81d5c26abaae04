//! Arbitrary bytes as a TCP message (no size limit but the message's): `respond` never panics,
//! and any reply is a parsable response with the query's ID. The message also goes where the
//! server's edge sends it (an UPDATE to `apidns::update`), and that answer fits in a TCP message.
#![no_main]

mod common;

use apidns::dns::{Transport, size_limit};
use apidns::server::dispatch::{Route, route};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::check_respond(data, Transport::Tcp);
    if route(data) == Route::Update {
        let limit = size_limit(Transport::Tcp, None, common::MAX_UDP_PAYLOAD);
        let reply = apidns::update::answer_without_writer(&[], data, limit);
        assert!(
            reply.bytes.len() <= usize::from(limit),
            "{} bytes",
            reply.bytes.len()
        );
        assert_eq!(
            reply.bytes.get(..2),
            data.get(..2),
            "the reply's ID is the update's"
        );
    }
});
