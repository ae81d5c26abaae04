//! Pool members: `"192.0.2.10"`, `"192.0.2.10:6443"`, or a table
//! `{ name = "cp1", address = "192.0.2.10", port, weight, priority }`, and the `ip-192-0-2-10`
//! names of members configured without one.

use std::net::{IpAddr, SocketAddr};

use hickory_proto::rr::Name;
use toml::Spanned;

use crate::config::error::{ConfigError, Source};
use crate::config::file::{MemberEntry, MemberTable};
use crate::config::model::{Member, MemberSource, generated_member_host as generated_host};
use crate::config::values::integer_or;

/// What a member takes from its pool unless it says otherwise.
pub(super) struct MemberDefaults<'a> {
    pub port: u16,
    pub weight: u16,
    pub priority: u16,
    pub domain: &'a Name,
    pub origin: &'a Name,
}

/// One entry of a pool's `members`; `field` names it in errors.
pub(super) fn parse_member_entry(
    source: &Source<'_>,
    entry: &Spanned<MemberEntry>,
    field: &str,
    defaults: &MemberDefaults<'_>,
) -> Result<Member, ConfigError> {
    let table = match entry.get_ref() {
        MemberEntry::Address(text) => {
            let address = parse_member(text, defaults.port)
                .ok_or_else(|| not_an_address(source, field, text, entry.span()))?;
            return Ok(Member {
                address,
                host: generated_host(address, defaults.domain)
                    .map_err(|error| source.error(entry.span(), field, error))?,
                weight: defaults.weight,
                priority: defaults.priority,
                source: MemberSource::File,
            });
        }
        MemberEntry::Table(table) => table,
    };
    let address = table_address(source, table, field, defaults)?;
    let host = match &table.name {
        Some(name) => member_host(source, name, &format!("{field}.name"), defaults)?,
        None => generated_host(address, defaults.domain)
            .map_err(|error| source.error(entry.span(), field, error))?,
    };
    Ok(Member {
        address,
        host,
        weight: integer_or(
            source,
            &table.weight,
            &format!("{field}.weight"),
            0..=65535,
            defaults.weight,
        )?,
        priority: integer_or(
            source,
            &table.priority,
            &format!("{field}.priority"),
            0..=65535,
            defaults.priority,
        )?,
        source: MemberSource::File,
    })
}

fn not_an_address(
    source: &Source<'_>,
    field: &str,
    text: &str,
    span: std::ops::Range<usize>,
) -> ConfigError {
    source.error(
        span,
        field,
        format!(
            "\"{text}\" is not a member address (expected an IPv4 or IPv6 address, optionally with a port: \"192.0.2.10\", \"192.0.2.10:6443\", \"2001:db8::10\", \"[2001:db8::10]:6443\")"
        ),
    )
}

/// A member table's address, with its port from `port`, from the address itself, or from the
/// pool; never from two places.
fn table_address(
    source: &Source<'_>,
    table: &MemberTable,
    field: &str,
    defaults: &MemberDefaults<'_>,
) -> Result<SocketAddr, ConfigError> {
    let port = integer_or(
        source,
        &table.port,
        &format!("{field}.port"),
        1..=65535,
        defaults.port,
    )?;
    let text = table.address.get_ref();
    if let Ok(ip) = text.trim().parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let address = parse_member(text, port)
        .ok_or_else(|| not_an_address(source, field, text, table.address.span()))?;
    if table.port.is_some() {
        return Err(source.error(
            table.address.span(),
            format!("{field}.address"),
            "the port is given twice (in the address and as port)",
        ));
    }
    Ok(address)
}

/// A member's own name: relative to the pool's member domain unless absolute, and inside the
/// zone.
fn member_host(
    source: &Source<'_>,
    name: &Spanned<String>,
    field: &str,
    defaults: &MemberDefaults<'_>,
) -> Result<Name, ConfigError> {
    let text = name.get_ref().trim();
    let host = if text.ends_with('.') {
        Name::from_ascii(text)
    } else {
        Name::from_ascii(text).and_then(|n| n.append_domain(defaults.domain))
    }
    .map_err(|error| source.error(name.span(), field, format!("\"{text}\": {error}")))?
    .to_lowercase();
    // A `*` label would make a wildcard of a member's name.
    let wildcard = text.split('.').any(|label| label == "*");
    if text.is_empty() || text == "@" || wildcard || !defaults.origin.zone_of(&host) {
        return Err(source.error(
            name.span(),
            field,
            format!(
                "\"{text}\" is not a host name inside the zone {}",
                defaults.origin
            ),
        ));
    }
    Ok(host)
}

/// `ip-192-0-2-10.<domain>` for a member configured without a name.
/// `"192.0.2.10"`, `"192.0.2.10:6443"`, `"2001:db8::10"` or `"[2001:db8::10]:6443"`.
pub(super) fn parse_member(text: &str, default_port: u16) -> Option<SocketAddr> {
    let text = text.trim();
    if let Ok(address) = text.parse::<IpAddr>() {
        return Some(SocketAddr::new(address, default_port));
    }
    let address: SocketAddr = text.parse().ok()?;
    (address.port() != 0).then_some(address)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{HEAD, parse_text};

    #[test]
    fn named_members_and_srv_settings() {
        let zone = parse_text(&format!(
            "{HEAD}\n[pool.api]\nsrv = \"_kube._tcp\"\nweight = 5\nmember_domain = \"nodes\"\nmembers = [\n  {{ name = \"cp1\", address = \"192.0.2.10\", weight = 20 }},\n  {{ name = \"cp1\", address = \"2001:db8::10\", port = 7443 }},\n  \"192.0.2.11\",\n]\n"
        ))
        .expect("valid");
        let pool = &zone.pools[0];
        assert_eq!(pool.srv_name.to_string(), "_kube._tcp.api.k8s.example.com.");
        assert_eq!(
            pool.members()[0].host.to_string(),
            "cp1.nodes.k8s.example.com."
        );
        assert_eq!(
            pool.members()[1].host,
            pool.members()[0].host,
            "a dual-stack node"
        );
        assert_eq!(
            pool.members()[1].address,
            "[2001:db8::10]:7443".parse().unwrap()
        );
        assert_eq!(
            (pool.members()[0].weight, pool.members()[1].weight),
            (20, 5)
        );
        assert_eq!(
            pool.members()[2].host.to_string(),
            "ip-192-0-2-11.nodes.k8s.example.com."
        );
    }

    #[test]
    fn member_table_errors() {
        let cases = [
            (
                "members = [{ adress = \"192.0.2.1\" }]",
                "unknown field `adress`",
            ),
            (
                "members = [{ name = \"a\", address = \"192.0.2.1\" }, { name = \"a\", address = \"192.0.2.2\" }]",
                "already used",
            ),
            (
                "members = [{ address = \"192.0.2.1:80\", port = 81 }]",
                "port is given twice",
            ),
            (
                "members = [{ name = \"ns1\", address = \"192.0.2.1\" }]\nmember_domain = \"@\"",
                "already has a static A record",
            ),
            (
                "members = [\"192.0.2.1\"]\nsrv = \"_x._tcp.\"",
                "not a service label",
            ),
        ];
        for (body, message) in cases {
            let error = parse_text(&format!("{HEAD}\n[pool.api]\n{body}\n")).unwrap_err();
            assert!(error.message.contains(message), "{body}: {error}");
            assert!(error.position.is_some(), "{error}");
        }
    }
}
