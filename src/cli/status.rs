//! `apidns status`: the running daemon's own view of its pools, read from its `/status`
//! endpoint and printed as one table per pool (or passed through as JSON for scripts).
//!
//! The daemon is the only one that knows which members are up: this command never probes
//! (that is `apidns probe`), it asks. Its exit status is meant for scripts and monitoring
//! checks: 0 when every pool has a member up, 1 when some pool has none, 2 when the daemon
//! cannot be asked.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// Why `/status` could not be read as a status document.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("the daemon's /status is not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("the daemon's /status has no `zones` list; is this an apidns HTTP endpoint?")]
    NotAStatusDocument,
}

/// What the document says, for the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every pool has at least one member up.
    EveryPoolUp,
    /// Some pool has no member up (it answers all of them, or none, as `all_down` says).
    SomePoolDown,
}

/// The parsed `/status` document.
pub struct Status {
    document: Value,
}

impl Status {
    pub fn parse(body: &str) -> Result<Self, StatusError> {
        let document: Value = serde_json::from_str(body)?;
        if !document["zones"].is_array() {
            return Err(StatusError::NotAStatusDocument);
        }
        Ok(Self { document })
    }

    pub fn verdict(&self) -> Verdict {
        let every_pool_up = pools(&self.document).all(|pool| pool["up"].as_u64().unwrap_or(0) > 0);
        if every_pool_up {
            Verdict::EveryPoolUp
        } else {
            Verdict::SomePoolDown
        }
    }

    /// The document as the daemon sent it, re-indented.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(&self.document).unwrap_or_default()
    }

    /// One table per pool, `now` being the time the ages are counted to.
    pub fn table(&self, now: SystemTime) -> String {
        let now = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs_f64();
        let mut out = String::new();
        if self.document["ready"].as_bool() == Some(false) {
            out.push_str("apidns is starting: its first probe round has not finished\n\n");
        }
        for secondary in self.document["secondaries"]
            .as_array()
            .into_iter()
            .flatten()
        {
            secondary_line(&mut out, secondary, now);
        }
        if !out.is_empty() {
            out.push('\n');
        }
        for zone in self.document["zones"].as_array().into_iter().flatten() {
            for pool in zone["pools"].as_array().into_iter().flatten() {
                pool_table(&mut out, zone, pool, now);
            }
        }
        if out.is_empty() {
            out.push_str("no pools are configured\n");
        }
        out
    }
}

/// A secondary zone in one line: its primary, the serial it serves, how fresh that is, and the
/// last error when there is one.
fn secondary_line(out: &mut String, zone: &Value, now: f64) {
    let refreshed = zone["last_refresh"]
        .as_f64()
        .map_or("never".to_string(), |at| {
            format!("refreshed {}", ago(now - at))
        });
    let _ = writeln!(
        out,
        "secondary {} from {}: serial {}, {}, {refreshed}",
        text(&zone["origin"]),
        text(&zone["primary"]),
        text(&zone["serial"]),
        text(&zone["state"]),
    );
    if let Some(error) = zone["last_error"].as_str() {
        let _ = writeln!(out, "  last error: {error}");
    }
}

fn pools(document: &Value) -> impl Iterator<Item = &Value> {
    document["zones"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|zone| zone["pools"].as_array().into_iter().flatten())
}

const HEADINGS: [&str; 8] = [
    "MEMBER",
    "STATE",
    "SINCE",
    "LAST RESULT",
    "DOWN SIGNAL",
    "DETECTION",
    "DRAINED",
    "SOURCE",
];

fn pool_table(out: &mut String, zone: &Value, pool: &Value, now: f64) {
    let members = pool["members"].as_array().map_or(&[][..], Vec::as_slice);
    let _ = writeln!(
        out,
        "{} (zone {}, serial {}): {} of {} up, {}; ttl {}, min_up {}, all_down {}",
        text(&pool["name"]),
        text(&zone["origin"]),
        text(&zone["serial"]),
        text(&pool["up"]),
        members.len(),
        text(&pool["state"]),
        text(&pool["ttl"]),
        text(&pool["min_up"]),
        text(&pool["all_down"]),
    );
    if pool["discover"].is_object() {
        discover_line(out, &pool["discover"], now);
    }
    let rows: Vec<[String; 8]> = members.iter().map(|m| member_row(m, now)).collect();
    let mut widths = HEADINGS.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    write_row(out, &HEADINGS.map(str::to_string), &widths);
    for row in &rows {
        write_row(out, row, &widths);
    }
    out.push('\n');
}

/// A discovering pool's watch, under its heading: through which member, the last event, what
/// the slice proposes, and the last error and refusal.
fn discover_line(out: &mut String, discover: &Value, now: f64) {
    let when = |key: &str| {
        discover[key]
            .as_f64()
            .map_or_else(|| "never".to_string(), |at| ago(now - at))
    };
    let through = match (
        discover["through"].as_str(),
        discover["connected"].as_bool(),
    ) {
        (Some(member), Some(true)) => format!("watching through {member}"),
        (Some(member), _) => format!("connecting through {member}"),
        (None, _) => "no member reachable".to_string(),
    };
    let list = |key: &str| {
        discover[key]
            .as_array()
            .map(|items| items.iter().map(text).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    let _ = writeln!(
        out,
        "discover ({}): {through}; last event {}; proposes [{}]",
        text(&discover["server"]),
        when("last_event"),
        list("proposed"),
    );
    if !list("outside_allow").is_empty() {
        let _ = writeln!(out, "  ignored, outside allow: [{}]", list("outside_allow"));
    }
    if let Some(error) = discover["last_error"].as_str() {
        let _ = writeln!(out, "  last error ({}): {error}", when("last_error_at"));
    }
    if let Some(refused) = discover["last_refused"].as_str() {
        let _ = writeln!(
            out,
            "  last refused ({}): {refused}",
            when("last_refused_at")
        );
    }
}

fn member_row(member: &Value, now: f64) -> [String; 8] {
    let address = text(&member["address"]);
    let address = if address.contains(':') {
        format!("[{address}]:{}", text(&member["port"]))
    } else {
        format!("{address}:{}", text(&member["port"]))
    };
    let mut state = text(&member["health"]);
    if member["answered"].as_bool() == Some(true) {
        state.push_str(", answered");
    }
    let since = member["since"]
        .as_f64()
        .map_or_else(|| "-".to_string(), |since| ago(now - since));
    let result = match (&member["last_result"], member["last_latency_ms"].as_f64()) {
        (Value::String(ok), Some(latency)) if ok == "ok" => format!("ok in {latency:.1} ms"),
        (Value::Null, _) => "not probed yet".to_string(),
        (other, _) => text(other),
    };
    let detection = member["detection_ms"]
        .as_f64()
        .map_or_else(|| "-".to_string(), |ms| format!("{ms:.0} ms"));
    let drained = if member["drained"].as_bool() == Some(true) {
        "yes"
    } else {
        "no"
    };
    [
        address,
        state,
        since,
        result,
        text(&member["down_signal"]),
        detection,
        drained.to_string(),
        text(&member["source"]),
    ]
}

fn write_row(out: &mut String, cells: &[String; 8], widths: &[usize; 8]) {
    let mut line = String::new();
    for (cell, width) in cells.iter().zip(widths) {
        let _ = write!(line, "{cell:<width$}  ");
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// A JSON scalar as a table cell; missing values are a dash.
fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_string(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// An age as people read one: "12s ago", "5m ago", "3h ago", "2d ago".
fn ago(seconds: f64) -> String {
    let seconds = seconds.max(0.0) as u64;
    match seconds {
        0..60 => format!("{seconds}s ago"),
        60..3600 => format!("{}m ago", seconds / 60),
        3600..86400 => format!("{}h ago", seconds / 3600),
        _ => format!("{}d ago", seconds / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCUMENT: &str = r#"{"ready": true, "zones": [{"origin": "k8s.example.com.", "serial": 7,
        "pools": [{"name": "api.k8s.example.com.", "ttl": 5, "all_down": "all", "min_up": 1,
        "state": "healthy", "up": 1, "members": [
          {"address": "192.0.2.10", "port": 6443, "health": "up", "answered": true, "drained": false,
           "since": 1000.0, "last_result": "ok", "last_latency_ms": 0.4, "down_signal": null,
           "detection_ms": null, "source": "file"},
          {"address": "2001:db8::11", "port": 6443, "health": "down", "answered": false, "drained": true,
           "since": 900.0, "last_result": "connection refused", "last_latency_ms": null,
           "down_signal": "refused", "detection_ms": 7.2, "source": "update"}]}]}]}"#;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn a_discovering_pool_says_how_its_watch_goes() {
        let document = DOCUMENT.replace(
            r#""up": 1, "members""#,
            r#""up": 1, "discover": {"server": "https://api.k8s.example.com:6443",
              "through": "192.0.2.10:6443", "connected": true, "last_event": 1020.0,
              "proposed": ["192.0.2.10", "192.0.2.13"], "outside_allow": ["198.51.100.7"],
              "last_error": "through 192.0.2.11:6443: connection refused", "last_error_at": 1000.0,
              "last_refused": null}, "members""#,
        );
        let status = Status::parse(&document).expect("a status document");
        let table = status.table(at(1030));
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[1],
            "discover (https://api.k8s.example.com:6443): watching through 192.0.2.10:6443; last event 10s ago; proposes [192.0.2.10 192.0.2.13]"
        );
        assert_eq!(lines[2], "  ignored, outside allow: [198.51.100.7]");
        assert_eq!(
            lines[3],
            "  last error (30s ago): through 192.0.2.11:6443: connection refused"
        );
        assert!(lines[4].starts_with("MEMBER"), "{table}");
    }

    #[test]
    fn a_table_per_pool_with_every_column() {
        let status = Status::parse(DOCUMENT).expect("a status document");
        let table = status.table(at(1030));
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "api.k8s.example.com. (zone k8s.example.com., serial 7): 1 of 2 up, healthy; ttl 5, min_up 1, all_down all"
        );
        assert!(lines[1].starts_with("MEMBER"), "{table}");
        assert!(lines[2].starts_with("192.0.2.10:6443"), "{table}");
        for cell in ["up, answered", "30s ago", "ok in 0.4 ms", "file"] {
            assert!(
                lines[2].contains(cell),
                "{cell:?} missing from {:?}",
                lines[2]
            );
        }
        for cell in [
            "[2001:db8::11]:6443",
            "down",
            "2m ago",
            "connection refused",
            "refused",
            "7 ms",
            "yes",
            "update",
        ] {
            assert!(
                lines[3].contains(cell),
                "{cell:?} missing from {:?}",
                lines[3]
            );
        }
        assert_eq!(status.verdict(), Verdict::EveryPoolUp);
    }

    #[test]
    fn a_pool_with_no_member_up_is_the_failing_verdict() {
        let status = Status::parse(&DOCUMENT.replace("\"up\": 1,", "\"up\": 0,")).expect("parses");
        assert_eq!(status.verdict(), Verdict::SomePoolDown);
    }

    #[test]
    fn something_else_than_a_status_document_is_an_error() {
        assert!(matches!(
            Status::parse("not json"),
            Err(StatusError::NotJson(_))
        ));
        assert!(matches!(
            Status::parse("{\"ok\": true}"),
            Err(StatusError::NotAStatusDocument)
        ));
    }

    #[test]
    fn a_secondary_zone_says_where_its_copy_stands() {
        let status = Status::parse(
            r#"{"ready": true, "zones": [], "secondaries": [{"origin": "k8s.example.com.",
            "primary": "192.0.2.53:53", "serial": 42, "state": "refresh overdue",
            "last_refresh": 1000.0, "last_error": "timed out"}]}"#,
        )
        .expect("a status document");
        let table = status.table(at(1090));
        assert!(
            table.starts_with(
                "secondary k8s.example.com. from 192.0.2.53:53: serial 42, refresh overdue, refreshed 1m ago\n  last error: timed out\n"
            ),
            "{table}"
        );
    }

    #[test]
    fn ages_read_as_people_say_them() {
        assert_eq!(ago(5.0), "5s ago");
        assert_eq!(ago(125.0), "2m ago");
        assert_eq!(ago(7300.0), "2h ago");
        assert_eq!(ago(200_000.0), "2d ago");
        assert_eq!(ago(-3.0), "0s ago");
    }
}
