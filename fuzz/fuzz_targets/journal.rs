//! Arbitrary text as the update journal: reading it never panics; damage is reported with the
//! line (or, for a file cut short, the entry) where reading stopped, after keeping the entries
//! before it; and the entries read, written out again, read back equal and undamaged.
#![no_main]

use std::path::PathBuf;

use apidns::update::journal::{Journal, render};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The server reads the journal with `read_to_string`: text that is not UTF-8 is refused
    // whole, before the parser sees it.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let journal = Journal::parse(Some(PathBuf::from("/var/lib/apidns/journal")), text);
    if let Some(damage) = &journal.damage {
        assert!(
            damage.starts_with("/var/lib/apidns/journal: "),
            "the damage names the file: {damage}"
        );
        let lines = text.split('\n').count();
        if let Some(rest) = damage.strip_prefix("/var/lib/apidns/journal: line ") {
            let number: usize = rest
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|digits| digits.parse().ok())
                .unwrap_or_else(|| panic!("a line number: {damage}"));
            assert!(
                (1..=lines).contains(&number),
                "line {number} of {lines}: {damage}"
            );
            if let Some(entry) = rest.split(" (entry ").nth(1) {
                let entry: usize = entry
                    .split(')')
                    .next()
                    .and_then(|digits| digits.parse().ok())
                    .unwrap_or_else(|| panic!("an entry number: {damage}"));
                assert_eq!(entry, journal.entries.len() + 1, "{damage}");
            }
        } else {
            let expected = format!(
                "/var/lib/apidns/journal: truncated after entry {} ",
                journal.entries.len()
            );
            assert!(
                damage.starts_with(&expected),
                "a line or entry number: {damage}"
            );
        }
    }
    let again = Journal::parse(None, &render(&journal.entries));
    assert_eq!(
        again.damage, None,
        "the entries read, rewritten, read back whole"
    );
    assert_eq!(again.entries, journal.entries);
});
