//! Arbitrary bytes as the files apidns reads back from `state_dir` at startup: the first byte
//! chooses which (even: the transfer history, `apidns::transfer::history::decode`; odd: a
//! pool's discovered members, `apidns::discover::state::parse`), the rest is the file. Reading
//! never panics, and what reads, written out again (`encode`, `render`), reads back the same.
#![no_main]

use apidns::discover::state;
use apidns::transfer::history;
use libfuzzer_sys::fuzz_target;

fn transfer_history(bytes: &[u8]) {
    let Some(versions) = history::decode(bytes) else {
        return;
    };
    let written = history::encode(&versions);
    let again = history::decode(&written).expect("what was read, written, reads back");
    assert_eq!(again, versions);
    // Encoding is deterministic for the same versions up to the map's order: a second round
    // gives bytes of the same length.
    assert_eq!(history::encode(&again).len(), written.len());
}

fn discovered(bytes: &[u8]) {
    // The server reads the file with `read_to_string`: text that is not UTF-8 is refused whole.
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let Ok(addresses) = state::parse(text) else {
        return;
    };
    let written = state::render(&addresses);
    assert_eq!(
        state::parse(&written).as_ref(),
        Ok(&addresses),
        "what was read, written, reads back"
    );
    assert_eq!(
        written.lines().count(),
        addresses.len(),
        "one address a line"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, file)) = data.split_first() else {
        return;
    };
    if kind % 2 == 0 {
        transfer_history(file);
    } else {
        discovered(file);
    }
});
