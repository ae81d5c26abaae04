//! placeholder
pub struct NotifyCounters;
pub struct Notifier;
