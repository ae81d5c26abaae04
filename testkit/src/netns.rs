//! A network namespace joined to the host by a veth pair, for tests and benches that need a
//! member to vanish the way a host does: no FIN, no RST, packets dropped. Needs root (`ip netns
//! add`); created with unique names per process and call, and removed on drop, also when the
//! test panics.

#![allow(dead_code)] // the test and the bench use different parts

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

pub struct Namespace {
    pub name: String,
    /// The veth end in the host (root) namespace, and its address.
    pub host_link: String,
    pub host_ip: Ipv4Addr,
    /// The veth end inside the namespace, and its address: where members listen.
    pub inner_link: String,
    pub inner_ip: Ipv4Addr,
}

impl Namespace {
    /// Creates the namespace and the veth pair, up and addressed (a /30 of 10.254.0.0/16 picked
    /// from the process id and a counter). Panics with what to do when it cannot.
    pub fn create() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        // Interface names are limited to 15 bytes.
        let tag = format!("{}{n}", pid % 100_000);
        let subnet = (pid.wrapping_mul(8).wrapping_add(n)) % 16_384;
        let base = u32::from(Ipv4Addr::new(10, 254, 0, 0)) + subnet * 4;
        let namespace = Self {
            name: format!("apidns-bh-{tag}"),
            host_link: format!("abh{tag}h"),
            host_ip: Ipv4Addr::from(base + 1),
            inner_link: format!("abh{tag}n"),
            inner_ip: Ipv4Addr::from(base + 2),
        };
        if let Err(error) = ip(&["netns", "add", &namespace.name]) {
            panic!(
                "cannot create a network namespace ({error}): the black-hole tests need root (or CAP_SYS_ADMIN and CAP_NET_ADMIN) and iproute2's `ip`"
            );
        }
        // From here on, drop removes what was made, also if a step below fails.
        let host_cidr = format!("{}/30", namespace.host_ip);
        let inner_cidr = format!("{}/30", namespace.inner_ip);
        let steps: [&[&str]; 7] = [
            &[
                "link",
                "add",
                &namespace.host_link,
                "type",
                "veth",
                "peer",
                "name",
                &namespace.inner_link,
            ],
            &[
                "link",
                "set",
                &namespace.inner_link,
                "netns",
                &namespace.name,
            ],
            &["addr", "add", &host_cidr, "dev", &namespace.host_link],
            &["link", "set", &namespace.host_link, "up"],
            &[
                "-n",
                &namespace.name,
                "addr",
                "add",
                &inner_cidr,
                "dev",
                &namespace.inner_link,
            ],
            &[
                "-n",
                &namespace.name,
                "link",
                "set",
                &namespace.inner_link,
                "up",
            ],
            &["-n", &namespace.name, "link", "set", "lo", "up"],
        ];
        for step in steps {
            if let Err(error) = ip(step) {
                panic!("setting up {}: {error}", namespace.name);
            }
        }
        namespace
    }

    pub fn inner_address(&self) -> IpAddr {
        IpAddr::V4(self.inner_ip)
    }

    /// Runs `make` on a thread that has entered the namespace: sockets it creates live there.
    pub fn inside<T: Send + 'static>(&self, make: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || {
            use std::os::fd::AsRawFd;
            let file = std::fs::File::open(&path).expect("open the namespace");
            // SAFETY: setns(2) on a descriptor we own; it moves only this thread, which ends
            // after `make`.
            let result = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(result, 0, "setns: {}", std::io::Error::last_os_error());
            make()
        })
        .join()
        .expect("the thread in the namespace panicked")
    }

    /// Turns the inner link off: the host's packets to the namespace vanish without an answer,
    /// as when a machine loses power or a firewall drops everything.
    pub fn black_hole(&self) {
        ip(&["-n", &self.name, "link", "set", &self.inner_link, "down"]).expect("link down");
    }

    /// Undoes [`Namespace::black_hole`].
    pub fn restore(&self) {
        ip(&["-n", &self.name, "link", "set", &self.inner_link, "up"]).expect("link up");
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // Deleting the namespace deletes its veth end, and with it the host's end.
        let _ = ip(&["netns", "del", &self.name]);
        let _ = ip(&["link", "del", &self.host_link]);
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|error| format!("running ip: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}
