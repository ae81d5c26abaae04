//! Real DNS servers as apidns's peers: Debian's Knot (`knotd`) and BIND (`named`) started as
//! secondaries of an apidns zone ([`Secondary`]) or as primaries that an apidns secondary
//! transfers from ([`Primary`]), on loopback high ports, with their configuration in a scratch
//! directory; `dig` to transfer a zone from any of them and `nsupdate` to change one. Each is
//! stopped on drop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::client::free_port;
use crate::server::TempDir;

/// A TSIG key as both peers and `dig -y` spell it.
#[derive(Debug, Clone)]
pub struct PeerKey {
    pub name: String,
    /// `hmac-sha256`, ...
    pub algorithm: String,
    /// Base64.
    pub secret: String,
}

impl PeerKey {
    /// `dig -y` / `nsupdate -y` form: `algorithm:name:secret`.
    pub fn dig_arg(&self) -> String {
        format!("{}:{}:{}", self.algorithm, self.name, self.secret)
    }
}

/// What a secondary needs to know of its primary.
#[derive(Debug, Clone)]
pub struct SecondaryOf {
    /// The zone, absolute (`k8s.example.com.`).
    pub origin: String,
    pub primary: SocketAddr,
    pub key: PeerKey,
}

/// A program in PATH or in the system's sbin directories, where Debian puts daemons.
pub fn system_program(name: &str) -> Option<PathBuf> {
    let mut places: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    places.extend(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    places
        .into_iter()
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// A peer server process (Knot or BIND) on 127.0.0.1, its files in a scratch directory, killed
/// on drop: what a [`Secondary`] and a [`Primary`] are.
pub struct PeerProcess {
    /// `knotd` or `named`.
    pub kind: &'static str,
    pub address: SocketAddr,
    child: Child,
    pub dir: TempDir,
    /// Where its log goes.
    pub log: PathBuf,
    /// The configuration file it runs with, for the docs and for failure reports.
    pub config: PathBuf,
}

/// Which peer server a [`PeerProcess`] runs.
struct Daemon {
    program: &'static str,
    /// The Debian package that has it.
    package: &'static str,
    /// The arguments before the configuration file's path.
    args: &'static [&'static str],
    config_name: &'static str,
}

const KNOT: Daemon = Daemon {
    program: "knotd",
    package: "knot",
    args: &["-c"],
    config_name: "knot.conf",
};

const BIND: Daemon = Daemon {
    program: "named",
    package: "bind9",
    // -g: foreground, log to stderr; -n 1: one worker thread on a shared machine.
    args: &["-g", "-n", "1", "-c"],
    config_name: "named.conf",
};

impl PeerProcess {
    /// Runs `daemon` on `port` in a new scratch directory named after `tag`, with the
    /// configuration that `configure` writes there (it gets the directory and its path, and may
    /// write the zone file beside), its output in `<dir>/<program>.log`.
    fn start(
        daemon: &Daemon,
        tag: &str,
        port: u16,
        configure: impl FnOnce(&TempDir, &str) -> String,
    ) -> Self {
        let kind = daemon.program;
        let program = system_program(kind)
            .unwrap_or_else(|| panic!("{kind}: apt-get install {}", daemon.package));
        let dir = TempDir::new(tag);
        let root = dir.path().display().to_string();
        let text = configure(&dir, &root);
        let config = dir.write(daemon.config_name, &text);
        let log = dir.path().join(format!("{kind}.log"));
        let log_file = std::fs::File::create(&log).expect("create the peer's log");
        let child = Command::new(program)
            .args(daemon.args)
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|error| panic!("start {kind}: {error}"));
        Self {
            kind,
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
            dir,
            log,
            config,
        }
    }

    /// Its log so far, for a failure message.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A secondary server (Knot or BIND) of an apidns zone.
pub struct Secondary(PeerProcess);

impl std::ops::Deref for Secondary {
    type Target = PeerProcess;

    fn deref(&self) -> &PeerProcess {
        &self.0
    }
}

impl Secondary {
    /// A port for a secondary that starts later (its address goes in apidns's `notify` list).
    pub fn reserve_port() -> u16 {
        free_port()
    }

    /// `knotd` as a secondary of `of` on `port`: it takes NOTIFY and gives transfers only when
    /// signed with the key.
    pub fn knot(of: &SecondaryOf, port: u16) -> Self {
        Self(PeerProcess::start(
            &KNOT,
            "knot-secondary",
            port,
            |_, root| knot_config(of, port, root),
        ))
    }

    /// `named` as a secondary of `of` on `port`: it takes NOTIFY from the primary's address and
    /// gives transfers only when signed with the key.
    pub fn bind(of: &SecondaryOf, port: u16) -> Self {
        Self(PeerProcess::start(
            &BIND,
            "bind-secondary",
            port,
            |_, root| bind_config(of, port, root),
        ))
    }
}

/// Knot's configuration for a secondary of `of` on `port`, its files under `root`.
pub fn knot_config(of: &SecondaryOf, port: u16, root: &str) -> String {
    let SecondaryOf {
        origin,
        primary,
        key,
    } = of;
    format!(
        "server:
    listen: 127.0.0.1@{port}
    rundir: {root}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: {root}
log:
  - target: stderr
    any: info
key:
  - id: {name}
    algorithm: {algorithm}
    secret: {secret}
remote:
  - id: apidns
    address: {ip}@{primary_port}
    key: {name}
acl:
  - id: notify_from_apidns
    address: {ip}
    key: {name}
    action: notify
  - id: transfer_with_key
    key: {name}
    action: transfer
zone:
  - domain: {origin}
    master: apidns
    acl: [notify_from_apidns, transfer_with_key]
    file: {root}/secondary.zone
    zonefile-sync: -1
    journal-content: changes
",
        name = key.name,
        algorithm = key.algorithm,
        secret = key.secret,
        ip = primary.ip(),
        primary_port = primary.port(),
    )
}

/// BIND's configuration for a secondary of `of` on `port`, its files under `root`.
pub fn bind_config(of: &SecondaryOf, port: u16, root: &str) -> String {
    let SecondaryOf {
        origin,
        primary,
        key,
    } = of;
    format!(
        "options {{
    directory \"{root}\";
    pid-file \"{root}/named.pid\";
    session-keyfile \"{root}/session.key\";
    managed-keys-directory \"{root}\";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
    allow-transfer {{ key {name}; }};
    // BIND 9.18.28 and later refuse an RRset of more than 100 records by default (CVE-2024-1737):
    // a pool of more than 100 members would fail to transfer.
    max-records-per-type 0;
}};
controls {{ }};
key \"{name}\" {{
    algorithm {algorithm};
    secret \"{secret}\";
}};
zone \"{origin}\" {{
    type secondary;
    primaries {{ {ip} port {primary_port} key {name}; }};
    file \"{root}/secondary.db\";
}};
",
        name = key.name,
        algorithm = key.algorithm,
        secret = key.secret,
        ip = primary.ip(),
        primary_port = primary.port(),
    )
}

/// The zone `origin` transferred from `server` by `dig` (AXFR over TCP, signed with `key` when
/// given): every record as normalized text (one space between fields, lower case), sorted, the
/// closing SOA left out. `Err` with dig's words when the transfer fails.
pub fn axfr(
    server: SocketAddr,
    origin: &str,
    key: Option<&PeerKey>,
) -> Result<Vec<String>, String> {
    let mut command = Command::new("dig");
    command.args([
        format!("@{}", server.ip()),
        "-p".to_string(),
        server.port().to_string(),
        origin.to_string(),
        "AXFR".to_string(),
        "+noall".to_string(),
        "+answer".to_string(),
        "+onesoa".to_string(),
        "+tries=1".to_string(),
        "+time=5".to_string(),
    ]);
    if let Some(key) = key {
        command.args(["-y".to_string(), key.dig_arg()]);
    }
    let output = command.output().map_err(|error| format!("dig: {error}"))?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() || text.contains("Transfer failed") || text.trim().is_empty() {
        return Err(format!(
            "{}{}",
            text,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let mut records: Vec<String> = text
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with(';'))
        .map(|line| {
            line.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_ascii_lowercase()
        })
        .collect();
    records.sort();
    Ok(records)
}

/// The SOA serial `server` answers for `origin` (UDP), if it answers one.
pub fn soa_serial(server: SocketAddr, origin: &str) -> Option<u32> {
    let output = Command::new("dig")
        .args([
            format!("@{}", server.ip()),
            "-p".to_string(),
            server.port().to_string(),
            origin.to_string(),
            "SOA".to_string(),
            "+short".to_string(),
            // A busy test machine can drop a datagram: ask again rather than report no serial.
            "+tries=3".to_string(),
            "+time=2".to_string(),
        ])
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

/// A zone a primary (Knot) serves, for apidns to transfer as a secondary.
#[derive(Debug, Clone)]
pub struct PrimaryZone {
    /// The zone, absolute (`k8s.example.com.`).
    pub origin: String,
    /// The zone file's text (with `$ORIGIN`, or absolute names).
    pub zone_file: String,
    /// The key that transfers and updates (nsupdate) must be signed with.
    pub key: PeerKey,
    /// Secondaries the primary sends a NOTIFY to (signed with `key`) when the zone changes.
    pub notify: Vec<SocketAddr>,
}

/// A primary server (Knot) on 127.0.0.1 serving one zone from a file, transfers (AXFR, and
/// IXFR from its journal of updates) and updates allowed only when signed with the zone's
/// key; killed on drop.
pub struct Primary(PeerProcess);

impl std::ops::Deref for Primary {
    type Target = PeerProcess;

    fn deref(&self) -> &PeerProcess {
        &self.0
    }
}

impl Primary {
    /// `knotd` as the primary of `zone` on `port`. It is started, not yet answering: wait for
    /// [`soa_serial`] to answer before using it.
    pub fn knot(zone: &PrimaryZone, port: u16) -> Self {
        Self(PeerProcess::start(
            &KNOT,
            "knot-primary",
            port,
            |dir, root| {
                dir.write("primary.zone", &zone.zone_file);
                knot_primary_config(zone, port, root)
            },
        ))
    }

    /// `named` as the primary of `zone` on `port`, likewise: updates go to its journal, which
    /// IXFR answers from, however large the difference.
    pub fn bind(zone: &PrimaryZone, port: u16) -> Self {
        Self::bind_with(zone, port, "max-ixfr-ratio unlimited;")
    }

    /// [`Primary::bind`] with `zone_options` in its `zone` statement. BIND's default
    /// `max-ixfr-ratio 100%;` answers an IXFR whose difference is larger than the zone with the
    /// whole zone (AXFR-style, as RFC 1995 section 4 allows): a small zone always is.
    pub fn bind_with(zone: &PrimaryZone, port: u16, zone_options: &str) -> Self {
        Self(PeerProcess::start(
            &BIND,
            "bind-primary",
            port,
            |dir, root| {
                dir.write("primary.db", &zone.zone_file);
                bind_primary_config(zone, port, root, zone_options)
            },
        ))
    }
}

/// Knot's configuration for the primary of `zone` on `port`, its files under `root`: the zone
/// file is read once and never rewritten, updates go to the journal, which keeps the changes
/// IXFR answers from.
pub fn knot_primary_config(zone: &PrimaryZone, port: u16, root: &str) -> String {
    let PrimaryZone {
        origin,
        key,
        notify,
        ..
    } = zone;
    // Each secondary to notify is a remote, signed with the zone's key.
    let (remotes, notify_line) = if notify.is_empty() {
        (String::new(), String::new())
    } else {
        let remotes: String = notify
            .iter()
            .enumerate()
            .map(|(index, address)| {
                format!(
                    "  - id: secondary{index}\n    address: {}@{}\n    key: {}\n",
                    address.ip(),
                    address.port(),
                    key.name
                )
            })
            .collect();
        let ids: Vec<String> = (0..notify.len())
            .map(|index| format!("secondary{index}"))
            .collect();
        (
            format!("remote:\n{remotes}"),
            format!("    notify: [{}]\n", ids.join(", ")),
        )
    };
    format!(
        "server:
    listen: 127.0.0.1@{port}
    rundir: {root}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: {root}
log:
  - target: stderr
    any: info
key:
  - id: {name}
    algorithm: {algorithm}
    secret: {secret}
{remotes}acl:
  - id: transfer_and_update_with_key
    key: {name}
    action: [transfer, update]
zone:
  - domain: {origin}
    file: {root}/primary.zone
    acl: [transfer_and_update_with_key]
    zonefile-sync: -1
    journal-content: changes
{notify_line}",
        name = key.name,
        algorithm = key.algorithm,
        secret = key.secret,
    )
}

/// Runs `nsupdate -y key` with `commands` against `server`; `Err` with its words unless it
/// succeeds.
pub fn nsupdate(server: SocketAddr, key: &PeerKey, commands: &str) -> Result<(), String> {
    use std::io::Write;
    let mut child = Command::new("nsupdate")
        .args(["-y", &key.dig_arg(), "-t", "10"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("nsupdate (apt-get install bind9-dnsutils): {error}"))?;
    let script = format!(
        "server {} {}\n{commands}\nsend\n",
        server.ip(),
        server.port()
    );
    child
        .stdin
        .take()
        .ok_or("nsupdate's stdin")?
        .write_all(script.as_bytes())
        .map_err(|error| format!("nsupdate's stdin: {error}"))?;
    let output = child
        .wait_with_output()
        .map_err(|error| format!("nsupdate: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// BIND's configuration for the primary of `zone` on `port`, its files under `root`, with
/// `zone_options` in the `zone` statement.
pub fn bind_primary_config(
    zone: &PrimaryZone,
    port: u16,
    root: &str,
    zone_options: &str,
) -> String {
    let PrimaryZone { origin, key, .. } = zone;
    format!(
        "options {{
    directory \"{root}\";
    pid-file \"{root}/named.pid\";
    session-keyfile \"{root}/session.key\";
    managed-keys-directory \"{root}\";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
}};
controls {{ }};
key \"{name}\" {{
    algorithm {algorithm};
    secret \"{secret}\";
}};
zone \"{origin}\" {{
    type primary;
    file \"{root}/primary.db\";
    allow-transfer {{ key {name}; }};
    allow-update {{ key {name}; }};
    {zone_options}
}};
",
        name = key.name,
        algorithm = key.algorithm,
        secret = key.secret,
    )
}
