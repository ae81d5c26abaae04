//! The real server: starts the `apidns` binary on ephemeral loopback ports with a configuration
//! written to a temporary directory, reads its log, signals it and waits for it to exit.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a test waits for the server to start, or for one reply.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// A scratch directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("apidns-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(path.join("zones")).expect("create temp dir");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.0.join(relative);
        std::fs::write(&path, text).expect("write test file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Configuration for one test server.
pub struct ServerSpec {
    /// `[server]` lines besides `listen`, e.g. `tcp_idle_timeout = "300ms"`.
    pub server_extra: String,
    /// The whole `[probe]` table body, if any.
    pub probe: String,
    /// Zone files: (file name, contents).
    pub zones: Vec<(String, String)>,
    /// Listen on ::1 too.
    pub ipv6: bool,
    /// Extra arguments after `serve --config FILE`.
    pub args: Vec<String>,
}

impl ServerSpec {
    pub fn zone(zone_toml: &str) -> Self {
        Self {
            server_extra: String::new(),
            probe: String::new(),
            zones: vec![("k8s.example.com.toml".to_string(), zone_toml.to_string())],
            ipv6: false,
            args: Vec::new(),
        }
    }
}

/// A running `apidns serve`, killed on drop.
pub struct TestServer {
    child: Child,
    pub dir: TempDir,
    pub config: PathBuf,
    /// Bound DNS addresses, as the server logged them.
    pub addresses: Vec<SocketAddr>,
    /// The HTTP endpoint, when the configuration has `http`.
    pub http: Option<SocketAddr>,
    logs: Arc<Mutex<Vec<String>>>,
}

/// The `apidns` binary cargo built next to the test or bench executable running now
/// (`target/<profile>/deps/<test>-<hash>` → `target/<profile>/apidns`); `APIDNS_BIN` overrides.
/// Cargo builds a package's binaries before its integration tests and benches, but only the
/// test crate itself sees `CARGO_BIN_EXE_apidns`, so the kit finds it by this path.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("APIDNS_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the path of the running test");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps");
    let path = profile_dir.join("apidns");
    assert!(
        path.exists(),
        "{} is missing: run through cargo test / cargo bench, or set APIDNS_BIN",
        path.display()
    );
    path
}

impl TestServer {
    pub fn start(spec: ServerSpec) -> Self {
        let dir = TempDir::new("server");
        let mut listen = vec!["\"127.0.0.1:0\"".to_string()];
        if spec.ipv6 {
            listen.push("\"[::1]:0\"".to_string());
        }
        let main = format!(
            "[server]\nlisten = [{}]\nzones = \"zones\"\n{}\n[probe]\n{}\n",
            listen.join(", "),
            spec.server_extra,
            spec.probe
        );
        let config = dir.write("apidns.toml", &main);
        for (name, text) in &spec.zones {
            dir.write(&format!("zones/{name}"), text);
        }
        Self::start_with(dir, config, &spec.args)
    }

    /// Starts the binary on an existing configuration.
    pub fn start_with(dir: TempDir, config: PathBuf, args: &[String]) -> Self {
        // Info unless the caller asks for another level.
        let level: &[&str] = if args.iter().any(|arg| arg == "--log-level") {
            &[]
        } else {
            &["--log-level", "info"]
        };
        let mut child = Command::new(binary())
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .args(level)
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start apidns");
        let stderr = child.stderr.take().expect("stderr is piped");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (lines_tx, lines_rx) = mpsc::channel();
        {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    logs.lock().unwrap().push(line.clone());
                    let _ = lines_tx.send(line);
                }
            });
        }
        let mut addresses = Vec::new();
        let mut http = None;
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match lines_rx.recv_timeout(remaining) {
                Ok(line) if line.contains("listening on udp and tcp") => {
                    let address = line
                        .split_whitespace()
                        .find_map(|word| word.strip_prefix("address="))
                        .and_then(|a| a.parse().ok())
                        .expect("listening line carries address=");
                    addresses.push(address);
                }
                Ok(line) if line.contains("http endpoint on") => {
                    http = line
                        .split_whitespace()
                        .find_map(|word| word.strip_prefix("address="))
                        .and_then(|a| a.parse().ok());
                }
                Ok(line) if line.contains(" serving ") => break,
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "apidns did not start; its log:\n{}",
                        logs.lock().unwrap().join("\n")
                    );
                }
            }
        }
        Self {
            child,
            dir,
            config,
            addresses,
            http,
            logs,
        }
    }

    /// The first (IPv4 loopback) DNS address.
    pub fn addr(&self) -> SocketAddr {
        self.addresses[0]
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Waits until a log line satisfies `predicate`.
    pub fn wait_for_log(
        &self,
        timeout: Duration,
        predicate: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(line) = self.logs().into_iter().find(|l| predicate(l)) {
                return Some(line);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Makes the server write a line after everything it has written so far (the "configuration
    /// reloaded" of a SIGHUP reload) and waits until that line has been read. Afterwards
    /// [`TestServer::logs`] holds every line written before the call, so a test can check that a
    /// line is absent without a fixed sleep.
    pub fn sync_logs(&self) {
        let reloads = || {
            self.logs()
                .iter()
                .filter(|line| line.contains("configuration reloaded"))
                .count()
        };
        let before = reloads();
        self.signal("HUP");
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while reloads() <= before {
            assert!(
                Instant::now() < deadline,
                "no reload line after SIGHUP; the log:\n{}",
                self.logs().join("\n")
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Every line the server wrote before this call (see [`TestServer::sync_logs`]): for checking
    /// a log line right after the event it reports, which the reader thread may not have read.
    pub fn synced_logs(&self) -> Vec<String> {
        self.sync_logs();
        self.logs()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` ("TERM", "INT", "HUP" or "KILL") to the server.
    pub fn signal(&self, signal: &str) {
        let number = match signal {
            "TERM" => libc::SIGTERM,
            "INT" => libc::SIGINT,
            "HUP" => libc::SIGHUP,
            "KILL" => libc::SIGKILL,
            other => panic!("unknown signal {other}"),
        };
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        let result = unsafe { libc::kill(self.pid() as libc::pid_t, number) };
        assert_eq!(result, 0, "kill -{signal} failed");
    }

    /// Waits for the process to exit, returning its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
