//! The last discovered membership applied, kept in `<state_dir>/discovered/<pool>` (one
//! address a line), so that a restart while the cluster cannot be reached serves it too. It is
//! written whole and atomically, as the journal is (temporary file, fsync, rename, fsync of the
//! directory).

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{AddrParseError, IpAddr};
use std::path::{Path, PathBuf};

use hickory_proto::rr::Name;
use tracing::warn;

use crate::config::{Config, DiscoveredSets};

fn file(state_dir: &Path, pool: &Name) -> PathBuf {
    let name = pool.to_string();
    state_dir
        .join("discovered")
        .join(name.trim_end_matches('.'))
}

/// Writes `addresses` as the pool's last applied set.
pub fn save(state_dir: &Path, pool: &Name, addresses: &BTreeSet<IpAddr>) -> std::io::Result<()> {
    let path = file(state_dir, pool);
    let dir = path.parent().unwrap_or(state_dir);
    std::fs::create_dir_all(dir)?;
    let temporary = path.with_extension("tmp");
    {
        let mut out = std::fs::File::create(&temporary)?;
        out.write_all(render(addresses).as_bytes())?;
        out.sync_all()?;
    }
    std::fs::rename(&temporary, &path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// The file's text for `addresses`: one address a line.
pub fn render(addresses: &BTreeSet<IpAddr>) -> String {
    addresses
        .iter()
        .map(|address| format!("{address}\n"))
        .collect()
}

/// The addresses in a file's `text` (blank lines and spaces around an address ignored), or the
/// first line that is not an address.
pub fn parse(text: &str) -> Result<BTreeSet<IpAddr>, AddrParseError> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.trim().parse::<IpAddr>())
        .collect()
}

/// The stored sets of every pool of `config` that discovers. A file that cannot be read or
/// holds a line that is not an address is logged and skipped: the pool starts from its files,
/// and the watch brings the set back once the cluster answers.
pub fn load(config: &Config) -> DiscoveredSets {
    let mut sets = DiscoveredSets::default();
    let Some(state_dir) = &config.server.state_dir else {
        return sets;
    };
    for pool in config.zones.iter().flat_map(|zone| &zone.pools) {
        if pool.discover.is_none() {
            continue;
        }
        let path = file(state_dir, &pool.name);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => {
                warn!(file = %path.display(), %error, "cannot read the last discovered members");
                continue;
            }
        };
        match parse(&text) {
            Ok(addresses) if !addresses.is_empty() => {
                sets.0.insert(pool.name.clone(), addresses);
            }
            Ok(_) => {}
            Err(error) => {
                warn!(file = %path.display(), %error, "the last discovered members are damaged; starting from the files");
            }
        }
    }
    sets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_set_reads_back() {
        let dir = std::env::temp_dir().join(format!("apidns-discovered-{}", std::process::id()));
        let pool: Name = "api.k8s.example.com.".parse().expect("a name");
        let addresses: BTreeSet<IpAddr> = ["192.0.2.10", "2001:db8::1"]
            .iter()
            .map(|a| a.parse().expect("an address"))
            .collect();
        save(&dir, &pool, &addresses).expect("saved");
        let text = std::fs::read_to_string(file(&dir, &pool)).expect("the file");
        assert_eq!(text, "192.0.2.10\n2001:db8::1\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
