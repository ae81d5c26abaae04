//! The health of one pool member as the rest of apidns sees it: a small shared cell that the
//! prober writes and the live-set builder reads.

use std::sync::atomic::{AtomicU8, Ordering};

/// What is known about a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Health {
    /// Not probed yet: never answered, except when a pool answers with every member.
    Pending = 0,
    Up = 1,
    Down = 2,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Pending => "pending",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// A member's current health, shared between its prober and every snapshot that serves it.
#[derive(Debug)]
pub struct MemberStatus {
    health: AtomicU8,
}

impl MemberStatus {
    pub fn new(health: Health) -> Self {
        Self {
            health: AtomicU8::new(health as u8),
        }
    }

    pub fn health(&self) -> Health {
        match self.health.load(Ordering::Acquire) {
            1 => Health::Up,
            2 => Health::Down,
            _ => Health::Pending,
        }
    }

    /// Sets the health and says whether it changed.
    pub fn set(&self, health: Health) -> bool {
        self.health.swap(health as u8, Ordering::AcqRel) != health as u8
    }
}
