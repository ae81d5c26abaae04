//! Arbitrary text as a main configuration file: the parser returns settings or a located error,
//! and never panics.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match apidns::config::parse_main_text(Path::new("/etc/apidns/apidns.toml"), &text) {
        Ok((server, _probe)) => assert!(!server.listen.is_empty()),
        Err(error) => {
            let _ = error.to_string();
        }
    }
});
