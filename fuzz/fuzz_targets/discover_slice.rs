//! Arbitrary bytes as an EndpointSlice (discovery.k8s.io/v1) object from the API server:
//! decoded as kube-rs decodes it (serde_json into k8s-openapi's type), then through the address
//! collection (`apidns::discover::slice::ready_addresses`) and the `allow` filter
//! (`split_by_allow`). Never a panic; every address kept comes from a ready (or unknown)
//! endpoint of the slice and is inside `allow`, checked here by octets, not by `Cidr`.
#![no_main]

use std::net::IpAddr;
use std::sync::OnceLock;

use apidns::config::Cidr;
use apidns::discover::slice::{ready_addresses, split_by_allow};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use libfuzzer_sys::fuzz_target;

/// 192.0.2.0/24, 198.51.100.7 alone, and 2001:db8::/64.
fn allow() -> &'static [Cidr] {
    static ALLOW: OnceLock<Vec<Cidr>> = OnceLock::new();
    ALLOW.get_or_init(|| {
        ["192.0.2.0/24", "198.51.100.7", "2001:db8::/64"]
            .iter()
            .map(|text| text.parse().expect("a valid network"))
            .collect()
    })
}

/// Whether `address` is inside [`allow`], by its octets.
fn allowed(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => {
            let octets = v4.octets();
            octets[..3] == [192, 0, 2] || octets == [198, 51, 100, 7]
        }
        IpAddr::V6(v6) => v6.segments()[..4] == [0x2001, 0xdb8, 0, 0],
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(slice) = serde_json::from_slice::<EndpointSlice>(data) else {
        return;
    };
    let (addresses, unusable) = ready_addresses([&slice]);
    let ready: Vec<&String> = slice
        .endpoints
        .iter()
        .filter(|endpoint| {
            endpoint
                .conditions
                .as_ref()
                .and_then(|conditions| conditions.ready)
                != Some(false)
        })
        .flat_map(|endpoint| endpoint.addresses.iter())
        .collect();
    assert!(
        addresses.len() + unusable.len() <= ready.len(),
        "no more addresses than the ready endpoints hold"
    );
    for address in &addresses {
        assert!(
            ready
                .iter()
                .any(|text| text.parse::<IpAddr>().ok() == Some(*address)),
            "{address} is a ready endpoint's address"
        );
    }
    let total = addresses.len();
    let (inside, outside) = split_by_allow(addresses, allow());
    assert_eq!(inside.len() + outside.len(), total);
    for address in &inside {
        assert!(allowed(*address), "{address} kept but outside allow");
    }
    for address in &outside {
        assert!(!allowed(*address), "{address} dropped but inside allow");
    }
});
