//! The journal of accepted updates: the overlay that dynamic updates put on top of the zone
//! files, kept in `<state_dir>/journal` and rewritten whole (temporary file, fsync, rename, fsync
//! of the directory) before an update is acknowledged.
//!
//! # Format
//!
//! Text, one entry per line, so that an operator can read and repair it:
//!
//! ```text
//! apidns-journal 1
//! add api.k8s.example.com. 192.0.2.14 file=absent at=1764032131 check=5c1d0f3a9e2b7710
//! remove api.k8s.example.com. 192.0.2.11 file=listed at=1764032131 check=0e4f6a1b2c3d4e5f
//! end 2
//! ```
//!
//! `file=` says whether the zone file listed the member when the update was accepted, `at=` is
//! the time (Unix seconds), and `check=` is a checksum of the line before it (FNV-1a, 64 bits),
//! which catches a damaged line. The `end` line carries the number of entries and catches a
//! truncated file.
//!
//! # Files and journal
//!
//! The zone files are the base and the entries are applied on top of them, in order. For each
//! pool member the most recent change wins, whether it is an update or an edit of the zone file:
//! an entry whose `file=` no longer matches the zone file (the operator added or removed that
//! member in the file since) is superseded by the file, logged as such, and dropped from the
//! journal at its next rewrite. Neither side undoes the other silently.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use hickory_proto::rr::Name;
use tracing::{error, warn};

use crate::config::{Config, MemberSource, PoolConfig, PoolRuleError};

/// The journal's file name inside `state_dir`.
pub const JOURNAL_FILE: &str = "journal";
const HEADER: &str = "apidns-journal 1";

/// Adding or removing a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Add,
    Remove,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Add => "add",
            Operation::Remove => "remove",
        }
    }
}

/// One accepted change of one pool's membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub operation: Operation,
    /// Absolute, lower-case pool name.
    pub pool: Name,
    pub address: IpAddr,
    /// Whether the zone file listed the member when the change was accepted.
    pub file_listed: bool,
    /// When the change was accepted, in Unix seconds.
    pub at: u64,
}

impl Entry {
    fn line(&self) -> String {
        let body = format!(
            "{} {} {} file={} at={}",
            self.operation.as_str(),
            self.pool,
            self.address,
            if self.file_listed { "listed" } else { "absent" },
            self.at
        );
        let check = checksum(&body);
        format!("{body} check={check:016x}")
    }

    fn parse(line: &str) -> Result<Self, EntryError> {
        use EntryError::*;
        let (body, check) = line.rsplit_once(" check=").ok_or(NoCheck)?;
        let check = u64::from_str_radix(check, 16).map_err(|_| BadCheck(check.to_string()))?;
        if check != checksum(body) {
            return Err(Damaged);
        }
        let words: Vec<&str> = body.split(' ').collect();
        let [operation, pool, address, file, at] = words.as_slice() else {
            return Err(Shape);
        };
        let operation = match *operation {
            "add" => Operation::Add,
            "remove" => Operation::Remove,
            other => return Err(UnknownOperation(other.to_string())),
        };
        let pool = Name::from_ascii(pool)
            .ok()
            .filter(Name::is_fqdn)
            .ok_or_else(|| Pool(pool.to_string()))?
            .to_lowercase();
        let address = address.parse().map_err(|_| Address(address.to_string()))?;
        let file_listed = match *file {
            "file=listed" => true,
            "file=absent" => false,
            other => return Err(File(other.to_string())),
        };
        let at = at
            .strip_prefix("at=")
            .and_then(|at| at.parse().ok())
            .ok_or_else(|| At(at.to_string()))?;
        Ok(Self {
            operation,
            pool,
            address,
            file_listed,
            at,
        })
    }
}

/// Why a journal line cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    #[error("the line has no check= field")]
    NoCheck,
    #[error("check={0} is not a hexadecimal checksum")]
    BadCheck(String),
    #[error("the checksum does not match the line (the line is damaged)")]
    Damaged,
    #[error("expected: add|remove POOL ADDRESS file=listed|absent at=SECONDS")]
    Shape,
    #[error("\"{0}\" is not add or remove")]
    UnknownOperation(String),
    #[error("\"{0}\" is not an absolute pool name")]
    Pool(String),
    #[error("\"{0}\" is not an IP address")]
    Address(String),
    #[error("\"{0}\" is not file=listed or file=absent")]
    File(String),
    #[error("\"{0}\" is not at=SECONDS")]
    At(String),
}

/// FNV-1a, 64 bits: enough to notice a damaged line, with no dependency.
fn checksum(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The journal as read from disk.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    /// Where it lives; `None` when no state directory is configured.
    pub path: Option<PathBuf>,
    /// The entries that could be read, in order.
    pub entries: Vec<Entry>,
    /// Why the rest of the file could not be read. A damaged journal is never rewritten (that
    /// would drop what follows the damage): updates are refused until an operator repairs it.
    pub damage: Option<String>,
}

impl Journal {
    /// Reads `<state_dir>/journal`; a missing file is an empty journal.
    pub fn load(state_dir: Option<&Path>) -> Self {
        let Some(dir) = state_dir else {
            return Self::default();
        };
        let path = dir.join(JOURNAL_FILE);
        let mut journal = Self {
            path: Some(path.clone()),
            ..Self::default()
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => journal.read(&text),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                journal.damage = Some(format!("{}: cannot read: {error}", path.display()));
            }
        }
        journal
    }

    /// The journal held by `text`, as [`Journal::load`] reads it from `path` (which only names
    /// the file in damage reports). For fuzzing and tests: the text an operator or a crash left.
    pub fn parse(path: Option<PathBuf>, text: &str) -> Self {
        let mut journal = Self {
            path,
            ..Self::default()
        };
        journal.read(text);
        journal
    }

    fn read(&mut self, text: &str) {
        let name = self
            .path
            .as_deref()
            .map_or_else(String::new, |p| p.display().to_string());
        let mut lines = text.split('\n').enumerate();
        match lines.next() {
            Some((_, HEADER)) => {}
            _ => {
                self.damage = Some(format!(
                    "{name}: line 1: not an apidns journal (expected \"{HEADER}\")"
                ));
                return;
            }
        }
        let mut ended = false;
        for (index, line) in lines {
            let number = index + 1;
            if line.is_empty() {
                // The newline that ends the last line, or a blank line.
                continue;
            }
            if ended {
                self.damage = Some(format!(
                    "{name}: line {number}: text after the end line; the file is damaged"
                ));
                return;
            }
            if let Some(count) = line.strip_prefix("end ") {
                // The count is quoted only when it is a number: the line's other text is the
                // damage, and an error message should not repeat it.
                let read = self.entries.len();
                let problem = match count.parse::<usize>() {
                    Ok(count) if count == read => None,
                    Ok(count) => Some(format!(
                        "the end line says {count} entries but {read} were read"
                    )),
                    Err(_) => Some("the end line's count is not a number".to_string()),
                };
                if let Some(problem) = problem {
                    self.damage = Some(format!(
                        "{name}: line {number}: {problem}; the file is damaged"
                    ));
                    return;
                }
                ended = true;
                continue;
            }
            match Entry::parse(line) {
                Ok(entry) => self.entries.push(entry),
                Err(reason) => {
                    self.damage = Some(format!(
                        "{name}: line {number} (entry {}): {reason}; this entry and the ones after it are not applied",
                        self.entries.len() + 1
                    ));
                    return;
                }
            }
        }
        if !ended {
            self.damage = Some(format!(
                "{name}: truncated after entry {} (no end line); later entries, if any, are lost from this file",
                self.entries.len()
            ));
        }
    }
}

/// Writes `entries` as the whole journal at `path`, durably: a temporary file is written and
/// fsynced, renamed over the journal, and the directory fsynced, so that after a crash the file
/// is either the old journal or the new one, never a mix.
pub fn write(path: &Path, entries: &[Entry]) -> std::io::Result<()> {
    let text = render(entries);
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let temporary = path.with_extension("tmp");
    {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// The journal's text for `entries`: the header, one checksummed line per entry, the end line.
pub fn render(entries: &[Entry]) -> String {
    let mut text = String::with_capacity(64 * (entries.len() + 2));
    text.push_str(HEADER);
    text.push('\n');
    for entry in entries {
        let _ = writeln!(text, "{}", entry.line());
    }
    let _ = writeln!(text, "end {}", entries.len());
    text
}

/// The configuration in force: `base` (the files) with the journal in `state_dir` laid over it.
/// A damaged journal and superseded entries are logged; the returned journal holds the entries
/// still in force (and the damage, if any).
pub fn load_overlaid(base: &Config) -> (Config, Journal) {
    let mut journal = Journal::load(base.server.state_dir.as_deref());
    if let Some(damage) = &journal.damage {
        error!(
            %damage,
            "update journal damaged: the entries before the damage are applied, updates are refused until it is repaired (fix or remove the line, then reload)"
        );
    }
    let (config, kept, superseded) = overlay(base, &journal.entries);
    for message in &superseded {
        warn!(journal = ?journal.path, "{message}");
    }
    // A superseded entry is retired for good, so that a later edit of the file that happens
    // to match its `file=` again does not bring it back.
    if let (false, None, Some(path)) = (superseded.is_empty(), &journal.damage, &journal.path)
        && let Err(error) = write(path, &kept)
    {
        error!(journal = %path.display(), %error, "cannot rewrite the journal without its superseded entries");
    }
    journal.entries = kept;
    (config, journal)
}

/// The effective configuration: `base` (the files) with `entries` applied. Returns it with the
/// entries still in force and a message for each superseded one.
pub fn overlay(base: &Config, entries: &[Entry]) -> (Config, Vec<Entry>, Vec<String>) {
    let mut config = base.clone();
    let mut kept = Vec::with_capacity(entries.len());
    let mut superseded = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let number = index + 1;
        let Some(base_pool) = find_pool(base, &entry.pool) else {
            superseded.push(format!(
                "journal entry {number} ({} {} at {}) is superseded: the zone files no longer define that pool",
                entry.operation.as_str(),
                entry.address,
                entry.pool
            ));
            continue;
        };
        let file_lists = base_pool
            .members()
            .iter()
            .any(|member| member.address.ip() == entry.address);
        if file_lists != entry.file_listed {
            superseded.push(format!(
                "journal entry {number} ({} {} at {}) is superseded: the zone file {} that member since",
                entry.operation.as_str(),
                entry.address,
                entry.pool,
                if file_lists { "added" } else { "removed" }
            ));
            continue;
        }
        let Some(pool) = find_pool_mut(&mut config, &entry.pool) else {
            continue;
        };
        match apply(pool, entry.operation, entry.address) {
            Ok(_) => kept.push(entry.clone()),
            Err(PoolRuleError::LastMember { .. }) => superseded.push(format!(
                "journal entry {number} (remove {} at {}) is not applied: it would leave the pool without members",
                entry.address, entry.pool
            )),
            Err(error) => superseded.push(format!(
                "journal entry {number} ({} {} at {}) is not applied: {error}",
                entry.operation.as_str(),
                entry.address,
                entry.pool
            )),
        }
    }
    (config, kept, superseded)
}

/// Adds or removes one member through the pool's own methods, which keep its rules (never
/// the last member removed; `max_answers` and `min_up` following the member count).
/// `Ok(true)` when the pool changed.
pub fn apply(
    pool: &mut PoolConfig,
    operation: Operation,
    address: IpAddr,
) -> Result<bool, PoolRuleError> {
    match operation {
        Operation::Add => pool.add_member(address, MemberSource::Update),
        Operation::Remove => pool.remove_member(address),
    }
}

pub fn find_pool<'a>(config: &'a Config, name: &Name) -> Option<&'a PoolConfig> {
    config
        .zones
        .iter()
        .flat_map(|zone| &zone.pools)
        .find(|pool| &pool.name == name)
}

fn find_pool_mut<'a>(config: &'a mut Config, name: &Name) -> Option<&'a mut PoolConfig> {
    config
        .zones
        .iter_mut()
        .flat_map(|zone| &mut zone.pools)
        .find(|pool| &pool.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(operation: Operation, address: &str, file_listed: bool) -> Entry {
        Entry {
            operation,
            pool: Name::from_ascii("api.k8s.example.com.").unwrap(),
            address: address.parse().unwrap(),
            file_listed,
            at: 1_764_032_131,
        }
    }

    fn read(text: &str) -> Journal {
        let mut journal = Journal {
            path: Some(PathBuf::from("/var/lib/apidns/journal")),
            ..Journal::default()
        };
        journal.read(text);
        journal
    }

    #[test]
    fn lines_round_trip() {
        let entries = [
            entry(Operation::Add, "192.0.2.14", false),
            entry(Operation::Remove, "2001:db8::11", true),
        ];
        let mut text = format!("{HEADER}\n");
        for e in &entries {
            text.push_str(&e.line());
            text.push('\n');
        }
        text.push_str("end 2\n");
        let journal = read(&text);
        assert_eq!(journal.damage, None);
        assert_eq!(journal.entries, entries);
    }

    #[test]
    fn damage_names_the_file_line_and_entry_and_keeps_what_came_before() {
        let good = entry(Operation::Add, "192.0.2.14", false).line();
        let bad = entry(Operation::Add, "192.0.2.15", false)
            .line()
            .replace("192.0.2.15", "192.0.2.16");
        let journal = read(&format!("{HEADER}\n{good}\n{bad}\n{good}\nend 3\n"));
        assert_eq!(journal.entries.len(), 1);
        let damage = journal.damage.unwrap();
        assert!(
            damage.contains("/var/lib/apidns/journal: line 3 (entry 2)"),
            "{damage}"
        );
        assert!(damage.contains("checksum"), "{damage}");

        let journal = read(&format!("{HEADER}\n{good}\n{}", &good[..20]));
        assert_eq!(journal.entries.len(), 1);
        assert!(journal.damage.unwrap().contains("line 3 (entry 2)"));

        let journal = read(&format!("{HEADER}\n{good}\n"));
        assert_eq!(journal.entries.len(), 1);
        assert!(journal.damage.unwrap().contains("truncated after entry 1"));

        let journal = read("garbage\n");
        assert!(journal.damage.unwrap().contains("line 1"));

        // Found by the journal fuzz target: an end line whose count is not a number.
        let journal = read(&format!("{HEADER}\n{good}\nend 192.0.2.4 (entry x) 31\n"));
        assert_eq!(journal.entries.len(), 1);
        let damage = journal.damage.unwrap();
        assert!(
            damage.ends_with("line 3: the end line's count is not a number; the file is damaged"),
            "{damage}"
        );
    }
}
