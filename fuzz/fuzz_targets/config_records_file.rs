//! Arbitrary bytes as a zone's `records_file` (an RFC 1035 master file), read through the zone
//! loader as `apidns check` and a reload read it: the loader returns a zone or an error naming
//! the file and line, never panics, and a zone it accepts builds into a snapshot that answers.
//!
//! The loader reads the file from disk (it resolves `$INCLUDE` beside it), so each input is
//! written to a directory of its own with one file to include, `extra.inc`. Inputs that could
//! `$INCLUDE` a file outside that directory (an absolute path, `..`) are skipped: the fuzzer
//! must not read the machine's files, and a device such as /dev/zero would never end.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use apidns::config::{ProbeSettings, parse_zone_text};
use hickory_proto::rr::RecordType;
use libfuzzer_sys::fuzz_target;

mod zone_answers;

/// The zone's TOML: the file gives the SOA; a pool checks the file's names against pool names.
const ZONE_TOML: &str = "origin = \"k8s.example.com.\"\nrecords_file = \"fuzz.zone\"\n\
[pool.api]\nmembers = [\"192.0.2.10\", \"192.0.2.11\"]\n";

/// A file the input may `$INCLUDE`.
const INCLUDED: &str = "inc A 192.0.2.19\ninc TXT \"included\"\n";

/// The directory of this process's inputs, made once.
fn directory() -> &'static PathBuf {
    static DIRECTORY: OnceLock<PathBuf> = OnceLock::new();
    DIRECTORY.get_or_init(|| {
        let directory =
            std::env::temp_dir().join(format!("apidns-fuzz-records-{}", std::process::id()));
        std::fs::create_dir_all(&directory).expect("a temporary directory");
        std::fs::write(directory.join("extra.inc"), INCLUDED).expect("the included file");
        directory
    })
}

/// Whether an `$INCLUDE` in `text` could name a file outside the input's directory.
fn may_leave_directory(text: &str) -> bool {
    text.to_ascii_lowercase().contains("$include") && (text.contains('/') || text.contains(".."))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        // The loader reads the file as UTF-8 and reports anything else as unreadable.
        return;
    };
    if may_leave_directory(text) {
        return;
    }
    let directory = directory();
    std::fs::write(directory.join("fuzz.zone"), text).expect("write the zone file");
    let probe = ProbeSettings::default();
    let zone = match parse_zone_text(&directory.join("fuzz.toml"), ZONE_TOML, &probe, 1) {
        Ok(zone) => zone,
        Err(error) => {
            let message = error.to_string();
            // An error in the zone file names one of its lines (or the line after the last).
            if let (true, Some((line, _))) = (error.file.ends_with("fuzz.zone"), error.position) {
                let lines = text.lines().count().max(1);
                assert!(
                    line >= 1 && line <= lines + 1,
                    "line {line} of a {lines}-line file: {message}"
                );
            }
            return;
        }
    };
    zone_answers::check_zone_answers(
        zone,
        &[
            RecordType::A,
            RecordType::SOA,
            RecordType::ANY,
            RecordType::TXT,
        ],
    );
});
