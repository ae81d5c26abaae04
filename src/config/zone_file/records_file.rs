//! `records_file = "k8s.example.com.zone"`: a zone's static records from an RFC 1035 master file
//! beside its TOML, read with hickory's zone-file parser (`$ORIGIN`, `$TTL`, `$INCLUDE`,
//! relative names, `@`, parentheses, comments).
//!
//! hickory's parser returns RRsets without positions and its errors carry no line. The line of
//! a problem is found afterwards, only when there is one: the file is cut into entries (an
//! entry ends at a newline outside parentheses and quotes), and the shortest run of whole
//! entries that shows the problem ends at the entry to blame. Runs grow monotonically, so a
//! binary search needs about log2(entries) extra parses, and only on the error path.

use std::path::{Path, PathBuf};

use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinEncodable};
use hickory_proto::serialize::txt::{ParseError, Parser};
use toml::Spanned;

use super::record_data::{long_string, qualify_names, servable_type};
use crate::config::error::{ConfigError, Source};
use crate::config::model::Soa;

/// The records of a zone's master file, checked one by one (the rules between records are
/// checked with the TOML's `records`, in `records.rs`).
pub(super) struct RecordsFile {
    pub path: PathBuf,
    text: String,
    origin: Name,
    /// Every record but the SOA, grouped by RRset.
    pub records: Vec<Record>,
    /// The SOA, when the file has one (at the apex: checked).
    pub soa: Option<Record>,
    /// The file and the files it `$INCLUDE`s: a change to any of them changes the zone.
    pub files: Vec<PathBuf>,
}

/// Reads the `records_file` named in the zone's TOML at `source.path`; a relative path is
/// relative to the TOML file.
pub(super) fn read(
    source: &Source<'_>,
    entry: &Spanned<String>,
    origin: &Name,
) -> Result<RecordsFile, ConfigError> {
    let base = source.path.parent().unwrap_or(Path::new("."));
    let path = base.join(entry.get_ref());
    let text = std::fs::read_to_string(&path).map_err(|error| {
        source.error(
            entry.span(),
            "records_file",
            format!("cannot read {}: {error}", path.display()),
        )
    })?;
    let mut file = RecordsFile {
        files: included_files(&text, &path),
        path,
        text,
        origin: origin.clone(),
        records: Vec::new(),
        soa: None,
    };
    if let Some((line, message)) = unsupported_syntax(&file.text) {
        return Err(file.error(Some(line), message.to_string()));
    }
    // Included files are read again by the parser; one it cannot read is its error to report.
    for included in file.files.iter().skip(1) {
        let Ok(text) = std::fs::read_to_string(included) else {
            continue;
        };
        if let Some((line, message)) = unsupported_syntax(&text) {
            return Err(ConfigError {
                file: included.clone(),
                position: Some((line, 1)),
                field: None,
                message: message.to_string(),
            });
        }
    }
    let rrsets = parse(&file.text, &file.path, origin).map_err(|error| {
        let line = file.first_entry_where(|run| parse(run, &file.path, origin).is_err());
        file.error(line, format!("not a valid zone file: {error}"))
    })?;
    for rrset in rrsets {
        for record in rrset {
            let record = file.check(record)?;
            if record.record_type() == RecordType::SOA {
                file.soa = Some(record);
            } else {
                file.records.push(record);
            }
        }
    }
    file.check_single_cnames()?;
    Ok(file)
}

impl RecordsFile {
    /// hickory keeps only the last of two CNAME records at one name (RFC 2136 replacement
    /// rules), where BIND refuses the zone: find a name whose first CNAME differs from the
    /// kept one. The search costs parses, so it runs only when the text has more entries that
    /// mention CNAME than CNAME records came out.
    fn check_single_cnames(&self) -> Result<(), ConfigError> {
        let cnames: Vec<&Record> = self
            .records
            .iter()
            .filter(|record| record.record_type() == RecordType::CNAME)
            .collect();
        let mentions = entries(&self.text)
            .iter()
            .scan(0, |start, entry| {
                let text = &self.text[*start..entry.end];
                *start = entry.end;
                Some(text)
            })
            .filter(|text| {
                text.lines().any(|line| {
                    line.split(';')
                        .next()
                        .unwrap_or_default()
                        .split_whitespace()
                        .any(|word| word.eq_ignore_ascii_case("CNAME"))
                })
            })
            .count();
        if mentions <= cnames.len() {
            return Ok(());
        }
        for kept in cnames {
            let first = |run: &str| {
                parse(run, &self.path, &self.origin)
                    .ok()
                    .and_then(|rrsets| {
                        rrsets.into_iter().flatten().find(|other| {
                            other.record_type() == RecordType::CNAME
                                && other.name.to_lowercase() == kept.name
                        })
                    })
            };
            let line = self.first_entry_where(|run| first(run).is_some());
            let earlier = line
                .and_then(|line| {
                    entries(&self.text)
                        .into_iter()
                        .find(|e| e.first_line == line)
                })
                .and_then(|entry| first(&self.text[..entry.end]));
            if let Some(earlier) = earlier
                && qualify_names(earlier.data.clone(), &self.origin)
                    .ok()
                    .as_ref()
                    != Some(&kept.data)
            {
                return Err(self.error_at(
                    kept,
                    format!(
                        "{} has two CNAME records (the first on line {}); a name has at most one",
                        kept.name,
                        line.unwrap_or_default()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The zone's SOA from the file, when it has one.
    pub(super) fn soa(&self) -> Result<Option<Soa>, ConfigError> {
        let Some(record) = &self.soa else {
            return Ok(None);
        };
        let RData::SOA(soa) = &record.data else {
            return Ok(None);
        };
        let non_negative = |value: i32, field: &str| {
            u32::try_from(value)
                .map_err(|_| self.error_at(record, format!("the SOA {field} {value} is negative")))
        };
        Ok(Some(Soa {
            mname: soa.mname.to_lowercase(),
            rname: soa.rname.to_lowercase(),
            serial: soa.serial,
            refresh: non_negative(soa.refresh, "refresh")?,
            retry: non_negative(soa.retry, "retry")?,
            expire: non_negative(soa.expire, "expire")?,
            minimum: soa.minimum,
            ttl: record.ttl,
        }))
    }

    /// An error about `record`, at the line of the entry that wrote it.
    pub(super) fn error_at(&self, record: &Record, message: impl Into<String>) -> ConfigError {
        let line = self.first_entry_where(|run| {
            parse(run, &self.path, &self.origin).is_ok_and(|rrsets| {
                rrsets.iter().flatten().any(|other| {
                    other.name.to_lowercase() == record.name
                        && other.record_type() == record.record_type()
                        && qualify_names(other.data.clone(), &self.origin)
                            .ok()
                            .as_ref()
                            == Some(&record.data)
                })
            })
        });
        self.error(line, message.into())
    }

    /// One record on its own: class IN, inside the zone, `*` only as a wildcard's leftmost label
    /// (and no NS there), a type apidns serves
    /// statically, the SOA only at the apex. Names come out lower case.
    fn check(&self, record: Record) -> Result<Record, ConfigError> {
        let origin = &self.origin;
        let name = record.name.to_lowercase();
        let record_type = record.record_type();
        let problem = if record.dns_class != DNSClass::IN {
            Some(format!(
                "{name} {record_type} is in class {}; apidns serves class IN only",
                record.dns_class
            ))
        } else if !origin.zone_of(&name) {
            Some(format!("{name} is outside the zone {origin}"))
        } else if name.iter().skip(1).any(|label| label == b"*") {
            // The same rules as for `records` (records.rs, parse_owner and the NS check).
            Some(format!(
                "{name}: `*` makes a wildcard only as the leftmost label"
            ))
        } else if name.iter().next() == Some(&b"*"[..]) && record_type == RecordType::NS {
            Some(format!(
                "{name} is a wildcard: it cannot own NS records (RFC 4592 §4.2)"
            ))
        } else if record_type == RecordType::SOA && &name != origin {
            Some(format!(
                "the SOA record must be at the zone apex {origin}, not at {name}"
            ))
        } else if record_type == RecordType::SOA {
            None
        } else if let Err(message) = servable_type(record_type) {
            Some(message.to_string())
        } else if matches!(&record.data, RData::TXT(txt) if txt.txt_data.is_empty()) {
            // hickory's parser reads `t TXT` as a TXT record without strings, whose empty RDATA
            // no client can parse (RFC 1035 §3.3.14: one or more strings); BIND refuses it too.
            Some(format!(
                "{name} TXT has no strings; write \"\" for an empty one"
            ))
        } else if let Some(error) = unreadable_on_the_wire(&record) {
            Some(format!(
                "{name} {record_type} would be served as data that does not parse ({error}); check its fields"
            ))
        } else {
            long_string(&record.data).map(|length| {
                format!(
                    "a TXT string is {length} bytes long; DNS allows 255 per string, so split it into several quoted strings"
                )
            })
        };
        if let Some(message) = problem {
            return Err(self.error_at(&record, message));
        }
        let data = qualify_names(record.data.clone(), origin)
            .map_err(|error| self.error_at(&record, error.to_string()))?;
        let mut checked = Record::from_rdata(name, record.ttl, data);
        checked.dns_class = DNSClass::IN;
        Ok(checked)
    }

    fn error(&self, line: Option<usize>, message: String) -> ConfigError {
        let included = line
            .and_then(|line| self.text.lines().nth(line - 1))
            .is_some_and(|text| {
                text.trim_start()
                    .to_ascii_uppercase()
                    .starts_with("$INCLUDE")
            });
        let message = if included {
            format!("{message} (in the file $INCLUDEd on this line)")
        } else {
            message
        };
        ConfigError {
            file: self.path.clone(),
            position: line.map(|line| (line, 1)),
            field: None,
            message,
        }
    }

    /// The first line of the first entry such that the entries up to it, parsed alone, satisfy
    /// `shows`; `None` if even the whole file does not.
    fn first_entry_where(&self, shows: impl Fn(&str) -> bool) -> Option<usize> {
        let entries = entries(&self.text);
        let (mut low, mut high) = (0, entries.len());
        while low < high {
            let middle = low + (high - low) / 2;
            if shows(&self.text[..entries[middle].end]) {
                high = middle;
            } else {
                low = middle + 1;
            }
        }
        entries.get(low).map(|entry| entry.first_line)
    }
}

/// Every RRset of the file, each with its records' TTLs made equal to the first one's, as BIND
/// does (RFC 2181 §5.2: the records of an RRset share one TTL).
fn parse(text: &str, path: &Path, origin: &Name) -> Result<Vec<Vec<Record>>, ParseError> {
    let (_, rrsets) = Parser::new(text, Some(path.to_path_buf()), Some(origin.clone())).parse()?;
    Ok(rrsets
        .into_values()
        .map(|rrset| {
            let mut records: Vec<Record> = rrset.into_iter().collect();
            if let Some(ttl) = records.first().map(|record| record.ttl) {
                for record in &mut records {
                    record.ttl = ttl;
                }
            }
            records
        })
        .collect())
}

/// Why `record` written in wire format does not read back, if it does not. hickory's parser
/// accepts some data that its encoder writes and its decoder (and so a client) refuses, e.g. a
/// CAA tag longer than 15 bytes (RFC 8659 §4.1); found by fuzzing.
fn unreadable_on_the_wire(record: &Record) -> Option<String> {
    let bytes = match record.to_bytes() {
        Ok(bytes) => bytes,
        Err(error) => return Some(error.to_string()),
    };
    Record::from_bytes(&bytes)
        .err()
        .map(|error| error.to_string())
}

/// One entry of a zone file: where it ends (a byte offset just past its last newline) and the
/// line it starts on.
struct Entry {
    end: usize,
    first_line: usize,
}

/// The file's entries. An entry ends at a newline that is outside parentheses, quotes and
/// escapes; a comment runs to the end of its line.
fn entries(text: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    let (mut depth, mut quoted, mut comment, mut escaped) = (0usize, false, false, false);
    let (mut line, mut first_line) = (1, 1);
    for (offset, character) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if character == '\n' {
            comment = false;
            if depth == 0 && !quoted {
                entries.push(Entry {
                    end: offset + 1,
                    first_line,
                });
                first_line = line + 1;
            }
        } else if comment {
        } else if character == '\\' {
            escaped = true;
        } else if character == '"' {
            quoted = !quoted;
        } else if quoted {
        } else if character == ';' {
            comment = true;
        } else if character == '(' {
            depth += 1;
        } else if character == ')' {
            depth = depth.saturating_sub(1);
        }
        if character == '\n' {
            line += 1;
        }
    }
    if entries.last().is_none_or(|entry| entry.end < text.len()) {
        entries.push(Entry {
            end: text.len(),
            first_line,
        });
    }
    entries
}

/// Where hickory-proto's lexer would read valid RFC 1035 text as other data, refused rather
/// than served wrong: `\DDD` escapes (decoded as `(d1 << 16) + (d2 << 8) + d3` in quoted strings,
/// kept as typed in TXT words), and quoted strings inside parentheses (kept with their quotes,
/// split at spaces). The line of the first, and why.
fn unsupported_syntax(text: &str) -> Option<(usize, &'static str)> {
    let (mut line, mut depth) = (1, 0usize);
    let (mut comment, mut escaped, mut quoted) = (false, false, false);
    for character in text.chars() {
        if escaped {
            if character.is_ascii_digit() {
                return Some((line, DECIMAL_ESCAPE));
            }
            escaped = false;
        } else if comment {
        } else if character == '\\' {
            escaped = true;
        } else if character == '"' {
            if depth > 0 {
                return Some((line, QUOTE_IN_PARENTHESES));
            }
            quoted = !quoted;
        } else if quoted {
        } else if character == ';' {
            comment = true;
        } else if character == '(' {
            depth += 1;
        } else if character == ')' {
            depth = depth.saturating_sub(1);
        }
        if character == '\n' {
            line += 1;
            comment = false;
        }
    }
    None
}

const DECIMAL_ESCAPE: &str = "\\DDD escapes are not supported (hickory-proto's zone-file parser misreads them); write the character itself, or \\X for a special one";
const QUOTE_IN_PARENTHESES: &str = "quoted strings inside parentheses are not supported (hickory-proto's zone-file parser keeps their quotes); write the record on one line";

/// The files named by `$INCLUDE` lines, relative to the including file's directory as hickory
/// resolves them.
fn included_files(text: &str, path: &Path) -> Vec<PathBuf> {
    let base = path.parent().unwrap_or(Path::new("."));
    let mut files = vec![path.to_path_buf()];
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words
            .next()
            .is_some_and(|word| word.eq_ignore_ascii_case("$INCLUDE"))
            && let Some(file) = words.next()
        {
            files.push(base.join(file));
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_syntax_is_found_outside_comments() {
        let found = |text| unsupported_syntax(text).map(|(line, _)| line);
        assert_eq!(found("a TXT \"x\\\"\" ; \\065\nb TXT \\065\n"), Some(2));
        assert_eq!(found("a TXT \"\\;\" ; \\065 (\"\n"), None);
        assert_eq!(
            found("@ SOA a b ( 1 ; \"\n 2 3 4 5 )\nt TXT ( \"x\" )\n"),
            Some(3)
        );
    }

    /// The error loading a zone whose `records_file` holds an SOA, an NS, its glue and `records`
    /// (from line 5), which the loader must refuse; `directory` keeps concurrent tests apart.
    fn refused_zone_file(directory: &str, records: &str) -> crate::config::ConfigError {
        let directory =
            std::env::temp_dir().join(format!("apidns-{directory}-{}", std::process::id()));
        std::fs::create_dir_all(&directory).expect("a temporary directory");
        let head = "$TTL 300\n@ SOA ns1 h.example.com. 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.53\n";
        std::fs::write(directory.join("z.zone"), format!("{head}{records}"))
            .expect("write the zone file");
        let error = crate::config::parse_zone_text(
            &directory.join("z.toml"),
            "origin = \"k8s.example.com.\"\nrecords_file = \"z.zone\"\n",
            &crate::config::ProbeSettings::default(),
            1,
        )
        .expect_err("the zone file is refused");
        std::fs::remove_dir_all(&directory).ok();
        error
    }

    /// Found by fuzzing (`config_records_file`, in its first minute); the input is a seed.
    #[test]
    fn a_txt_record_without_strings_is_refused() {
        let error = refused_zone_file("records-file", "t TXT \"\"\nu TXT\n");
        assert!(
            error
                .message
                .contains("u.k8s.example.com. TXT has no strings"),
            "{error}"
        );
        assert_eq!(error.position, Some((6, 1)), "{error}");
    }

    /// Found by fuzzing (`config_records_file`, after 686,434 executions); the input is a seed.
    #[test]
    fn a_record_that_does_not_read_back_from_the_wire_is_refused() {
        let error = refused_zone_file(
            "records-wire",
            "@ CAA 0 issue \"ca.example.net\"\n@ CAA 0 abcdefghijklmnop \"x\"\n",
        );
        assert!(
            error
                .message
                .contains("CAA would be served as data that does not parse"),
            "{error}"
        );
        assert_eq!(error.position, Some((6, 1)), "{error}");
    }

    #[test]
    fn entries_end_outside_parentheses_quotes_and_comments() {
        let text = "a A 1.2.3.4\n@ SOA ns ( 1 ; (\n 2 3 4 5 )\nt TXT \"x\n(\"\n\nlast TXT y";
        let found: Vec<(usize, usize)> = entries(text)
            .iter()
            .map(|entry| (entry.first_line, entry.end))
            .collect();
        assert_eq!(found, [(1, 12), (2, 40), (4, 52), (6, 53), (7, text.len())]);
    }
}
