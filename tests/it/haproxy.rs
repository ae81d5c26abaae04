//! A node-local HAProxy that discovers its backends from apidns (issue 13): Debian's real
//! `haproxy`, in TCP mode, with its `resolvers` section pointed at the real apidns binary and
//! `server-template` on the pool's SRV name (and, in a second test, on its address name). The
//! backends are stand-in API servers speaking HTTPS with certificates made here; the client is
//! curl, through HAProxy, as kubelet would connect to 127.0.0.1:6443 on a node.
//!
//! HAProxy's own health checks are off: what is tested is that HAProxy follows apidns' answers.
//! A backend that dies leaves HAProxy's rotation within its resolver timers, with no failed
//! request; a node added to the zone file joins it without a restart of HAProxy; and HAProxy
//! keeps its servers when apidns stops answering.
//!
//! `haproxy` and `curl` must be installed (`.ci/run` installs them); the tests fail, and say so,
//! when they are not.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use testkit::https::{ApiServer, Authority, Identity};
use testkit::*;

const SRV_NAME: &str = "_https._tcp.api.k8s.example.com";
/// The frontend and backend in the HAProxy configuration.
const PROXY: &str = "kube-apiserver";
/// Upper bound for HAProxy to follow a change in apidns' answers. It asks every second
/// (`timeout resolve 1s`) and drops a missing record at once (`hold obsolete 0s`), so about
/// 1.5 s is expected; the bound is generous for a busy machine.
const FOLLOW_LIMIT: Duration = Duration::from_secs(15);
/// Most requests needed to see every live backend with `balance roundrobin`.
const SPREAD_REQUESTS: usize = 10;

/// What differs between the tested configuration and the one for a node (README.md).
struct Site {
    /// The frontend's address: 127.0.0.1:6443 on a node.
    bind: String,
    /// The apidns instances, address:port.
    nameservers: Vec<String>,
    /// The `log` target: `/dev/log` on a node, stderr in the test.
    log: String,
    /// The runtime API socket.
    stats_socket: String,
    /// `server-template`'s name: the SRV name, or the address name with a port.
    discover: String,
}

impl Site {
    /// The configuration README.md shows, for a node whose resolvers are ns1 and ns2.
    fn node() -> Self {
        Self {
            bind: "127.0.0.1:6443".to_string(),
            nameservers: vec!["192.0.2.53:53".to_string(), "192.0.2.54:53".to_string()],
            log: "/dev/log".to_string(),
            stats_socket: "/run/haproxy/admin.sock".to_string(),
            discover: SRV_NAME.to_string(),
        }
    }

    fn config(&self) -> String {
        let nameservers: String = self
            .nameservers
            .iter()
            .enumerate()
            .map(|(i, address)| format!("    nameserver apidns{} {address}\n", i + 1))
            .collect();
        format!(
            "\
# Node-local load balancer for the Kubernetes API server: kubelet and kube-proxy connect to
# {bind}; HAProxy passes the TCP stream (TLS stays end to end) to an API server that
# apidns answers as alive. HAProxy's own health checks are off (no `check`): apidns probes.
global
    log {log} local0 info
    stats socket {stats} mode 600 level admin

resolvers apidns
{nameservers}    # apidns' UDP limit: the SRV records of about 25 members fit, with their addresses about
    # 18. HAProxy counts a truncated answer as an error and does not retry over TCP; with
    # its default, 512, a pool of 10 members already gets no server at all.
    accepted_payload_size 1232
    # Ask every second: a change in apidns' answer reaches HAProxy within 1 s.
    timeout resolve 1s
    # A query with no answer is sent again after 1 s; 3 unanswered ones make a timeout.
    timeout retry 1s
    resolve_retries 3
    # A resolution triggered out of turn reuses an answer at most 1 s old.
    hold valid 1s
    # A record missing from the latest answer is dropped at once: apidns left it out because
    # the member is down or drained.
    hold obsolete 0s
    # NXDOMAIN, REFUSED or a malformed or truncated answer: keep the servers from the last
    # good answer for 30 s (a pool removed by mistake does not empty every node at once).
    hold nx 30s
    hold refused 30s
    hold other 30s
    # No answer at all (apidns unreachable): keep them for 5 minutes; the API servers are
    # probably still there.
    hold timeout 5m

defaults
    mode tcp
    log global
    option tcplog
    timeout connect 2s
    # Watches stay open for minutes; client-go pings its HTTP/2 connection every 30 s.
    timeout client 10m
    timeout server 10m
    # A connection refused by an API server that died a moment ago, before apidns and then
    # HAProxy dropped it, is retried on another server.
    retries 2
    option redispatch 1

frontend {proxy}
    bind {bind}
    default_backend {proxy}

backend {proxy}
    balance roundrobin
    # Up to 8 API servers. `init-addr none`: start with no address and take every address
    # from apidns, never from the system resolver (or /etc/hosts).
    server-template cp 8 {discover} resolvers apidns resolve-prefer ipv4 init-addr none
",
            bind = self.bind,
            log = self.log,
            stats = self.stats_socket,
            proxy = PROXY,
            discover = self.discover,
        )
    }
}

/// The haproxy binary: from PATH, or Debian's /usr/sbin/haproxy, which a user's PATH lacks.
fn haproxy_binary() -> &'static str {
    let in_path = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("haproxy").is_file()));
    if !in_path && Path::new("/usr/sbin/haproxy").is_file() {
        "/usr/sbin/haproxy"
    } else {
        "haproxy"
    }
}

/// Panics with an install hint unless `program VERSION_FLAG` runs.
fn require(program: &str, package: &str, version_flag: &str) {
    match Command::new(program).arg(version_flag).output() {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "`{program} {version_flag}` failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) => panic!(
            "cannot run `{program}` ({error}): install it with `apt-get install {package}` \
             (.ci/run installs it in CI); this test needs the real {program}"
        ),
    }
}

fn require_tools() {
    require(haproxy_binary(), "haproxy", "-v");
    require("curl", "curl", "--version");
}

/// One server slot of HAProxy's backend, from `show servers state`.
#[derive(Debug)]
struct Slot {
    address: Option<SocketAddr>,
    fqdn: String,
    /// Running and in no maintenance mode: HAProxy sends new connections to it.
    active: bool,
}

/// `haproxy -db -f CFG` in the foreground, killed on drop.
struct Haproxy {
    child: Child,
    socket: PathBuf,
    /// The frontend's port on 127.0.0.1.
    port: u16,
    logs: Arc<Mutex<Vec<String>>>,
    _dir: TempDir,
}

impl Haproxy {
    /// Starts HAProxy in front of servers discovered through `discover` from the apidns
    /// instance at `apidns`.
    fn start(apidns: SocketAddr, discover: &str) -> Self {
        let mut failures = Vec::new();
        // The frontend's port was free a moment before HAProxy binds it; try another if not.
        for _ in 0..3 {
            match Self::try_start(apidns, discover) {
                Ok(haproxy) => return haproxy,
                Err(log) => failures.push(log),
            }
        }
        panic!("haproxy did not start:\n{}", failures.join("\n---\n"));
    }

    fn try_start(apidns: SocketAddr, discover: &str) -> Result<Self, String> {
        let dir = TempDir::new("haproxy");
        let port = free_port();
        let socket = dir.path().join("haproxy.sock");
        let site = Site {
            bind: format!("127.0.0.1:{port}"),
            nameservers: vec![apidns.to_string()],
            log: "stderr format raw".to_string(),
            stats_socket: socket.display().to_string(),
            discover: discover.to_string(),
        };
        let config = dir.write("haproxy.cfg", &site.config());
        let mut child = Command::new(haproxy_binary())
            .arg("-db")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| format!("cannot start haproxy: {error}"))?;
        let logs = Arc::new(Mutex::new(Vec::new()));
        {
            let stderr = child.stderr.take().expect("stderr is piped");
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    logs.lock().unwrap().push(line);
                }
            });
        }
        let mut haproxy = Self {
            child,
            socket,
            port,
            logs,
            _dir: dir,
        };
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = haproxy.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100)); // let the log thread finish
                return Err(format!(
                    "haproxy exited ({status}):\n{}",
                    haproxy.log_text()
                ));
            }
            if haproxy.try_command("show info").is_some() {
                return Ok(haproxy);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "haproxy's runtime API did not answer within {STARTUP_TIMEOUT:?}:\n{}",
            haproxy.log_text()
        ))
    }

    fn log_text(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics unless the process is still the one started, never restarted or reloaded.
    fn assert_same_process(&mut self) {
        assert!(
            matches!(self.child.try_wait(), Ok(None)),
            "haproxy exited:\n{}",
            self.log_text()
        );
        let info = self.command("show info");
        let pid = info
            .lines()
            .find_map(|line| line.strip_prefix("Pid: "))
            .and_then(|pid| pid.trim().parse::<u32>().ok());
        assert_eq!(pid, Some(self.pid()), "the runtime API's Pid:\n{info}");
    }

    /// One runtime API command, or None when the socket does not answer.
    fn try_command(&self, command: &str) -> Option<String> {
        let mut stream = UnixStream::connect(&self.socket).ok()?;
        stream.set_read_timeout(Some(REPLY_TIMEOUT)).ok()?;
        stream.write_all(format!("{command}\n").as_bytes()).ok()?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply).ok()?;
        Some(reply)
    }

    fn command(&self, command: &str) -> String {
        self.try_command(command)
            .unwrap_or_else(|| panic!("runtime API: no answer to {command:?}"))
    }

    /// Queries HAProxy has sent to the `apidns` resolvers, from `show resolvers`.
    fn resolver_queries(&self) -> u64 {
        self.command("show resolvers apidns")
            .lines()
            .filter_map(|line| line.trim().strip_prefix("sent:"))
            .filter_map(|count| count.trim().parse::<u64>().ok())
            .sum()
    }

    /// The backend's server slots.
    fn slots(&self) -> Vec<Slot> {
        let state = self.command(&format!("show servers state {PROXY}"));
        let mut lines = state.lines().skip_while(|line| !line.starts_with("# "));
        let header: Vec<&str> = lines
            .next()
            .unwrap_or_else(|| panic!("no header in {state:?}"))
            .trim_start_matches("# ")
            .split_whitespace()
            .collect();
        let column = |name: &str| {
            header
                .iter()
                .position(|h| *h == name)
                .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
        };
        let (addr, op, admin, port, fqdn) = (
            column("srv_addr"),
            column("srv_op_state"),
            column("srv_admin_state"),
            column("srv_port"),
            column("srv_fqdn"),
        );
        lines
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let number = |i: usize| fields[i].parse::<u32>().unwrap_or(0);
                let address = fields[addr].parse::<IpAddr>().ok().map(|ip| {
                    SocketAddr::new(ip, fields[port].parse().expect("srv_port is a number"))
                });
                // SRV_ST_STOPPED is 0; SRV_ADMF_MAINT (0x23) covers forced, inherited and
                // resolution maintenance.
                let active = address.is_some() && number(op) != 0 && number(admin) & 0x23 == 0;
                Slot {
                    address,
                    fqdn: fields[fqdn].to_string(),
                    active,
                }
            })
            .collect()
    }

    /// The addresses HAProxy sends new connections to.
    fn active(&self) -> BTreeSet<SocketAddr> {
        self.slots()
            .into_iter()
            .filter(|slot| slot.active)
            .filter_map(|slot| slot.address)
            .collect()
    }

    /// The backend's connection errors, retries and redispatches, from `show stat`.
    fn attempts_failed(&self) -> u64 {
        let stat = self.command("show stat");
        let mut lines = stat.lines();
        let header: Vec<&str> = lines
            .next()
            .expect("show stat header")
            .trim_start_matches("# ")
            .split(',')
            .collect();
        let row: Vec<&str> = lines
            .map(|line| line.split(',').collect::<Vec<_>>())
            .find(|row| row.len() > 1 && row[0] == PROXY && row[1] == "BACKEND")
            .unwrap_or_else(|| panic!("no BACKEND row for {PROXY} in:\n{stat}"));
        ["econ", "wretr", "wredis"]
            .iter()
            .map(|name| {
                let i = header.iter().position(|h| h == name).expect("stat column");
                row.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
            })
            .sum()
    }

    /// Everything a failure message needs: the slots and the log.
    fn report(&self) -> String {
        format!(
            "haproxy slots: {:#?}\nhaproxy log:\n{}",
            self.slots(),
            self.log_text()
        )
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// curl through the local HAProxy, with the API name pinned to 127.0.0.1 as a node's
/// /etc/hosts would pin it, verifying the API server's certificate against the cluster CA.
struct Client {
    ca: PathBuf,
    port: u16,
}

impl Client {
    /// `GET /version`: the name of the API server that answered, or curl's error.
    fn version(&self) -> Result<String, String> {
        let output = Command::new("curl")
            .args(["--silent", "--show-error", "--fail", "--max-time", "5"])
            .arg("--cacert")
            .arg(&self.ca)
            .arg("--resolve")
            .arg(format!("{API_NAME}:{}:127.0.0.1", self.port))
            .arg(format!("https://{API_NAME}:{}/version", self.port))
            .output()
            .map_err(|error| format!("cannot run curl: {error}"))?;
        if !output.status.success() {
            return Err(format!(
                "curl exited with {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        let body = String::from_utf8_lossy(&output.stdout);
        body.split_once("\"server\":\"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(name, _)| name.to_string())
            .ok_or_else(|| format!("no server name in {body:?}"))
    }

    /// Up to `SPREAD_REQUESTS` requests, stopping once every one of `expected` has answered;
    /// panics on a failed request or an answer from another server.
    fn reaches_all(&self, expected: &[&str], context: &dyn Fn() -> String) -> usize {
        let mut seen = BTreeSet::new();
        for request in 1..=SPREAD_REQUESTS {
            let name = self
                .version()
                .unwrap_or_else(|error| panic!("request {request} failed: {error}\n{}", context()));
            assert!(
                expected.contains(&name.as_str()),
                "request {request} reached {name}, expected only {expected:?}\n{}",
                context()
            );
            seen.insert(name);
            if seen.len() == expected.len() {
                return request;
            }
        }
        panic!(
            "{SPREAD_REQUESTS} requests reached only {seen:?} of {expected:?}\n{}",
            context()
        );
    }
}

/// How HAProxy finds the API servers.
#[derive(Clone, Copy, Debug)]
enum Discovery {
    /// `server-template` on `_https._tcp.api.k8s.example.com`: addresses and ports from SRV.
    Srv,
    /// `server-template` on `api.k8s.example.com:PORT`: addresses from A, one port for all.
    Address,
}

/// Three stand-in API servers, cp1 to cp3, on `PREFIX.1` to `PREFIX.3`: each on its own free
/// port for SRV discovery, all on one port for address discovery.
fn backends(discovery: Discovery, prefix: &str, identity: &Identity) -> Vec<ApiServer> {
    let names = ["cp1", "cp2", "cp3"];
    let start = |port: u16| -> std::io::Result<Vec<ApiServer>> {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let ip: IpAddr = format!("{prefix}.{}", i + 1).parse().unwrap();
                ApiServer::https_named(SocketAddr::new(ip, port), name, identity)
            })
            .collect()
    };
    match discovery {
        Discovery::Srv => start(0).expect("bind the stand-in API servers"),
        Discovery::Address => {
            let mut errors = Vec::new();
            for _ in 0..10 {
                match start(free_port()) {
                    Ok(servers) => return servers,
                    Err(error) => errors.push(error.to_string()),
                }
            }
            panic!("no port free on all three addresses: {errors:?}");
        }
    }
}

/// The zone with the pool `api` of `members`, probed over HTTPS with the test CA: each member
/// with its own port for SRV discovery, one pool port for address discovery.
fn pool_zone(discovery: Discovery, members: &[&ApiServer]) -> String {
    let (port, addresses): (String, Vec<String>) = match discovery {
        Discovery::Srv => (String::new(), members.iter().map(|m| m.member()).collect()),
        Discovery::Address => (
            format!("port = {}\n", members[0].address.port()),
            members.iter().map(|m| m.ip()).collect(),
        ),
    };
    let members: String = members
        .iter()
        .zip(addresses)
        .map(|(server, address)| {
            format!(
                "  {{ name = \"{}\", address = \"{address}\" }},\n",
                server.name
            )
        })
        .collect();
    format!(
        "{ZONE_HEAD}\n[pool.api]\nttl = 5\n{port}probe = {{ kind = \"https\", ca_file = \"ca.crt\" }}\nmembers = [\n{members}]\n"
    )
}

/// What the scenario leaves running, for checks that follow it.
struct Scenario {
    apidns: TestServer,
    haproxy: Haproxy,
    client: Client,
    live: Vec<ApiServer>,
}

/// The checks common to both kinds of discovery; prints the measured times.
fn follow_apidns(discovery: Discovery, prefix: &str) -> Scenario {
    require_tools();
    let ca = Authority::new("apidns test cluster CA");
    let identity = ca.issue(&[API_NAME]);
    let mut servers = backends(discovery, prefix, &identity);
    let cp3 = servers.pop().unwrap();
    let cp2 = servers.pop().unwrap();
    let cp1 = servers.pop().unwrap();

    // cp3 runs from the start, but is not in the zone yet.
    let mut spec = ServerSpec::zone(&pool_zone(discovery, &[&cp1, &cp2]));
    spec.zones.push(("ca.crt".to_string(), ca.pem()));
    spec.probe = FAST_PROBE.to_string();
    let apidns = TestServer::start(spec);
    let ca_file = apidns.dir.write("client-ca.crt", &ca.pem());

    let discover = match discovery {
        Discovery::Srv => SRV_NAME.to_string(),
        Discovery::Address => format!("{API_NAME}:{}", cp1.address.port()),
    };
    let started = Instant::now();
    let mut haproxy = Haproxy::start(apidns.addr(), &discover);
    let client = Client {
        ca: ca_file,
        port: haproxy.port,
    };
    let context = |haproxy: &Haproxy, apidns: &TestServer| {
        format!(
            "{}\napidns log:\n{}",
            haproxy.report(),
            apidns.logs().join("\n")
        )
    };

    // Discovery at start-up: both members, from apidns alone.
    let both: BTreeSet<SocketAddr> = [cp1.address, cp2.address].into();
    if wait_every(FOLLOW_LIMIT, Duration::from_millis(50), || {
        haproxy.active() == both
    })
    .is_none()
    {
        panic!(
            "haproxy did not discover cp1 and cp2\n{}",
            context(&haproxy, &apidns)
        )
    }
    let discovered = started.elapsed();
    if let Discovery::Srv = discovery {
        let mut fqdns: Vec<String> = haproxy
            .slots()
            .into_iter()
            .filter(|slot| slot.active)
            .map(|slot| slot.fqdn)
            .collect();
        fqdns.sort();
        assert_eq!(
            fqdns,
            ["cp1.api.k8s.example.com", "cp2.api.k8s.example.com"],
            "SRV targets are the member names"
        );
    }
    let requests = client.reaches_all(&["cp1", "cp2"], &|| context(&haproxy, &apidns));
    assert_eq!(cp3.requests("/version"), 0, "cp3 is not in the zone yet");

    // An API server dies. apidns drops it; HAProxy follows within its resolver timers.
    // Requests go on meanwhile, and none fails: a connection refused by the dead server is
    // redispatched to the live one.
    let dead = cp2.kill();
    let killed = Instant::now();
    let member = format!("member={dead} ");
    let mut apidns_down = None;
    let mut failures = Vec::new();
    let mut during = 0;
    let removed = wait_every(FOLLOW_LIMIT, Duration::from_millis(50), || {
        if apidns_down.is_none()
            && apidns
                .logs()
                .iter()
                .any(|line| line.contains("member down") && line.contains(&member))
        {
            apidns_down = Some(killed.elapsed());
        }
        during += 1;
        if let Err(error) = client.version() {
            failures.push(error);
        }
        !haproxy.active().contains(&dead)
    })
    .unwrap_or_else(|| {
        panic!(
            "haproxy still uses the dead cp2 {FOLLOW_LIMIT:?} after it died\n{}",
            context(&haproxy, &apidns)
        )
    });
    // apidns logs the transition before it answers without cp2; the log is read by a thread.
    let apidns_down = apidns_down.unwrap_or_else(|| {
        apidns
            .wait_for_log(Duration::from_secs(2), |line| {
                line.contains("member down") && line.contains(&member)
            })
            .map(|_| killed.elapsed())
            .unwrap_or_else(|| {
                panic!(
                    "haproxy dropped cp2, but apidns never logged it down\n{}",
                    context(&haproxy, &apidns)
                )
            })
    });
    assert!(
        failures.is_empty(),
        "{} of {during} requests failed while cp2 was dying: {failures:?}\n{}",
        failures.len(),
        context(&haproxy, &apidns)
    );
    // From now on HAProxy never even tries the dead server: every request succeeds on cp1 and
    // the backend counts no connection error, retry or redispatch.
    let attempts_failed = haproxy.attempts_failed();
    for request in 1..=6 {
        assert_eq!(
            client.version().as_deref(),
            Ok("cp1"),
            "request {request} after cp2 left\n{}",
            context(&haproxy, &apidns)
        );
    }
    assert_eq!(
        haproxy.attempts_failed(),
        attempts_failed,
        "haproxy tried the dead server after dropping it\n{}",
        context(&haproxy, &apidns)
    );

    // A node is added to the zone file; HAProxy picks it up without a restart.
    let pid = haproxy.pid();
    apidns.dir.write(
        "zones/k8s.example.com.toml",
        &pool_zone(discovery, &[&cp1, &cp3]),
    );
    apidns.signal("HUP");
    let both: BTreeSet<SocketAddr> = [cp1.address, cp3.address].into();
    let joined = wait_every(FOLLOW_LIMIT, Duration::from_millis(50), || {
        haproxy.active() == both
    })
    .unwrap_or_else(|| {
        panic!(
            "haproxy did not pick up cp3 {FOLLOW_LIMIT:?} after it was added\n{}",
            context(&haproxy, &apidns)
        )
    });
    client.reaches_all(&["cp1", "cp3"], &|| context(&haproxy, &apidns));
    assert!(cp3.requests("/version") > 0);
    assert_eq!(haproxy.pid(), pid);
    haproxy.assert_same_process();

    eprintln!(
        "{discovery:?} discovery: haproxy had cp1 and cp2 {discovered:?} after it started ({requests} requests reached both); \
         cp2 killed: apidns logged it down after {apidns_down:?}, haproxy dropped it after {removed:?} \
         ({during} requests meanwhile, none failed); cp3 added: haproxy used it {joined:?} after SIGHUP \
         (apidns' reload and first probe included)"
    );
    Scenario {
        apidns,
        haproxy,
        client,
        live: vec![cp1, cp3],
    }
}

#[test]
#[cfg_attr(
    not(apidns_has_haproxy),
    ignore = "needs haproxy and curl: apt-get install haproxy curl, then cargo test --test it haproxy::"
)]
fn haproxy_follows_the_srv_records() {
    let mut scenario = follow_apidns(Discovery::Srv, "127.0.50");

    // apidns stops answering. HAProxy keeps the servers of the last good answer
    // (`hold timeout 5m`) and the node keeps reaching its API servers.
    scenario.apidns.signal("KILL");
    let _ = scenario.apidns.wait_exit(Duration::from_secs(5));
    let live: BTreeSet<SocketAddr> = scenario.live.iter().map(|s| s.address).collect();
    // Three unanswered queries a second apart make a failed resolution. apidns is dead, so
    // every query sent from now on goes unanswered: wait until HAProxy has sent six (two failed
    // resolutions), then check it kept its servers.
    let sent = scenario.haproxy.resolver_queries();
    assert!(
        wait_until(Duration::from_secs(30), || {
            scenario.haproxy.resolver_queries() >= sent + 6
        })
        .is_some(),
        "haproxy stopped asking apidns\n{}",
        scenario.haproxy.command("show resolvers apidns")
    );
    assert_eq!(
        scenario.haproxy.active(),
        live,
        "haproxy dropped its servers when apidns stopped answering\n{}",
        scenario.haproxy.report()
    );
    scenario
        .client
        .reaches_all(&["cp1", "cp3"], &|| scenario.haproxy.report());
    scenario.haproxy.assert_same_process();
}

#[test]
#[cfg_attr(
    not(apidns_has_haproxy),
    ignore = "needs haproxy and curl: apt-get install haproxy curl, then cargo test --test it haproxy::"
)]
fn haproxy_follows_the_address_records() {
    let mut scenario = follow_apidns(Discovery::Address, "127.0.51");
    scenario.haproxy.assert_same_process();
}

/// docs/haproxy.md shows the configuration these tests run, for a node, and it is a valid
/// HAProxy configuration.
#[test]
#[cfg_attr(
    not(apidns_has_haproxy),
    ignore = "needs haproxy and curl: apt-get install haproxy curl, then cargo test --test it haproxy::"
)]
fn readme_shows_the_tested_configuration() {
    let config = Site::node().config();
    let page = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/haproxy.md");
    let page = std::fs::read_to_string(&page).expect("read docs/haproxy.md");
    assert!(
        page.contains(&format!("```haproxy\n{config}```\n")),
        "docs/haproxy.md should show this configuration in a ```haproxy block:\n{config}"
    );
    require(haproxy_binary(), "haproxy", "-v");
    let dir = TempDir::new("haproxy-check");
    let file = dir.write("haproxy.cfg", &config);
    let output = Command::new(haproxy_binary())
        .arg("-c")
        .arg("-f")
        .arg(&file)
        .output()
        .expect("run haproxy -c");
    assert!(
        output.status.success(),
        "haproxy -c rejects README.md's configuration:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
