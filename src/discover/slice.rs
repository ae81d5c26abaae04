//! The addresses a set of EndpointSlices proposes: every address of every endpoint that is not
//! known to be unready (`conditions.ready` absent counts as ready, as the API reference says
//! consumers should take it).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::config::Cidr;

/// The ready addresses of `slices`, and the address texts that are not IP addresses (an FQDN
/// slice), which are reported rather than silently dropped.
pub fn ready_addresses<'a>(
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
) -> (BTreeSet<IpAddr>, Vec<String>) {
    let mut addresses = BTreeSet::new();
    let mut unusable = Vec::new();
    for slice in slices {
        for endpoint in &slice.endpoints {
            let ready = endpoint
                .conditions
                .as_ref()
                .and_then(|conditions| conditions.ready)
                != Some(false);
            if !ready {
                continue;
            }
            for text in &endpoint.addresses {
                match text.parse::<IpAddr>() {
                    Ok(address) => {
                        addresses.insert(address);
                    }
                    Err(_) => unusable.push(text.clone()),
                }
            }
        }
    }
    (addresses, unusable)
}

/// `addresses` split into those inside one of the `allow` networks (which may become members)
/// and those outside (reported and ignored).
pub fn split_by_allow(
    addresses: BTreeSet<IpAddr>,
    allow: &[Cidr],
) -> (BTreeSet<IpAddr>, BTreeSet<IpAddr>) {
    addresses
        .into_iter()
        .partition(|address| allow.iter().any(|network| network.contains(*address)))
}

/// The slices seen so far, by name: a watch event replaces or removes one, a re-list replaces
/// them all.
#[derive(Debug, Default)]
pub(super) struct Slices {
    current: BTreeMap<String, EndpointSlice>,
    /// Slices listed since the last `Init`, put in force at `InitDone`.
    listing: Option<BTreeMap<String, EndpointSlice>>,
}

impl Slices {
    pub fn begin_list(&mut self) {
        self.listing = Some(BTreeMap::new());
    }

    pub fn listed(&mut self, slice: EndpointSlice) {
        let name = name_of(&slice);
        self.listing
            .get_or_insert_with(BTreeMap::new)
            .insert(name, slice);
    }

    pub fn end_list(&mut self) {
        if let Some(listing) = self.listing.take() {
            self.current = listing;
        }
    }

    pub fn applied(&mut self, slice: EndpointSlice) {
        self.current.insert(name_of(&slice), slice);
    }

    pub fn deleted(&mut self, slice: &EndpointSlice) {
        self.current.remove(&name_of(slice));
    }

    pub fn all(&self) -> impl Iterator<Item = &EndpointSlice> {
        self.current.values()
    }
}

fn name_of(slice: &EndpointSlice) -> String {
    slice.metadata.name.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions};

    fn endpoint(addresses: &[&str], ready: Option<bool>) -> Endpoint {
        Endpoint {
            addresses: addresses.iter().map(|a| a.to_string()).collect(),
            conditions: Some(EndpointConditions {
                ready,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn ready_and_unknown_endpoints_count_and_unready_ones_do_not() {
        let slice = EndpointSlice {
            endpoints: vec![
                endpoint(&["192.0.2.10"], Some(true)),
                endpoint(&["192.0.2.11"], None),
                endpoint(&["192.0.2.12"], Some(false)),
                endpoint(&["api.example.com"], Some(true)),
            ],
            ..Default::default()
        };
        let (addresses, unusable) = ready_addresses([&slice]);
        let expected: BTreeSet<IpAddr> = ["192.0.2.10", "192.0.2.11"]
            .iter()
            .map(|a| a.parse().expect("an address"))
            .collect();
        assert_eq!(addresses, expected);
        assert_eq!(unusable, vec!["api.example.com".to_string()]);
    }

    #[test]
    fn a_relist_replaces_every_slice() {
        let mut slices = Slices::default();
        let mut old = EndpointSlice::default();
        old.metadata.name = Some("old".into());
        slices.applied(old);
        slices.begin_list();
        let mut new = EndpointSlice::default();
        new.metadata.name = Some("new".into());
        slices.listed(new);
        assert_eq!(
            slices.all().count(),
            1,
            "the old set serves until the list ends"
        );
        slices.end_list();
        let names: Vec<_> = slices.all().map(name_of).collect();
        assert_eq!(names, vec!["new".to_string()]);
    }
}
