//! What the `respond_*` targets share, from the test kit (`testkit/`, built without its servers):
//! a realistic snapshot, and the checks every reply passes (the property tests use the same).

use apidns::dns::Transport;
use testkit::reply::{MAX_UDP_PAYLOAD, check_reply};

/// Answers `query` from the kit's richest snapshot and checks what every reply must be.
pub fn check_respond(query: &[u8], transport: Transport) {
    if let Err(failure) = check_reply(testkit::snapshot::rich(), query, transport, MAX_UDP_PAYLOAD)
    {
        panic!("{failure}");
    }
}
