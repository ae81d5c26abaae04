//! Compaction of the update journal: before the writer rewrites it, the journal is cut down to
//! the entries that still matter, so that a member added and removed in turn every few seconds
//! leaves one entry at most instead of one per update (each write fsyncs the whole file and
//! each start replays all of it).
//!
//! For each member (pool and address) only the entries that decide where it ends up are kept:
//!
//! | the zone file lists it | it ends up | kept |
//! |---|---|---|
//! | no | absent | nothing |
//! | no | present | the last add that added it |
//! | yes | absent | the last remove that removed it |
//! | yes | present, never removed | nothing |
//! | yes | present, removed and added again | the last remove and the add after it (an added member is not the file's: it takes the pool's defaults and goes to the end of the list, and a drain leaves with it) |
//!
//! The kept entries stay in their order, so the members that updates added keep theirs. The
//! overlay also depends on the path in rare cases (`min_up` follows the fewest members the pool
//! ever had; a removal of what is then the last member is refused), so the compacted journal
//! is laid over the files and compared with the full one: when they differ, the members are
//! compacted one at a time, and a member whose shorter path would change the result keeps all
//! its entries. Serials are not in the journal (a zone's serial comes from its file, the
//! configuration in force and the transfer history), so compaction cannot move them.

use std::collections::HashMap;
use std::net::IpAddr;

use hickory_proto::rr::Name;
use tracing::debug;

use super::journal::{Entry, Operation, overlay};
use crate::config::Config;

/// The entries of `entries` (all applying to `base`) that still matter: a shorter journal that
/// lays the same configuration over `base`.
pub fn compact(base: &Config, entries: &[Entry]) -> Vec<Entry> {
    let decisive = decisive(entries);
    if decisive.iter().all(|keep| *keep) {
        return entries.to_vec();
    }
    let (target, _, _) = overlay(base, entries);
    let same = |candidate: &[Entry]| {
        let (config, kept, superseded) = overlay(base, candidate);
        config.zones == target.zones && superseded.is_empty() && kept.len() == candidate.len()
    };
    let all = select(entries, &decisive);
    if same(&all) {
        return all;
    }
    // The path matters for some member (see the module's documentation): cut member by
    // member, keeping each cut that changes nothing, so that the others are still compacted.
    let mut keep = vec![true; entries.len()];
    let mut members: Vec<(&Name, IpAddr)> = Vec::new();
    for (entry, decisive) in entries.iter().zip(&decisive) {
        let member = (&entry.pool, entry.address);
        if !decisive && !members.contains(&member) {
            members.push(member);
        }
    }
    for member in members {
        let mut trial = keep.clone();
        for ((keep, entry), decisive) in trial.iter_mut().zip(entries).zip(&decisive) {
            if (&entry.pool, entry.address) == member && !decisive {
                *keep = false;
            }
        }
        if same(&select(entries, &trial)) {
            keep = trial;
        } else {
            debug!(pool = %member.0, address = %member.1, "journal entries of this member kept in full: a shorter path would not give the same configuration");
        }
    }
    select(entries, &keep)
}

fn select(entries: &[Entry], keep: &[bool]) -> Vec<Entry> {
    entries
        .iter()
        .zip(keep)
        .filter(|(_, keep)| **keep)
        .map(|(entry, _)| entry.clone())
        .collect()
}

/// What the entries of one member did.
struct MemberHistory {
    /// Whether the zone file lists it (the entries' `file=`); `None` when they disagree, and
    /// then every entry of the member is kept.
    file_listed: Option<bool>,
    present: bool,
    last_add: Option<usize>,
    last_remove: Option<usize>,
}

/// For each entry, whether it decides where its member ends up (see the module's table),
/// assuming every entry applied; [`compact`] checks the result.
fn decisive(entries: &[Entry]) -> Vec<bool> {
    let mut histories: HashMap<(&Name, IpAddr), MemberHistory> = HashMap::new();
    for (index, entry) in entries.iter().enumerate() {
        let history = histories
            .entry((&entry.pool, entry.address))
            .or_insert(MemberHistory {
                file_listed: Some(entry.file_listed),
                present: entry.file_listed,
                last_add: None,
                last_remove: None,
            });
        if history.file_listed != Some(entry.file_listed) {
            history.file_listed = None;
        }
        // Only an entry that changed the membership counts: adding a member that is there
        // already, or removing one that is not, changes nothing.
        match entry.operation {
            Operation::Add if !history.present => {
                history.present = true;
                history.last_add = Some(index);
            }
            Operation::Remove if history.present => {
                history.present = false;
                history.last_remove = Some(index);
            }
            _ => {}
        }
    }
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let Some(history) = histories.get(&(&entry.pool, entry.address)) else {
                return true;
            };
            let index = Some(index);
            match (history.file_listed, history.present) {
                (None, _) => true,
                (Some(false), false) => false,
                (Some(false), true) => index == history.last_add,
                (Some(true), false) => index == history.last_remove,
                (Some(true), true) => {
                    history.last_add.is_some()
                        && (index == history.last_add || index == history.last_remove)
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use proptest::prelude::*;

    use super::*;
    use crate::config::{parse_main_text, parse_zone_text};

    const POOL: &str = "api.k8s.example.com.";

    fn address(member: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, 10 + member])
    }

    /// The zone files: one pool listing `file` (not empty), with `drained` drained and `min_up`.
    fn base(file: &BTreeSet<u8>, drained: &BTreeSet<u8>, min_up: usize) -> Config {
        let list = |set: &BTreeSet<u8>| {
            set.iter()
                .map(|m| format!("\"{}\"", address(*m)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let zone = format!(
            "origin = \"k8s.example.com.\"\nrecords = [\n  {{ name = \"@\", type = \"NS\", value = \"ns1\" }},\n  {{ name = \"ns1\", type = \"A\", value = \"192.0.2.53\" }},\n]\n[soa]\nmname = \"ns1\"\nrname = \"hostmaster.example.com.\"\n[pool.api]\nmembers = [{}]\ndrain = [{}]\nmin_up = {}\n",
            list(file),
            list(drained),
            min_up.min(file.len())
        );
        let path = Path::new("/etc/apidns/apidns.toml");
        let (server, probe) =
            parse_main_text(path, "[server]\nlisten = [\"127.0.0.1:53\"]\n").expect("main");
        let zone = parse_zone_text(Path::new("zones/k8s.toml"), &zone, &probe, 1).expect("zone");
        Config {
            path: path.to_path_buf(),
            server,
            probe,
            zones: vec![zone],
            secondaries: Vec::new(),
        }
    }

    fn entry(operation: Operation, member: u8, file_listed: bool, at: u64) -> Entry {
        Entry {
            operation,
            pool: Name::from_ascii(POOL).expect("a pool name"),
            address: address(member),
            file_listed,
            at,
        }
    }

    #[test]
    fn a_member_added_and_removed_in_turn_leaves_one_entry_at_most() {
        let base = base(&BTreeSet::from([0]), &BTreeSet::new(), 0);
        let mut journal = Vec::new();
        for at in 0..50 {
            let operation = if at % 2 == 0 {
                Operation::Add
            } else {
                Operation::Remove
            };
            journal.push(entry(operation, 1, false, at));
            journal = compact(&base, &journal);
            assert_eq!(journal.len(), usize::from(operation == Operation::Add));
        }
    }

    #[test]
    fn a_file_member_removed_and_added_again_keeps_both_entries() {
        let base = base(&BTreeSet::from([0, 1]), &BTreeSet::from([1]), 0);
        let journal: Vec<Entry> = (0..6)
            .map(|at| {
                let operation = if at % 2 == 0 {
                    Operation::Remove
                } else {
                    Operation::Add
                };
                entry(operation, 1, true, at)
            })
            .collect();
        let compacted = compact(&base, &journal);
        assert_eq!(compacted, journal[4..].to_vec());
        let (config, _, _) = overlay(&base, &compacted);
        let pool = &config.zones[0].pools[0];
        assert!(
            !pool.is_drained(address(1)),
            "the drain left with the member"
        );
        assert_eq!(compact(&base, &journal[..5]), journal[4..5].to_vec());
    }

    #[test]
    fn the_configuration_is_kept_when_the_path_matters() {
        // min_up follows the fewest members the pool had: here 1, after the removal of 11,
        // while 13 (added, later removed) was not there yet. Without 13's entries the pool
        // would have had 2 members at the least.
        let base = base(&BTreeSet::from([0, 1]), &BTreeSet::new(), 2);
        let journal = vec![
            entry(Operation::Remove, 1, true, 1),
            entry(Operation::Add, 3, false, 2),
            entry(Operation::Add, 1, true, 3),
            entry(Operation::Remove, 3, false, 4),
        ];
        let compacted = compact(&base, &journal);
        assert_eq!(
            overlay(&base, &compacted).0.zones,
            overlay(&base, &journal).0.zones
        );
    }

    #[test]
    fn a_member_whose_path_matters_does_not_stop_the_others_from_being_compacted() {
        // The file lists one member, 10. Its removal applied only because 11 was there then:
        // without 11's entries it would be refused, so they stay; 12's do not.
        let base = base(&BTreeSet::from([0]), &BTreeSet::new(), 0);
        let mut journal = vec![
            entry(Operation::Add, 1, false, 1),
            entry(Operation::Remove, 0, true, 2),
            entry(Operation::Add, 0, true, 3),
            entry(Operation::Remove, 1, false, 4),
        ];
        for at in 5..45 {
            let operation = if at % 2 == 0 {
                Operation::Remove
            } else {
                Operation::Add
            };
            journal.push(entry(operation, 2, false, at));
            let compacted = compact(&base, &journal);
            assert_eq!(
                overlay(&base, &compacted).0.zones,
                overlay(&base, &journal).0.zones
            );
            journal = compacted;
            assert!(journal.len() <= 5, "{journal:?}");
        }
    }

    /// Each pool's members, drained members and `max_answers`.
    fn membership(config: &Config) -> Vec<(Vec<crate::config::Member>, Vec<IpAddr>, usize)> {
        config
            .zones
            .iter()
            .flat_map(|zone| &zone.pools)
            .map(|pool| {
                (
                    pool.members().to_vec(),
                    pool.drain().to_vec(),
                    pool.max_answers(),
                )
            })
            .collect()
    }

    /// A step of the writer's life: an update of one member, or a reload of files that list
    /// or drain a member differently.
    #[derive(Debug, Clone)]
    enum Step {
        Update(Operation, u8),
        FileListToggle(u8),
        FileDrainToggle(u8),
        FileMinUp(usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        let operation = prop_oneof![Just(Operation::Add), Just(Operation::Remove)];
        prop_oneof![
            6 => (operation, 0..4u8).prop_map(|(operation, member)| Step::Update(operation, member)),
            1 => (0..4u8).prop_map(Step::FileListToggle),
            1 => (0..4u8).prop_map(Step::FileDrainToggle),
            1 => (0..4usize).prop_map(Step::FileMinUp),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Two writers take the same updates and reloads, one keeping the full journal as
        /// before compaction and one compacting it at every write; after each step the
        /// configuration in force is the same, and the compacted journal is no longer.
        #[test]
        fn compaction_keeps_the_configuration_in_force(
            steps in proptest::collection::vec(step(), 0..60),
            first in proptest::collection::btree_set(0..4u8, 1..4),
        ) {
            let (mut file, mut drained, mut min_up) = (first, BTreeSet::new(), 0);
            let mut files = base(&file, &drained, min_up);
            let (mut full, mut compacted): (Vec<Entry>, Vec<Entry>) = (Vec::new(), Vec::new());
            for (at, step) in steps.into_iter().enumerate() {
                match step {
                    Step::Update(operation, member) => {
                        // As the writer does: the entry joins the journal only when it applies.
                        let new = entry(operation, member, file.contains(&member), at as u64);
                        let mut longer = full.clone();
                        longer.push(new.clone());
                        let (_, kept, superseded) = overlay(&files, &longer);
                        if !superseded.is_empty() || kept.len() != longer.len() {
                            continue;
                        }
                        full = kept;
                        compacted.push(new);
                        let (_, kept, superseded) = overlay(&files, &compacted);
                        prop_assert!(superseded.is_empty(), "{superseded:?}");
                        compacted = compact(&files, &kept);
                    }
                    Step::FileListToggle(member) => {
                        if !file.remove(&member) {
                            file.insert(member);
                        }
                        if file.is_empty() {
                            file.insert(member);
                        }
                        drained.retain(|m| file.contains(m));
                    }
                    Step::FileDrainToggle(member) => {
                        if file.contains(&member) && !drained.remove(&member) {
                            drained.insert(member);
                        }
                    }
                    Step::FileMinUp(value) => min_up = value,
                }
                if !matches!(step, Step::Update(..)) {
                    // A reload: entries the new files supersede are dropped, as `load_overlaid`
                    // does.
                    files = base(&file, &drained, min_up);
                    let (refused, refused_compacted);
                    (_, full, refused) = overlay(&files, &full);
                    (_, compacted, refused_compacted) = overlay(&files, &compacted);
                    // Two outcomes depend on the path, which a shorter journal does not keep:
                    // which removal, if any, the new files turn into a refused removal of the
                    // last member, and `min_up`, which follows the fewest members the pool ever had. The
                    // rest of the membership must be the same; both go on from the compacted
                    // journal.
                    let path_dependent = refused
                        .iter()
                        .chain(&refused_compacted)
                        .any(|message| message.contains("not applied"));
                    if !path_dependent {
                        prop_assert_eq!(
                            membership(&overlay(&files, &compacted).0),
                            membership(&overlay(&files, &full).0)
                        );
                    }
                    full.clone_from(&compacted);
                }
                let (expected, _, _) = overlay(&files, &full);
                let (actual, _, _) = overlay(&files, &compacted);
                prop_assert_eq!(actual.zones, expected.zones);
                prop_assert!(compacted.len() <= full.len());
            }
        }
    }
}
