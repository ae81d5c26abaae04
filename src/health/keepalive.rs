//! Keepalive on held connections, and an early look at it: a black-holed host (no FIN, no RST)
//! is noticed by the held connection's keepalive, and reading `TCP_INFO` after each keepalive
//! probe sees it go unanswered about a second before the kernel gives up on the connection.
//!
//! Linux counts keepalive idle time and interval in whole seconds, so the tightest settings are
//! a probe 1 s after the last ACK and the connection's end 1 s after an unanswered probe: 1 to
//! 2 s after the host vanished. The `TCP_INFO` check starts a confirming connect (with half the
//! probe timeout) about 50 ms after the unanswered probe went out, 0.05 to 1.05 s after the
//! host vanished. It costs one `getsockopt` and one timer per held connection per second.
//!
//! Reading `TCP_INFO` takes the only `unsafe` code in `health/` (in [`read`]): socket2 and
//! tokio do not expose it.

use std::io;
use std::time::Duration;

use tokio::net::TcpStream;

/// A keepalive probe goes out after 1 s without an ACK (the least Linux accepts).
pub const IDLE: Duration = Duration::from_secs(1);
/// One unanswered probe ends the connection at the next keepalive tick, 1 s later.
const INTERVAL: Duration = Duration::from_secs(1);
const RETRIES: u32 = 1;
/// No data is ever sent on a held TCP connection, so `TCP_USER_TIMEOUT` only bounds keepalive:
/// with it set, the kernel ends the connection at the first tick after one unanswered probe
/// once this much time has passed since the last ACK.
const USER_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long an outstanding keepalive probe may go unanswered before a confirming connect:
/// a LAN answers in well under a millisecond; the connection's smoothed RTT is added for others.
const ANSWER_MARGIN: Duration = Duration::from_millis(50);
/// The shortest wait between two checks of one connection.
const MIN_RECHECK: Duration = Duration::from_millis(20);

/// Sets keepalive and `TCP_USER_TIMEOUT` on a connection about to be held. Failures are
/// ignored: the connection still works, and the checks below then only see it later.
pub fn tune(stream: &TcpStream) {
    let socket = socket2::SockRef::from(stream);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(IDLE)
        .with_interval(INTERVAL)
        .with_retries(RETRIES);
    let _ = socket.set_tcp_keepalive(&keepalive);
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = socket.set_tcp_user_timeout(Some(USER_TIMEOUT));
}

/// What `TCP_INFO` says about a held connection's keepalive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepaliveInfo {
    /// Time since the last ACK from the peer (a keepalive probe's answer is one).
    pub since_ack: Duration,
    /// Keepalive probes sent and not answered yet.
    pub probes_out: u8,
    /// Smoothed round-trip time.
    pub rtt: Duration,
}

/// What to do after a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assessment {
    /// All answered: check again after this long (just after the next probe is due).
    CheckIn(Duration),
    /// A probe is out: check again after this long; if it is still out then, it went unanswered.
    Outstanding(Duration),
    /// A probe went unanswered: confirm with a fresh connect.
    Unanswered,
}

/// Decides from one reading; `outstanding` says whether the previous check saw a probe out.
pub fn assess(info: KeepaliveInfo, outstanding: bool) -> Assessment {
    let margin = ANSWER_MARGIN + info.rtt * 2;
    if info.probes_out == 0 || info.since_ack < IDLE {
        // The next probe goes out IDLE after the last ACK; look just after its answer is due.
        let due = (IDLE + margin).saturating_sub(info.since_ack);
        return Assessment::CheckIn(due.max(MIN_RECHECK));
    }
    if outstanding {
        Assessment::Unanswered
    } else {
        // The probe may have left a moment ago; give it the margin from now.
        Assessment::Outstanding(margin)
    }
}

/// When to check a connection that was just connected (its handshake was the last ACK).
pub fn first_check() -> Duration {
    IDLE + ANSWER_MARGIN
}

/// Reads `TCP_INFO` of a held connection.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn read(stream: &TcpStream) -> io::Result<KeepaliveInfo> {
    use std::os::fd::AsRawFd;
    // SAFETY: `tcp_info` is a C struct whose fields are all unsigned integers, so all-zero bytes
    // are a valid value of it.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut length = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the pointer is to `info`, a local that outlives the call, and `length` holds its
    // size, so getsockopt writes at most that many bytes into it (an older kernel writes fewer:
    // the rest stay zero, and the three fields read below are in every kernel's struct). The
    // descriptor is `stream`'s, open for as long as `stream` is borrowed here.
    let result = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut length,
        )
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(KeepaliveInfo {
        since_ack: Duration::from_millis(u64::from(info.tcpi_last_ack_recv)),
        probes_out: info.tcpi_probes,
        rtt: Duration::from_micros(u64::from(info.tcpi_rtt)),
    })
}

/// Elsewhere there is no `TCP_INFO` to read: the checks never see a probe out, and the kernel's
/// keepalive alone ends a black-holed connection.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn read(_stream: &TcpStream) -> io::Result<KeepaliveInfo> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "no TCP_INFO"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(since_ack_ms: u64, probes_out: u8) -> KeepaliveInfo {
        KeepaliveInfo {
            since_ack: Duration::from_millis(since_ack_ms),
            probes_out,
            rtt: Duration::ZERO,
        }
    }

    #[test]
    fn answered_checks_again_after_the_next_probe() {
        assert_eq!(
            assess(info(0, 0), false),
            Assessment::CheckIn(Duration::from_millis(1050))
        );
        assert_eq!(
            assess(info(400, 0), true),
            Assessment::CheckIn(Duration::from_millis(650))
        );
        // The kernel's timer is late: no probe out yet, look again shortly.
        assert_eq!(
            assess(info(1200, 0), false),
            Assessment::CheckIn(MIN_RECHECK)
        );
    }

    #[test]
    fn a_probe_left_out_twice_is_unanswered() {
        assert_eq!(
            assess(info(1060, 1), false),
            Assessment::Outstanding(ANSWER_MARGIN)
        );
        assert_eq!(assess(info(1110, 1), true), Assessment::Unanswered);
        // Answered in between: back to the schedule.
        assert_eq!(
            assess(info(5, 0), true),
            Assessment::CheckIn(Duration::from_millis(1045))
        );
    }

    #[test]
    fn the_margin_grows_with_the_round_trip() {
        let far = KeepaliveInfo {
            rtt: Duration::from_millis(100),
            ..info(1060, 1)
        };
        assert_eq!(
            assess(far, false),
            Assessment::Outstanding(Duration::from_millis(250))
        );
    }
}
