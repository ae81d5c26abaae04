//! One secondary zone's refresh loop (RFC 1034 section 4.3.5, RFC 1996): an SOA query, and a
//! transfer (IXFR from the copy held, AXFR otherwise) when the primary's serial is newer; again
//! at the SOA's refresh after a success, at its retry after a failure, and at once on a NOTIFY
//! from the primary. Past the SOA's expire without reaching the primary, the copy is withdrawn
//! and the zone answers SERVFAIL until the primary answers again.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hickory_proto::rr::{Name, RData};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::status::SecondaryMetrics;
use super::{Deliver, Shared, state};
use crate::config::{PrimarySource, TsigKey};
use crate::transfer::incoming::copy::serial_greater;
use crate::transfer::incoming::{Fetched, ZoneCopy, fetch, soa_serial};

/// How long an SOA query may take, resends included.
const SOA_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole transfer may take (IXFR, and the AXFR it falls back to).
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a zone with no copy yet asks its primary (there is no SOA to give a retry).
const NO_COPY_RETRY: Duration = Duration::from_secs(5);
/// The shortest wait between attempts, whatever the SOA says (a refresh of 0 would spin).
const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// How often the age gauge and the expire are looked at.
const TICK: Duration = Duration::from_secs(1);

/// What the loop holds of its zone.
struct Held {
    copy: Option<ZoneCopy>,
    /// When the primary last answered for the copy.
    last_success: Option<SystemTime>,
    /// The copy was withdrawn at expire (the zone answers SERVFAIL).
    withdrawn: bool,
}

/// The SOA timers of a copy: refresh, retry, expire.
fn timers(copy: Option<&ZoneCopy>) -> (Duration, Duration, Duration) {
    let Some(RData::SOA(soa)) = copy.map(|copy| &copy.soa.data) else {
        return (NO_COPY_RETRY, NO_COPY_RETRY, Duration::MAX);
    };
    let seconds = |value: i32| Duration::from_secs(u64::try_from(value).unwrap_or(0));
    (
        seconds(soa.refresh).max(MIN_INTERVAL),
        seconds(soa.retry).max(MIN_INTERVAL),
        seconds(soa.expire),
    )
}

/// The zone's loop, until `stop`.
pub(super) async fn run<D: Deliver>(
    shared: Arc<Shared<D>>,
    origin: Name,
    primary: PrimarySource,
    key: Option<TsigKey>,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    let kept = shared
        .state_dir
        .as_deref()
        .and_then(|dir| state::load(dir, &origin));
    let mut held = Held {
        last_success: kept.as_ref().map(|kept| kept.last_success),
        copy: kept.map(|kept| kept.copy),
        withdrawn: false,
    };
    publish(&shared, &origin, &primary, &held, None);
    // The daemon did not put a copy past its expire in force: it is withdrawn from the start.
    if expired(&held, SystemTime::now()) {
        held.withdrawn = true;
        publish(&shared, &origin, &primary, &held, None);
    }
    // At start, as BIND and Knot do: ask the primary at once.
    let mut next = Instant::now();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep_until(next) => {}
            () = wake.notified() => {}
            _ = tick.tick() => {
                watch_expire(&shared, &origin, &primary, &mut held).await;
                continue;
            }
        }
        let succeeded = attempt(&shared, &origin, &primary, key.as_ref(), &mut held).await;
        let (refresh, retry, _) = timers(held.copy.as_ref());
        next = Instant::now() + if succeeded { refresh } else { retry };
        watch_expire(&shared, &origin, &primary, &mut held).await;
    }
}

fn expired(held: &Held, now: SystemTime) -> bool {
    let (_, _, expire) = timers(held.copy.as_ref());
    match (&held.copy, held.last_success) {
        (Some(_), Some(last)) => now.duration_since(last).unwrap_or_default() > expire,
        _ => false,
    }
}

/// Keeps the age gauge current, and withdraws the copy once past its expire.
async fn watch_expire<D: Deliver>(
    shared: &Shared<D>,
    origin: &Name,
    primary: &PrimarySource,
    held: &mut Held,
) {
    let now = SystemTime::now();
    if let Some(last) = held.last_success {
        let age = now.duration_since(last).unwrap_or_default();
        shared
            .metrics
            .seconds_since_refresh
            .get_or_create(&SecondaryMetrics::zone(origin))
            .set(i64::try_from(age.as_secs()).unwrap_or(i64::MAX));
    }
    if held.withdrawn || !expired(held, now) {
        return;
    }
    error!(zone = %origin, primary = %primary.address, "the copy is past the SOA's expire without reaching the primary: the zone answers SERVFAIL");
    if let Err(reason) = shared.deliver.deliver(origin.clone(), None).await {
        warn!(zone = %origin, %reason, "the writer did not withdraw the copy");
    }
    held.withdrawn = true;
    let last_error = shared.status.get(origin).and_then(|zone| zone.last_error);
    publish(shared, origin, primary, held, last_error);
}

/// One refresh: `true` when the primary answered and whatever it sent is in force.
async fn attempt<D: Deliver>(
    shared: &Shared<D>,
    origin: &Name,
    primary: &PrimarySource,
    key: Option<&TsigKey>,
    held: &mut Held,
) -> bool {
    let metrics = &shared.metrics;
    if let Some(have) = &held.copy {
        match soa_serial(primary.address, key, origin, SOA_TIMEOUT).await {
            Ok(serial) if !serial_greater(serial, have.serial()) => {
                metrics.count(origin, "up_to_date", "ok");
                return confirmed(shared, origin, primary, held).await;
            }
            Ok(_) => {}
            Err(error) => {
                warn!(zone = %origin, primary = %primary.address, %error, "SOA query to the primary failed");
                metrics.count(origin, "soa", error.label());
                publish(shared, origin, primary, held, Some(error.to_string()));
                return false;
            }
        }
    }
    let kind_asked = if held.copy.is_some() { "ixfr" } else { "axfr" };
    let fetched = fetch(
        primary.address,
        key,
        origin,
        held.copy.as_ref(),
        FETCH_TIMEOUT,
    )
    .await;
    let (kind, copy) = match fetched {
        Ok(Fetched::UpToDate { .. }) => {
            metrics.count(origin, "up_to_date", "ok");
            return confirmed(shared, origin, primary, held).await;
        }
        Ok(Fetched::Axfr(copy)) => ("axfr", copy),
        Ok(Fetched::Ixfr(copy)) => ("ixfr", copy),
        Err(error) => {
            warn!(zone = %origin, primary = %primary.address, %error, "zone transfer from the primary failed; the last good copy stays");
            metrics.count(origin, kind_asked, error.label());
            publish(shared, origin, primary, held, Some(error.to_string()));
            return false;
        }
    };
    if let Err(reason) = shared
        .deliver
        .deliver(origin.clone(), Some(copy.clone()))
        .await
    {
        error!(zone = %origin, primary = %primary.address, serial = copy.serial(), %reason, "copy from the primary refused; the last good copy stays");
        metrics.count(origin, kind, "refused");
        publish(
            shared,
            origin,
            primary,
            held,
            Some(format!(
                "copy of serial {} refused: {reason}",
                copy.serial()
            )),
        );
        return false;
    }
    metrics.count(origin, kind, "ok");
    info!(zone = %origin, primary = %primary.address, kind, serial = copy.serial(), records = copy.records.len(), "zone transferred from the primary");
    keep(shared, &copy, primary).await;
    held.copy = Some(copy);
    held.last_success = Some(SystemTime::now());
    held.withdrawn = false;
    publish(shared, origin, primary, held, None);
    true
}

/// The primary's serial is the one held: the copy is current as of now (and back in force if
/// it had expired).
async fn confirmed<D: Deliver>(
    shared: &Shared<D>,
    origin: &Name,
    primary: &PrimarySource,
    held: &mut Held,
) -> bool {
    if held.withdrawn
        && let Some(copy) = &held.copy
    {
        if let Err(reason) = shared
            .deliver
            .deliver(origin.clone(), Some(copy.clone()))
            .await
        {
            publish(shared, origin, primary, held, Some(reason.to_string()));
            return false;
        }
        info!(zone = %origin, "primary reached again: the copy is back in force");
    }
    held.withdrawn = false;
    held.last_success = Some(SystemTime::now());
    if let Some(dir) = &shared.state_dir
        && let Err(error) = state::touch(dir, origin)
    {
        warn!(zone = %origin, %error, "cannot mark the kept copy as confirmed; a restart counts its expire from the last transfer");
    }
    publish(shared, origin, primary, held, None);
    true
}

/// Writes the copy to `state_dir`, off the runtime's workers (it fsyncs).
async fn keep<D: Deliver>(shared: &Shared<D>, copy: &ZoneCopy, primary: &PrimarySource) {
    let Some(dir) = shared.state_dir.clone() else {
        return;
    };
    let copy = copy.clone();
    let address = primary.address;
    let written = tokio::task::spawn_blocking(move || state::write(&dir, &copy, address)).await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            warn!(%error, "cannot keep the copy in state_dir; a restart waits for the primary")
        }
        Err(error) => warn!(%error, "the task keeping the copy failed"),
    }
}

/// Puts the held state in /status and the gauges.
fn publish<D: Deliver>(
    shared: &Shared<D>,
    origin: &Name,
    primary: &PrimarySource,
    held: &Held,
    error: Option<String>,
) {
    let (refresh, _, expire) = timers(held.copy.as_ref());
    let serial = held.copy.as_ref().map(ZoneCopy::serial);
    shared.status.update(origin, primary.address, |zone| {
        zone.serial = serial;
        zone.last_success = held.last_success;
        zone.refresh = if held.copy.is_some() {
            refresh
        } else {
            Duration::ZERO
        };
        zone.expire = if held.copy.is_some() {
            expire
        } else {
            Duration::ZERO
        };
        zone.expired = held.withdrawn;
        zone.last_error = error;
    });
    let label = SecondaryMetrics::zone(origin);
    shared
        .metrics
        .expired
        .get_or_create(&label)
        .set(i64::from(held.withdrawn));
    if let Some(serial) = serial {
        shared
            .metrics
            .serial
            .get_or_create(&label)
            .set(i64::from(serial));
    }
}
