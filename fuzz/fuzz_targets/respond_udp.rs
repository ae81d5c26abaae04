//! Arbitrary bytes as a UDP query: `respond` never panics, and any reply is a parsable response
//! with the query's ID, no larger than the client accepts.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::check_respond(data, apidns::dns::Transport::Udp);
});
