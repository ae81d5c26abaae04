//! `kube-standin`: the stand-in Kubernetes API (`testkit::kube_api`) as a process, for the lab
//! and for trying a client by hand.
//!
//! ```text
//! kube-standin --dir DIR [--name SERVER_NAME] [--port SLICE_PORT] ADDRESS:PORT...
//! ```
//!
//! Serves one API server per address, sharing one cluster; writes `DIR/ca.crt`,
//! `DIR/token.kubeconfig` and `DIR/cert.kubeconfig` (server `https://SERVER_NAME:PORT` of the
//! first address) and `DIR/ready` once serving. Then reads commands from stdin, one a line:
//! `set ADDRESS...` (the `kubernetes` EndpointSlice's addresses; none: empty), `expire`
//! (410 Gone for older resourceVersions), `cut` (break every watch), `stop ADDRESS:PORT`
//! (kill that server). It ends at the end of stdin.

use std::io::BufRead;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use testkit::kube_api::{ApiServer, Auth, KubeCluster};

struct Options {
    dir: PathBuf,
    name: String,
    slice_port: Option<u16>,
    addresses: Vec<SocketAddr>,
}

fn parse(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        dir: PathBuf::new(),
        name: "kubernetes.default.svc".to_string(),
        slice_port: None,
        addresses: Vec::new(),
    };
    let mut args = args;
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value"));
        match arg.as_str() {
            "--dir" => options.dir = value("--dir")?.into(),
            "--name" => options.name = value("--name")?,
            "--port" => {
                let port = value("--port")?;
                options.slice_port = Some(
                    port.parse()
                        .map_err(|_| format!("--port {port:?} is not a port"))?,
                );
            }
            address => options.addresses.push(
                address
                    .parse()
                    .map_err(|_| format!("{address:?} is not an ADDRESS:PORT"))?,
            ),
        }
    }
    if options.dir.as_os_str().is_empty() || options.addresses.is_empty() {
        return Err(
            "usage: kube-standin --dir DIR [--name SERVER_NAME] [--port SLICE_PORT] ADDRESS:PORT..."
                .into(),
        );
    }
    Ok(options)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("kube-standin: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let options = parse(std::env::args().skip(1))?;
    let cluster = KubeCluster::new(&options.name);
    if let Some(port) = options.slice_port {
        cluster.set_port(port);
    }
    let mut servers: Vec<ApiServer> = Vec::new();
    for address in &options.addresses {
        let server = cluster
            .try_serve(*address)
            .map_err(|error| format!("cannot serve on {address}: {error}"))?;
        servers.push(server);
    }
    let url = format!("https://{}:{}", options.name, servers[0].addr().port());
    let write = |file: &str, text: &str| {
        let path = options.dir.join(file);
        std::fs::write(&path, text)
            .map_err(|error| format!("cannot write {}: {error}", path.display()))
    };
    std::fs::create_dir_all(&options.dir)
        .map_err(|error| format!("cannot create {}: {error}", options.dir.display()))?;
    write("ca.crt", &cluster.ca_pem())?;
    write("token.kubeconfig", &cluster.kubeconfig(&url, Auth::Token))?;
    write(
        "cert.kubeconfig",
        &cluster.kubeconfig(&url, Auth::ClientCert),
    )?;
    write("ready", "")?;
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|error| format!("cannot read stdin: {error}"))?;
        match command(&cluster, &mut servers, &line) {
            Ok(()) => println!("ok resourceVersion={}", cluster.resource_version()),
            Err(message) => println!("error: {message}"),
        }
    }
    Ok(())
}

fn command(cluster: &KubeCluster, servers: &mut Vec<ApiServer>, line: &str) -> Result<(), String> {
    let mut words = line.split_whitespace();
    match words.next() {
        None => Ok(()),
        Some("set") => {
            let addresses = words
                .map(|word| {
                    word.parse::<IpAddr>()
                        .map_err(|_| format!("{word:?} is not an IP address"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            cluster.set_addresses(&addresses);
            Ok(())
        }
        Some("expire") => {
            cluster.expire_history();
            Ok(())
        }
        Some("cut") => {
            cluster.cut_watches();
            Ok(())
        }
        Some("stop") => {
            let word = words.next().unwrap_or_default();
            let address: SocketAddr = word
                .parse()
                .map_err(|_| format!("{word:?} is not an ADDRESS:PORT"))?;
            let index = servers
                .iter()
                .position(|server| server.addr() == address)
                .ok_or(format!("no server on {address}"))?;
            servers.remove(index).stop();
            Ok(())
        }
        Some(other) => Err(format!(
            "unknown command {other:?} (set, expire, cut, stop)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> impl Iterator<Item = String> {
        text.split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn options_need_a_directory_and_an_address() {
        let options = parse(args(
            "--dir /tmp/x --name api.test --port 7443 127.0.0.1:6443 127.0.0.2:6443",
        ))
        .expect("valid");
        assert_eq!(options.name, "api.test");
        assert_eq!(options.slice_port, Some(7443));
        assert_eq!(options.addresses.len(), 2);
        assert!(parse(args("127.0.0.1:6443")).is_err());
        assert!(parse(args("--dir /tmp/x")).is_err());
        assert!(parse(args("--dir /tmp/x nonsense")).is_err());
    }

    #[test]
    fn commands_change_the_cluster() {
        let cluster = KubeCluster::new("api.test");
        let mut servers = vec![cluster.serve("127.0.0.1:0".parse().expect("an address"))];
        command(&cluster, &mut servers, "set 10.0.0.1 fd00::1").expect("set");
        assert_eq!(cluster.addresses().len(), 2);
        let before = cluster.resource_version();
        command(&cluster, &mut servers, "expire").expect("expire");
        assert!(cluster.resource_version() > before);
        command(&cluster, &mut servers, "cut").expect("cut");
        assert!(command(&cluster, &mut servers, "set nonsense").is_err());
        assert!(command(&cluster, &mut servers, "dance").is_err());
        let address = servers[0].addr().to_string();
        command(&cluster, &mut servers, &format!("stop {address}")).expect("stop");
        assert!(servers.is_empty());
    }
}
