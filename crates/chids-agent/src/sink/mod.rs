//! Where alerts go. Every alert is committed to the [`outbox`] first
//! (SQLite, on the node, by the writer thread of [`writer`]), then handed,
//! as one JSON object, to every [`AlertSink`] the agent was given: a file
//! or stdout ([`file`]), or a NATS subject whose delivery thread drains
//! the outbox ([`nats`]). The [`budget`] folds a workload's alerts past
//! its rate into summaries.

pub mod budget;
pub mod dispatch;
pub mod file;
pub mod nats;
pub mod outbox;
pub mod private_fs;
mod writer;

pub use dispatch::AlertDispatch;
pub use file::FileSink;
pub use nats::{NatsOptions, NatsSink};

use std::time::Duration;

use chids_live::LiveError;

/// Delivery figures of a sink, for metrics and the status file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SinkStats {
    /// Alerts handed over and confirmed by the destination.
    pub delivered: u64,
    /// Alerts waiting in the outbox for this sink.
    pub pending: u64,
    /// Their bytes.
    pub pending_bytes: u64,
    /// Alerts lost on the way (not stored, or dropped past the outbox's
    /// limits).
    pub lost: u64,
    /// Whether the destination is reachable now.
    pub connected: bool,
}

/// A destination for alerts.
pub trait AlertSink: Send {
    /// A short name for logs and metrics (`file`, `nats`).
    fn kind(&self) -> &'static str;
    /// Takes one alert (a JSON object without newline), already committed
    /// to the outbox.
    fn send(&mut self, alert: &[u8]) -> Result<(), LiveError>;
    fn stats(&self) -> SinkStats;
    /// Delivers what it still can within `grace`; what is left stays in
    /// the outbox for the next run.
    fn close(&mut self, grace: Duration);
    /// Lines worth logging since the last call (connection changes,
    /// a missing stream). The library never prints.
    fn take_log(&mut self) -> Vec<String> {
        Vec::new()
    }
}
