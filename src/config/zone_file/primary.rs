//! A secondary zone's `primary` table: the primary its data comes from, and the TSIG key that
//! signs the transfers. The rest of a secondary zone file names pools and their settings only.

use std::net::SocketAddr;

use crate::config::error::{ConfigError, Source};
use crate::config::file::PrimarySection;
use crate::config::key_name::key_name;
use crate::config::model::PrimarySource;

/// The `primary` table. That its key exists is checked against the main file by `config::load`.
pub(super) fn parse_primary(
    source: &Source<'_>,
    section: &PrimarySection,
) -> Result<PrimarySource, ConfigError> {
    let address: SocketAddr = section.address.get_ref().trim().parse().map_err(|_| {
        source.error(
            section.address.span(),
            "primary.address",
            format!(
                "\"{}\" is not a socket address (expected an address and a port, e.g. \"192.0.2.53:53\" or \"[2001:db8::53]:53\")",
                section.address.get_ref()
            ),
        )
    })?;
    let key = match &section.key {
        Some(key) => Some(
            key_name(key.get_ref())
                .map_err(|error| source.error(key.span(), "primary.key", error))?,
        ),
        None => None,
    };
    Ok(PrimarySource { address, key })
}

#[cfg(test)]
mod tests {
    use super::super::testing::parse_secondary_text;

    const POOLS: &str = "\n[pool.api]\nttl = 5\nmin_up = 1\nprobe = { kind = \"tcp\" }\n";

    #[test]
    fn a_secondary_zone_names_its_primary_and_pools() {
        let zone = parse_secondary_text(&format!(
            "origin = \"k8s.example.com.\"\nprimary = {{ address = \"127.0.0.1:5300\", key = \"Xfr-Key\" }}\n{POOLS}"
        ))
        .expect("valid");
        assert_eq!(zone.origin.to_string(), "k8s.example.com.");
        assert_eq!(zone.primary.address, "127.0.0.1:5300".parse().unwrap());
        assert_eq!(
            zone.primary
                .key
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some("xfr-key.")
        );
        assert_eq!(zone.pools.len(), 1);
        assert_eq!(zone.pools[0].name.to_string(), "api.k8s.example.com.");
        assert_eq!(zone.pools[0].min_up, 1);
        assert!(zone.pools[0].members.is_empty());
        let unsigned = parse_secondary_text(
            "origin = \"k8s.example.com.\"\nprimary = { address = \"[::1]:53\" }\n",
        )
        .expect("valid");
        assert_eq!(unsigned.primary.key, None);
    }

    #[test]
    fn data_that_comes_from_the_primary_is_refused_with_its_field_and_line() {
        let head = "origin = \"k8s.example.com.\"\nprimary = { address = \"127.0.0.1:53\" }\n";
        let cases = [
            ("records = []\n", "records"),
            ("records_file = \"k.zone\"\n", "records_file"),
            ("ttl = 60\n", "ttl"),
            (
                "update = { keys = [\"k\"], allow = \"pool-members\" }\n",
                "update",
            ),
            ("transfer = { keys = [\"k\"] }\n", "transfer"),
            ("[soa]\nmname = \"ns1\"\nrname = \"h.example.\"\n", "soa"),
            (
                "[pool.api]\nmembers = [\"192.0.2.10\"]\n",
                "pool.api.members",
            ),
            (
                "[pool.api]\ndiscover = { kubeconfig = \"k\", allow = [\"192.0.2.0/24\"] }\n",
                "pool.api.discover",
            ),
        ];
        for (text, field) in cases {
            let error = parse_secondary_text(&format!("{head}{text}")).unwrap_err();
            assert_eq!(error.field.as_deref(), Some(field), "{error}");
            assert!(error.message.contains("primary"), "{error}");
            assert!(error.to_string().contains("z.toml:"), "{error}");
        }
        let address = parse_secondary_text(
            "origin = \"k8s.example.com.\"\nprimary = { address = \"192.0.2.53\" }\n",
        )
        .unwrap_err();
        assert_eq!(address.field.as_deref(), Some("primary.address"));
        assert!(
            address.message.contains("not a socket address"),
            "{address}"
        );
        let key = parse_secondary_text(
            "origin = \"k8s.example.com.\"\nprimary = { address = \"192.0.2.53:53\", key = \"\" }\n",
        )
        .unwrap_err();
        assert_eq!(key.field.as_deref(), Some("primary.key"));
        let unknown = parse_secondary_text(
            "origin = \"k8s.example.com.\"\nprimary = { address = \"192.0.2.53:53\", keys = [] }\n",
        )
        .unwrap_err();
        assert!(
            unknown.message.contains("unknown field `keys`"),
            "{unknown}"
        );
    }
}
