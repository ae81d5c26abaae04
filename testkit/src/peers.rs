//! Real DNS servers as apidns's peers: Debian's Knot (`knotd`) and BIND (`named`) started as
//! secondaries of an apidns zone on loopback high ports, with their configuration in a scratch
//! directory, and `dig` to transfer a zone from any of them. Each is stopped on drop.

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

/// A secondary server (Knot or BIND) on 127.0.0.1, killed on drop.
pub struct Secondary {
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

impl Secondary {
    /// A port for a secondary that starts later (its address goes in apidns's `notify` list).
    pub fn reserve_port() -> u16 {
        free_port()
    }

    /// `knotd` as a secondary of `of` on `port`: it takes NOTIFY and gives transfers only when
    /// signed with the key.
    pub fn knot(of: &SecondaryOf, port: u16) -> Self {
        let program = system_program("knotd").expect("knotd: apt-get install knot");
        let dir = TempDir::new("knot-secondary");
        let root = dir.path().display().to_string();
        let config = dir.write("knot.conf", &knot_config(of, port, &root));
        Self::spawn("knotd", program, &["-c"], config, dir, port)
    }

    /// `named` as a secondary of `of` on `port`: it takes NOTIFY from the primary's address and
    /// gives transfers only when signed with the key.
    pub fn bind(of: &SecondaryOf, port: u16) -> Self {
        let program = system_program("named").expect("named: apt-get install bind9");
        let dir = TempDir::new("bind-secondary");
        let root = dir.path().display().to_string();
        let config = dir.write("named.conf", &bind_config(of, port, &root));
        // -g: foreground, log to stderr; -n 1: one worker thread on a shared machine.
        Self::spawn(
            "named",
            program,
            &["-g", "-n", "1", "-c"],
            config,
            dir,
            port,
        )
    }

    fn spawn(
        kind: &'static str,
        program: PathBuf,
        args: &[&str],
        config: PathBuf,
        dir: TempDir,
        port: u16,
    ) -> Self {
        let log = dir.path().join(format!("{kind}.log"));
        let log_file = std::fs::File::create(&log).expect("create the peer's log");
        let child = Command::new(program)
            .args(args)
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

impl Drop for Secondary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
