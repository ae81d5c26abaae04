//! The copy of each secondary zone kept in `state_dir/secondary/`, as an RFC 1035 master file an
//! operator can read (and `named-checkzone` can check). It is written only after a complete,
//! verified transfer that the writer put in force, atomically (a temporary file, fsync, rename),
//! so that a crash leaves the previous copy or the new one, never a part. Its modification time
//! is when the primary last answered: a refresh that finds the serial unchanged touches it, and
//! a restart counts the SOA's expire from it.

use std::fs::{self, File};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::txt::Parser;

use crate::transfer::incoming::ZoneCopy;

/// The directory inside `state_dir`.
pub const DIRECTORY: &str = "secondary";

/// Where the copy of `origin` lives: `state_dir/secondary/k8s.example.com.zone`.
pub fn copy_path(state_dir: &Path, origin: &Name) -> PathBuf {
    let text = origin.to_string();
    let mut name: String = text
        .trim_end_matches('.')
        .chars()
        .map(|c| if c == '/' || c == '\\' { '_' } else { c })
        .collect();
    if name.is_empty() {
        name = "root".to_string();
    }
    state_dir.join(DIRECTORY).join(format!("{name}.zone"))
}

/// A copy read back, and when the primary last answered for it.
#[derive(Debug, Clone)]
pub struct Kept {
    pub copy: ZoneCopy,
    pub last_success: SystemTime,
}

/// The copy of `origin` kept in `state_dir`, if there is a readable one (a damaged copy is
/// logged and ignored: the primary sends a whole new one).
pub fn load(state_dir: &Path, origin: &Name) -> Option<Kept> {
    let path = copy_path(state_dir, origin);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => {
            tracing::warn!(file = %path.display(), %error, "cannot read the secondary copy; waiting for the primary");
            return None;
        }
    };
    let last_success = fs::metadata(&path)
        .and_then(|meta| meta.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    match read(&text, origin) {
        Ok(copy) => Some(Kept { copy, last_success }),
        Err(error) => {
            tracing::warn!(file = %path.display(), %error, "the secondary copy does not read; waiting for the primary");
            None
        }
    }
}

/// Reads a copy written by [`write`]. A copy is self-contained: `$INCLUDE`, which [`write`]
/// never writes, is refused rather than followed (it would read any file the server can).
pub fn read(text: &str, origin: &Name) -> Result<ZoneCopy, String> {
    if text.to_ascii_lowercase().contains("$include") {
        return Err("a kept copy has no $INCLUDE".to_string());
    }
    let (_, rrsets) = Parser::new(text, None, Some(origin.clone()))
        .parse()
        .map_err(|error| error.to_string())?;
    // What a transfer lets in, a copy read back lets in: one SOA, at the apex, and every other
    // record inside the zone (`transfer::incoming` refuses the rest on the wire).
    let mut soa = None;
    let mut records = Vec::new();
    for rrset in rrsets.into_values() {
        for record in rrset.into_iter() {
            if !origin.zone_of(&record.name) {
                return Err(format!("{} is outside the zone", record.name));
            }
            if record.record_type() != RecordType::SOA {
                records.push(record);
            } else if &record.name != origin {
                return Err(format!("an SOA record at {}, below the apex", record.name));
            } else if soa.replace(record).is_some() {
                return Err("more than one SOA record".to_string());
            }
        }
    }
    let soa = soa.ok_or("no SOA record at the apex")?;
    ZoneCopy::new(origin.clone(), soa, records).ok_or_else(|| "no SOA record".to_string())
}

/// The copy as a master file: a comment saying what it is, the SOA, then every record.
pub fn render(copy: &ZoneCopy, primary: SocketAddr) -> String {
    let mut text = format!(
        "; apidns secondary copy of {} from {primary}, serial {}\n; written after a complete transfer; do not edit (the next transfer replaces it)\n$ORIGIN .\n{}\n",
        copy.origin,
        copy.serial(),
        copy.soa
    );
    for record in &copy.records {
        text.push_str(&presentation(record));
        text.push('\n');
    }
    text
}

/// A record in master-file syntax. hickory's `Display` writes TXT strings bare, which does not
/// read back (a space splits a string); they are quoted here, with RFC 1035 escapes.
fn presentation(record: &Record) -> String {
    let RData::TXT(txt) = &record.data else {
        return record.to_string();
    };
    let mut text = format!("{} {} {} TXT", record.name, record.ttl, record.dns_class);
    for string in txt.txt_data.iter() {
        text.push_str(" \"");
        for &byte in string.iter() {
            match byte {
                b'"' | b'\\' => {
                    text.push('\\');
                    text.push(char::from(byte));
                }
                0x20..=0x7e => text.push(char::from(byte)),
                _ => text.push_str(&format!("\\{byte:03}")),
            }
        }
        text.push('"');
    }
    text
}

/// Writes `copy` atomically: a temporary file beside it, fsync, rename, fsync of the directory.
pub fn write(state_dir: &Path, copy: &ZoneCopy, primary: SocketAddr) -> std::io::Result<()> {
    let path = copy_path(state_dir, &copy.origin);
    let directory = path.parent().unwrap_or(state_dir);
    fs::create_dir_all(directory)?;
    let text = render(copy, primary);
    // A copy that would not read back as it is is not worth keeping over the last one.
    match read(&text, &copy.origin) {
        Ok(read) if read == *copy => {}
        Ok(_) => {
            return Err(std::io::Error::other(
                "the copy would not read back as it is (record data the master-file syntax loses)",
            ));
        }
        Err(error) => {
            return Err(std::io::Error::other(format!(
                "the copy would not read back: {error}"
            )));
        }
    }
    let temporary = path.with_extension("zone.tmp");
    {
        let mut file = File::create(&temporary)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
    }
    fs::rename(&temporary, &path)?;
    File::open(directory)?.sync_all()
}

/// Marks the copy of `origin` as confirmed by the primary now (its serial was current).
pub fn touch(state_dir: &Path, origin: &Name) -> std::io::Result<()> {
    let path = copy_path(state_dir, origin);
    File::options()
        .write(true)
        .open(path)?
        .set_modified(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use hickory_proto::rr::rdata::{A, NS, SOA, SRV, TXT};

    use super::*;

    fn name(text: &str) -> Name {
        Name::from_str(text).expect("a name")
    }

    #[test]
    fn a_copy_with_what_no_transfer_lets_in_does_not_read() {
        let origin = name("k8s.example.com.");
        let head = "$ORIGIN .\nk8s.example.com. 60 IN SOA ns1.k8s.example.com. h.example. 41 3600 600 86400 5\n";
        // The first was found by the `secondary` fuzz target: a name outside the zone.
        let cases = [
            (
                "www.k8s.examp1d2hom. 60 IN CNAME api.k8s.example.com.\n",
                "outside the zone",
            ),
            (
                "api.k8s.example.com. 60 IN SOA a. b. 1 2 3 4 5\n",
                "below the apex",
            ),
            (
                "k8s.example.com. 60 IN SOA a. b. 1 2 3 4 5\n",
                "SOA is already specified", // hickory's parser refuses a second SOA itself
            ),
            ("$INCLUDE /etc/passwd\n", "no $INCLUDE"),
        ];
        for (tail, why) in cases {
            let error = read(&format!("{head}{tail}"), &origin).unwrap_err();
            assert!(error.contains(why), "{tail}: {error}");
        }
        let fine = read(
            &format!("{head}api.k8s.example.com. 5 IN A 192.0.2.10\n"),
            &origin,
        )
        .expect("a copy");
        assert_eq!(fine.serial(), 41);
    }

    #[test]
    fn a_copy_reads_back_as_written() {
        let directory =
            std::env::temp_dir().join(format!("apidns-secondary-{}", std::process::id()));
        let _ = fs::remove_dir_all(&directory);
        let origin = name("k8s.example.com.");
        let soa = Record::from_rdata(
            origin.clone(),
            300,
            RData::SOA(SOA::new(
                name("ns1.k8s.example.com."),
                name("h.example."),
                7,
                60,
                10,
                600,
                5,
            )),
        );
        let records = vec![
            Record::from_rdata(
                origin.clone(),
                300,
                RData::NS(NS(name("ns1.k8s.example.com."))),
            ),
            Record::from_rdata(
                name("api.k8s.example.com."),
                5,
                RData::A(A([192, 0, 2, 10].into())),
            ),
            Record::from_rdata(
                name("_https._tcp.api.k8s.example.com."),
                5,
                RData::SRV(SRV::new(
                    0,
                    10,
                    6443,
                    name("ip-192-0-2-10.api.k8s.example.com."),
                )),
            ),
            Record::from_rdata(
                name("t.k8s.example.com."),
                60,
                RData::TXT(TXT::new(vec![
                    "v=spf1 -all".to_string(),
                    "a \"quoted\" part".to_string(),
                ])),
            ),
        ];
        let copy = ZoneCopy::new(origin.clone(), soa, records).expect("a copy");
        let primary = "127.0.0.1:5300".parse().unwrap();
        write(directory.as_path(), &copy, primary).expect("written");
        let kept = load(directory.as_path(), &origin).expect("read back");
        assert_eq!(kept.copy, copy);
        assert_eq!(kept.copy.serial(), 7);
        assert!(
            copy_path(directory.as_path(), &origin).ends_with("secondary/k8s.example.com.zone")
        );
        touch(directory.as_path(), &origin).expect("touched");
        assert!(load(directory.as_path(), &name("other.example.")).is_none());
        fs::write(copy_path(directory.as_path(), &origin), "not a zone (\n").expect("damage");
        assert!(load(directory.as_path(), &origin).is_none());
        let _ = fs::remove_dir_all(&directory);
    }
}
