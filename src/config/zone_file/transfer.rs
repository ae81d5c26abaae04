//! A zone file's `transfer` table: which TSIG keys may transfer the zone (AXFR, IXFR), and which
//! secondaries are sent a NOTIFY when its serial changes.

use std::net::SocketAddr;

use crate::config::error::{ConfigError, Source};
use crate::config::file::TransferSection;
use crate::config::key_name::key_name;
use crate::config::model::TransferPolicy;

/// The `transfer` table. That its keys exist is checked against the main file by `config::load`.
pub(super) fn parse_transfer(
    source: &Source<'_>,
    section: &TransferSection,
) -> Result<TransferPolicy, ConfigError> {
    if section.keys.get_ref().is_empty() {
        return Err(source.error(
            section.keys.span(),
            "transfer.keys",
            "needs at least one TSIG key name; transfers are only given to signed requests (remove the transfer table to refuse them all)",
        ));
    }
    let mut keys = Vec::new();
    for (index, key) in section.keys.get_ref().iter().enumerate() {
        let name = key_name(key.get_ref())
            .map_err(|error| source.error(key.span(), format!("transfer.keys[{index}]"), error))?;
        keys.push(name);
    }
    let mut notify = Vec::new();
    for (index, address) in section.notify.iter().enumerate() {
        let parsed: SocketAddr = address.get_ref().trim().parse().map_err(|_| {
            source.error(
                address.span(),
                format!("transfer.notify[{index}]"),
                format!(
                    "\"{}\" is not a socket address (expected an address and a port, e.g. \"192.0.2.54:53\" or \"[2001:db8::54]:53\")",
                    address.get_ref()
                ),
            )
        })?;
        if notify.contains(&parsed) {
            return Err(source.error(
                address.span(),
                format!("transfer.notify[{index}]"),
                format!("{parsed} is listed twice"),
            ));
        }
        notify.push(parsed);
    }
    Ok(TransferPolicy { keys, notify })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{HEAD, parse_text};

    #[test]
    fn keys_and_notify_addresses() {
        let zone = parse_text(&format!(
            "transfer = {{ keys = [\"Xfr-Key\"], notify = [\"127.0.0.1:5300\", \"[::1]:53\"] }}\n{HEAD}"
        ))
        .expect("valid");
        let transfer = zone.transfer.expect("a transfer policy");
        assert_eq!(transfer.keys[0].to_string(), "xfr-key.");
        assert_eq!(
            transfer.notify,
            [
                "127.0.0.1:5300".parse().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
        let quiet = parse_text(&format!("transfer = {{ keys = [\"k\"] }}\n{HEAD}")).expect("valid");
        assert!(quiet.transfer.expect("a policy").notify.is_empty());
    }

    #[test]
    fn errors_point_at_the_field_and_line() {
        let cases = [
            ("keys = []", "transfer.keys", "at least one TSIG key"),
            ("keys = [\"\"]", "transfer.keys[0]", "cannot be empty"),
            (
                "keys = [\"k\"], notify = [\"192.0.2.54\"]",
                "transfer.notify[0]",
                "not a socket address",
            ),
            (
                "keys = [\"k\"], notify = [\"192.0.2.54:53\", \"192.0.2.54:53\"]",
                "transfer.notify[1]",
                "listed twice",
            ),
        ];
        for (table, field, message) in cases {
            let error = parse_text(&format!("transfer = {{ {table} }}\n{HEAD}")).unwrap_err();
            assert!(
                error.field.as_deref().is_some_and(|f| f.starts_with(field)),
                "{error}"
            );
            assert!(error.message.contains(message), "{error}");
            assert!(error.to_string().contains("z.toml:"), "{error}");
        }
        let unknown = parse_text(&format!(
            "{HEAD}\n[transfer]\nkeys = [\"k\"]\nnotiffy = []\n"
        ))
        .unwrap_err();
        assert!(
            unknown.message.contains("unknown field `notiffy`"),
            "{unknown}"
        );
    }
}
