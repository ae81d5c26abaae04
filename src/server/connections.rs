//! The TCP connection limit, shared by every listener: at most `max` connections are open, and
//! when a new one arrives at the limit, the connection idle the longest makes room for it.
//!
//! Why evict rather than refuse: DNS clients open a TCP connection to send a query at once, and
//! RFC 7766 (section 6.2) lets a server under pressure close idle connections, the longest-idle
//! first. Refusing new connections would let anyone who opens `max` idle connections shut every
//! resolver out of TCP, which is exactly where truncated UDP answers send them; evicting makes an
//! attacker re-open connections faster than real clients use theirs, and a real client whose
//! idle connection is closed simply reconnects. When no connection is idle, the one that has
//! spent the longest receiving its current message goes (a client that trickles a query in is the
//! likeliest attacker); connections that are answering are never interrupted, and when every
//! connection is answering, the new one is closed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

/// What a connection is doing, for choosing whom to evict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the first byte of its next query: evicted first.
    Idle = 0,
    /// Receiving a query: evicted when no connection is idle.
    Reading = 1,
    /// Answering and writing: never evicted.
    Writing = 2,
}

/// One open connection's state, shared between its task and the table.
#[derive(Debug)]
pub struct Connection {
    id: u64,
    /// `Phase` in the low two bits, the milliseconds since the table's epoch when the phase
    /// began above them: one atomic, so that a phase change costs one store.
    phase: AtomicU64,
    evicted: CancellationToken,
    epoch: Instant,
}

impl Connection {
    /// Records that the connection entered `phase` now.
    pub fn set_phase(&self, phase: Phase) {
        let since = self.epoch.elapsed().as_millis() as u64;
        self.phase
            .store((since << 2) | phase as u64, Ordering::Relaxed);
    }

    fn phase(&self) -> (Phase, u64) {
        let value = self.phase.load(Ordering::Relaxed);
        let phase = match value & 0b11 {
            0 => Phase::Idle,
            1 => Phase::Reading,
            _ => Phase::Writing,
        };
        (phase, value >> 2)
    }

    /// Cancelled when the table evicted this connection to make room for a new one.
    pub fn evicted(&self) -> &CancellationToken {
        &self.evicted
    }
}

/// The open connections of every listener.
#[derive(Debug)]
pub struct ConnectionTable {
    max: usize,
    open: Mutex<Vec<Arc<Connection>>>,
    next_id: AtomicU64,
    epoch: Instant,
}

/// A connection's place in the table, given back when dropped.
#[derive(Debug)]
pub struct Admission {
    pub connection: Arc<Connection>,
    table: Arc<ConnectionTable>,
    /// The connection closed to make room, if any.
    pub evicted: bool,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let id = self.connection.id;
        let mut open = self.table.lock();
        if let Some(index) = open.iter().position(|c| c.id == id) {
            open.swap_remove(index);
        }
    }
}

impl ConnectionTable {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            open: Mutex::new(Vec::with_capacity(max.min(4096))),
            next_id: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    /// Takes a place for a new connection, evicting another at the limit; `None` when every
    /// open connection is busy answering.
    pub fn admit(self: &Arc<Self>) -> Option<Admission> {
        let connection = Arc::new(Connection {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            phase: AtomicU64::new(Phase::Idle as u64),
            evicted: CancellationToken::new(),
            epoch: self.epoch,
        });
        connection.set_phase(Phase::Idle);
        let mut open = self.lock();
        let mut evicted = false;
        if open.len() >= self.max {
            let victim = open
                .iter()
                .enumerate()
                .filter_map(|(index, c)| match c.phase() {
                    (Phase::Writing, _) => None,
                    (phase, since) => Some((phase as u8, since, index)),
                })
                .min()
                .map(|(_, _, index)| index)?;
            open.swap_remove(victim).evicted.cancel();
            evicted = true;
        }
        open.push(connection.clone());
        drop(open);
        Some(Admission {
            connection,
            table: self.clone(),
            evicted,
        })
    }

    /// Connections open now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Arc<Connection>>> {
        // Nothing panics while holding the lock; a poisoned table is still a valid table.
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_the_limit_everyone_is_admitted() {
        let table = ConnectionTable::new(3);
        let admitted: Vec<Admission> = (0..3).map(|_| table.admit().unwrap()).collect();
        assert!(admitted.iter().all(|a| !a.evicted));
        assert_eq!(table.len(), 3);
        drop(admitted);
        assert!(table.is_empty());
    }

    #[test]
    fn at_the_limit_the_longest_idle_connection_is_evicted() {
        let table = ConnectionTable::new(3);
        let first = table.admit().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let second = table.admit().unwrap();
        let third = table.admit().unwrap();
        // The second has been idle longer than the third, the first is answering.
        first.connection.set_phase(Phase::Writing);
        let fourth = table.admit().unwrap();
        assert!(fourth.evicted);
        assert!(second.connection.evicted().is_cancelled());
        assert!(!first.connection.evicted().is_cancelled());
        assert!(!third.connection.evicted().is_cancelled());
        assert_eq!(table.len(), 3);
        // The evicted connection's own drop finds its place already given away.
        drop(second);
        assert_eq!(table.len(), 3);
    }

    #[test]
    fn idle_goes_before_reading_and_busy_connections_are_never_evicted() {
        let table = ConnectionTable::new(2);
        let reading = table.admit().unwrap();
        reading.connection.set_phase(Phase::Reading);
        std::thread::sleep(std::time::Duration::from_millis(5));
        let idle = table.admit().unwrap();
        let third = table.admit().unwrap();
        assert!(idle.connection.evicted().is_cancelled(), "idle first");
        assert!(!reading.connection.evicted().is_cancelled());
        third.connection.set_phase(Phase::Writing);
        let fourth = table.admit().unwrap();
        assert!(reading.connection.evicted().is_cancelled(), "then reading");
        fourth.connection.set_phase(Phase::Writing);
        assert!(table.admit().is_none(), "all answering: the new one waits");
        assert_eq!(table.len(), 2);
    }
}
