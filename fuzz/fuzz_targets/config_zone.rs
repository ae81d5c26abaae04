//! Arbitrary text as a zone file: the parser returns a zone or a located error and never panics,
//! and a zone it accepts builds into a snapshot that answers a few questions.
#![no_main]

use std::path::Path;

use apidns::config::{ProbeSettings, parse_zone_text};
use hickory_proto::rr::RecordType;
use libfuzzer_sys::fuzz_target;

mod zone_answers;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let probe = ProbeSettings::default();
    let zone = match parse_zone_text(Path::new("zones/fuzz.toml"), &text, &probe, 1) {
        Ok(zone) => zone,
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };
    zone_answers::check_zone_answers(
        zone,
        &[
            RecordType::A,
            RecordType::NS,
            RecordType::ANY,
            RecordType::TXT,
        ],
    );
});
