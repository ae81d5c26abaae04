//! The recent versions of each zone, for IXFR (RFC 1995): the SOA and the records of each serial
//! seen, the last [`VERSIONS`] per zone, kept in `<state_dir>/transfer-history` beside the update
//! journal so that a restart still answers IXFR from the serials before it, and so that no zone's
//! serial goes back to its file's after a restart (`continue_serials`).
//!
//! A version is recorded when the transfer task sees a new serial in force (see
//! [`super::Notifier`]), before the NOTIFY for it goes out. A serial not in the history
//! (too old, or the file lost) is answered with the whole zone, as RFC 1995 section 4 allows.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::rr::{Name, RData, Record};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use tracing::warn;

use super::contents::zone_records;
use crate::config::ZoneConfig;
use crate::zone::{Snapshot, Zone};

/// Versions kept per zone: a secondary that missed more changes than this gets the whole zone.
pub const VERSIONS: usize = 16;
/// The file's name inside `state_dir`.
pub const FILE_NAME: &str = "transfer-history";
/// The first bytes of the file, naming its format.
const MAGIC: &[u8] = b"apidns transfer history 1\n";

/// One serial of a zone: its SOA record and the records between the SOAs of a transfer.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    pub serial: u32,
    pub soa: Record,
    pub records: Arc<Vec<Record>>,
}

/// The changes from one version to another: what IXFR sends between the two SOAs.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    pub from_soa: Record,
    pub deleted: Vec<Record>,
    pub added: Vec<Record>,
}

/// The versions kept, per zone origin, oldest first.
pub type Versions = HashMap<Name, Vec<Version>>;

/// The versions of every zone, shared by the transfer task (which records them) and the
/// listeners (which read them for IXFR without waiting).
#[derive(Debug)]
pub struct History {
    versions: ArcSwap<Versions>,
    path: Option<PathBuf>,
}

impl History {
    /// The history in `<state_dir>/transfer-history`; empty when there is no `state_dir`, no
    /// file, or a file that does not read (logged: IXFR then falls back to whole zones).
    pub fn load(state_dir: Option<&Path>) -> Self {
        let path = state_dir.map(|dir| dir.join(FILE_NAME));
        let versions = match &path {
            Some(path) => match std::fs::read(path) {
                Ok(bytes) => decode(&bytes).unwrap_or_else(|| {
                    warn!(file = %path.display(), "the transfer history does not read; IXFR starts from the current serial");
                    Versions::new()
                }),
                Err(_) => Versions::new(),
            },
            None => Versions::new(),
        };
        Self {
            versions: ArcSwap::from_pointee(versions),
            path,
        }
    }

    /// Records the serial in force of every transferred zone of `snapshot` that the history
    /// does not end with, and writes the history when anything was added.
    pub fn record(&self, snapshot: &Snapshot) {
        // Most announced changes are health changes, which leave every serial as it was: look
        // before copying the history.
        let recorded = |versions: &Versions, zone: &Zone| {
            versions
                .get(&zone.config.origin)
                .and_then(|kept| kept.last())
                .is_some_and(|last| last.serial == zone.config.soa.serial)
        };
        let loaded = self.versions.load();
        if snapshot.zones().iter().all(|zone| recorded(&loaded, zone)) {
            return;
        }
        let mut versions: Versions = (**loaded).clone();
        drop(loaded);
        // Every zone, not only transferred ones: the history is also what keeps a zone's serial
        // from going back to its file's across a restart (`continue_serials`).
        for zone in snapshot.zones() {
            if recorded(&versions, zone) {
                continue;
            }
            let serial = zone.config.soa.serial;
            let kept = versions.entry(zone.config.origin.clone()).or_default();
            // A serial seen again (a reload back to an older file) starts its history anew.
            kept.retain(|version| version.serial != serial);
            kept.push(Version {
                serial,
                soa: zone.soa.clone(),
                records: Arc::new(zone_records(&zone.config)),
            });
            if kept.len() > VERSIONS {
                kept.drain(..kept.len() - VERSIONS);
            }
        }
        if let Some(path) = &self.path
            && let Err(error) = write(path, &encode(&versions))
        {
            warn!(file = %path.display(), %error, "cannot write the transfer history; IXFR after a restart will send whole zones");
        }
        self.versions.store(Arc::new(versions));
    }

    /// At startup: serials that continue from the history rather than from the files. The
    /// files (with the journal laid over them) give a zone the serial its file says, which after
    /// updates is older than the one secondaries already hold; so a zone whose data is the last
    /// recorded version's keeps that serial, and one whose data differs gets a serial above it.
    pub fn continue_serials(&self, zones: &mut [ZoneConfig]) {
        let versions = self.versions.load();
        for zone in zones.iter_mut() {
            let Some(last) = versions.get(&zone.origin).and_then(|kept| kept.last()) else {
                continue;
            };
            let same_soa = matches!(&last.soa.data, RData::SOA(soa)
                if soa.mname == zone.soa.mname
                    && soa.rname == zone.soa.rname
                    && soa.refresh == zone.soa.refresh as i32
                    && soa.retry == zone.soa.retry as i32
                    && soa.expire == zone.soa.expire as i32
                    && soa.minimum == zone.soa.minimum
                    && last.soa.ttl == zone.soa.ttl);
            if same_soa && *last.records == zone_records(zone) {
                zone.soa.serial = last.serial;
            } else if !serial_greater(zone.soa.serial, last.serial) {
                zone.soa.serial = last.serial.wrapping_add(1);
            }
        }
    }

    /// The changes of `origin` from serial `from` to serial `to`, when both are in the history.
    pub fn difference(&self, origin: &Name, from: u32, to: u32) -> Option<Difference> {
        let versions = self.versions.load();
        let kept = versions.get(origin)?;
        let old = kept.iter().find(|version| version.serial == from)?;
        let new = kept.iter().find(|version| version.serial == to)?;
        let key = |record: &Record| record.to_string().to_ascii_lowercase();
        let old_keys: HashSet<String> = old.records.iter().map(key).collect();
        let new_keys: HashSet<String> = new.records.iter().map(key).collect();
        Some(Difference {
            from_soa: old.soa.clone(),
            deleted: old
                .records
                .iter()
                .filter(|record| !new_keys.contains(&key(record)))
                .cloned()
                .collect(),
            added: new
                .records
                .iter()
                .filter(|record| !old_keys.contains(&key(record)))
                .cloned()
                .collect(),
        })
    }
}

/// Serial number arithmetic (RFC 1982): `a` is newer than `b`.
fn serial_greater(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < (1 << 31)
}

/// The file's bytes: the magic line, then per zone its name, its version count and each
/// version (serial, SOA, record count, records), all in DNS wire format.
pub fn encode(versions: &Versions) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut encoder = BinEncoder::new(&mut bytes);
    let mut write = || -> Result<(), hickory_proto::ProtoError> {
        encoder.emit_vec(MAGIC)?;
        encoder.emit_u16(u16::try_from(versions.len()).unwrap_or(u16::MAX))?;
        for (origin, kept) in versions.iter().take(usize::from(u16::MAX)) {
            origin.emit(&mut encoder)?;
            encoder.emit_u16(kept.len() as u16)?;
            for version in kept {
                encoder.emit_u32(version.serial)?;
                version.soa.emit(&mut encoder)?;
                encoder.emit_u32(version.records.len() as u32)?;
                for record in version.records.iter() {
                    record.emit(&mut encoder)?;
                }
            }
        }
        Ok(())
    };
    match write() {
        Ok(()) => bytes,
        // Records from a checked configuration always encode; an empty file reads as no history.
        Err(_) => Vec::new(),
    }
}

/// The versions in `bytes`, or `None` when they do not read whole.
pub fn decode(bytes: &[u8]) -> Option<Versions> {
    let mut decoder = BinDecoder::new(bytes);
    if decoder.read_slice(MAGIC.len()).ok()?.unverified() != MAGIC {
        return None;
    }
    let zones = decoder.read_u16().ok()?.unverified();
    let mut versions = Versions::new();
    for _ in 0..zones {
        let origin = Name::read(&mut decoder).ok()?;
        let count = decoder.read_u16().ok()?.unverified();
        let mut kept = Vec::with_capacity(usize::from(count).min(VERSIONS));
        for _ in 0..count {
            let serial = decoder.read_u32().ok()?.unverified();
            let soa = Record::read(&mut decoder).ok()?;
            let records = decoder.read_u32().ok()?.unverified();
            let mut list = Vec::new();
            for _ in 0..records {
                list.push(Record::read(&mut decoder).ok()?);
            }
            kept.push(Version {
                serial,
                soa,
                records: Arc::new(list),
            });
        }
        versions.insert(origin, kept);
    }
    decoder.is_empty().then_some(versions)
}

/// Writes `bytes` to `path` whole: a temporary file, fsync, rename, fsync of the directory.
fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let temporary = path.with_extension("tmp");
    {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, SOA};

    fn version(serial: u32, addresses: &[[u8; 4]]) -> Version {
        let origin = Name::from_ascii("k8s.example.com.").unwrap();
        let soa = Record::from_rdata(
            origin.clone(),
            60,
            RData::SOA(SOA::new(
                origin.clone(),
                origin,
                serial,
                3600,
                600,
                86400,
                5,
            )),
        );
        let records = addresses
            .iter()
            .map(|octets| {
                Record::from_rdata(
                    Name::from_ascii("api.k8s.example.com.").unwrap(),
                    5,
                    RData::A(A::from(std::net::Ipv4Addr::from(*octets))),
                )
            })
            .collect();
        Version {
            serial,
            soa,
            records: Arc::new(records),
        }
    }

    #[test]
    fn versions_survive_the_file_and_differences_are_set_differences() {
        let origin = Name::from_ascii("k8s.example.com.").unwrap();
        let mut versions = Versions::new();
        versions.insert(
            origin.clone(),
            vec![
                version(1, &[[192, 0, 2, 10], [192, 0, 2, 11]]),
                version(2, &[[192, 0, 2, 11], [192, 0, 2, 12]]),
            ],
        );
        let bytes = encode(&versions);
        let read = decode(&bytes).expect("reads back");
        assert_eq!(read, versions);
        assert!(decode(&bytes[..bytes.len() - 1]).is_none());
        assert!(decode(b"something else").is_none());

        let history = History {
            versions: ArcSwap::from_pointee(read),
            path: None,
        };
        let difference = history
            .difference(&origin, 1, 2)
            .expect("both serials kept");
        let text = |records: &[Record]| -> Vec<String> {
            records.iter().map(|r| r.data.to_string()).collect()
        };
        assert_eq!(text(&difference.deleted), ["192.0.2.10"]);
        assert_eq!(text(&difference.added), ["192.0.2.12"]);
        assert!(history.difference(&origin, 0, 2).is_none());
    }
}
