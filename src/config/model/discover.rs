//! Cluster discovery as configured (`discover = { kubeconfig = ..., allow = [...] }`): where to
//! watch the `default/kubernetes` EndpointSlice, with what credentials, and which addresses it
//! may propose as members. The kubeconfig is read and checked when the configuration is loaded,
//! so that a bad one is a configuration error with a file and a line, and a watcher never reads
//! a file while it connects.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use hickory_proto::rr::Name;

use super::{Config, MemberSource};

/// A pool's `discover` table, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discover {
    /// The kubeconfig file the access below was read from, for messages.
    pub kubeconfig: PathBuf,
    /// Only addresses inside one of these networks may become members: a wrong or hostile
    /// object in the cluster must never redirect the API name.
    pub allow: Vec<Cidr>,
    pub access: ClusterAccess,
}

impl Discover {
    pub fn allows(&self, address: IpAddr) -> bool {
        self.allow.iter().any(|network| network.contains(address))
    }
}

/// How to reach and authenticate to the cluster, from the kubeconfig's current context. The
/// server's address is not kept: apidns connects to the pool's own members, and only the
/// server's name (for certificate verification) and port come from the kubeconfig.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterAccess {
    /// The kubeconfig's server URL, as written.
    pub server: String,
    /// The name the API servers' certificates must carry: the server URL's host, or the
    /// cluster's `tls-server-name`.
    pub server_name: String,
    /// The server URL's port (443 when it has none).
    pub port: u16,
    /// The cluster CA's certificates, PEM.
    pub ca_pem: Vec<u8>,
    pub credentials: Credentials,
}

impl fmt::Debug for ClusterAccess {
    // The CA is long and the credentials secret: neither goes to logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterAccess")
            .field("server", &self.server)
            .field("server_name", &self.server_name)
            .field("port", &self.port)
            .field("credentials", &self.credentials.kind())
            .finish()
    }
}

/// Who apidns is to the cluster.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A bearer token (e.g. from `kubectl create token`).
    Token(String),
    /// A file holding a bearer token, read again as it changes (a projected ServiceAccount
    /// token is rotated in place).
    TokenFile(PathBuf),
    /// A client certificate and its key, PEM (e.g. from `kubeadm kubeconfig user`).
    ClientCertificate { cert_pem: Vec<u8>, key_pem: Vec<u8> },
}

impl Credentials {
    pub fn kind(&self) -> &'static str {
        match self {
            Credentials::Token(_) => "token",
            Credentials::TokenFile(_) => "token file",
            Credentials::ClientCertificate { .. } => "client certificate",
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())
    }
}

/// A network in CIDR notation, `192.0.2.0/24` or `2001:db8::/64`; a bare address is a /32 or
/// /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Text that is not a network in CIDR notation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not a network (expected e.g. \"192.0.2.0/24\" or \"2001:db8::/64\")")]
pub struct CidrError(String);

impl Cidr {
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.network, address) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                masked(u128::from(u32::from(network)), 32, self.prefix)
                    == masked(u128::from(u32::from(address)), 32, self.prefix)
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                masked(u128::from(network), 128, self.prefix)
                    == masked(u128::from(address), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// The first `prefix` bits of a `width`-bit number.
fn masked(bits: u128, width: u8, prefix: u8) -> u128 {
    if prefix == 0 {
        return 0;
    }
    let keep = u32::from(width - prefix);
    (bits >> keep) << keep
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let wrong = || CidrError(text.to_string());
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address.trim().parse().map_err(|_| wrong())?;
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|prefix| *prefix <= width)
                .ok_or_else(wrong)?,
            None => width,
        };
        Ok(Self { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// What the single writer did with a membership the cluster proposed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryVerdict {
    /// In force (the added members once their first probe ran).
    Applied {
        added: Vec<IpAddr>,
        removed: Vec<IpAddr>,
    },
    /// The same set as the last one applied.
    Unchanged,
    /// Not applied: removing these would leave the pool with no member up. The last good
    /// membership stays.
    WouldLeaveNoneUp { removed: Vec<IpAddr> },
    /// Not applied: the pool (in the configuration in force) does not discover.
    NotDiscovering,
}

/// The last membership applied from the cluster, per pool: laid over the files and the
/// journal by the single writer, and kept in `state_dir` so that a restart during an outage of
/// the cluster serves it too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiscoveredSets(pub BTreeMap<Name, BTreeSet<IpAddr>>);

impl DiscoveredSets {
    /// Adds each pool's discovered addresses to it as members (`MemberSource::Discovered`).
    /// Only pools that discover now take them, and only addresses their `allow` holds now: a
    /// reload that narrows `allow` or drops `discover` drops the members it no longer allows.
    /// An address that is a member already keeps its source.
    pub fn lay_over(&self, config: &mut Config) {
        for pool in config
            .zones
            .iter_mut()
            .flat_map(|zone| zone.pools.iter_mut())
        {
            let (Some(discover), Some(addresses)) = (pool.discover.clone(), self.0.get(&pool.name))
            else {
                continue;
            };
            for address in addresses.iter().filter(|a| discover.allows(**a)) {
                if let Err(error) = pool.add_member(*address, MemberSource::Discovered) {
                    tracing::warn!(pool = %pool.name, %address, %error, "discovered member not added");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Cidr {
        text.parse().expect("a network")
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn networks_hold_their_addresses_and_no_others() {
        assert!(cidr("192.0.2.0/24").contains(ip("192.0.2.200")));
        assert!(!cidr("192.0.2.0/24").contains(ip("192.0.3.1")));
        assert!(cidr("192.0.2.7").contains(ip("192.0.2.7")));
        assert!(!cidr("192.0.2.7").contains(ip("192.0.2.8")));
        assert!(cidr("0.0.0.0/0").contains(ip("203.0.113.1")));
        assert!(!cidr("0.0.0.0/0").contains(ip("2001:db8::1")));
        assert!(cidr("2001:db8:0:1::/64").contains(ip("2001:db8:0:1::99")));
        assert!(!cidr("2001:db8:0:1::/64").contains(ip("2001:db8:0:2::1")));
        assert!(!cidr("::/0").contains(ip("192.0.2.1")));
        assert_eq!(cidr("192.0.2.0/24").to_string(), "192.0.2.0/24");
    }

    #[test]
    fn text_that_is_not_a_network_is_refused() {
        for text in [
            "192.0.2.0/33",
            "2001:db8::/129",
            "example.com",
            "192.0.2.0/",
            "/24",
            "",
        ] {
            assert!(text.parse::<Cidr>().is_err(), "{text}");
        }
    }
}
