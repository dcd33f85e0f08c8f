//! Where alerts go. A consumer (the agent) hands each alert, as one JSON
//! object, to every [`AlertSink`] it was given and never knows which kind
//! it talks to: a file or stdout ([`file`]), or a NATS subject with an
//! on-disk spool for when the broker is away ([`nats`], [`spool`]).

pub mod file;
pub mod nats;
pub mod spool;

pub use file::FileSink;
pub use nats::{NatsOptions, NatsSink};

use std::time::Duration;

use chids_live::LiveError;

/// Delivery figures of a sink, for metrics and the status file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SinkStats {
    /// Alerts handed over and confirmed by the destination.
    pub delivered: u64,
    /// Bytes waiting in the on-disk spool.
    pub spooled_bytes: u64,
    /// Alerts waiting in the spool.
    pub spooled: u64,
    /// Alerts dropped because the spool was full (oldest first).
    pub lost: u64,
    /// Whether the destination is reachable now.
    pub connected: bool,
}

/// A destination for alerts.
pub trait AlertSink: Send {
    /// A short name for logs and metrics (`file`, `nats`).
    fn kind(&self) -> &'static str;
    /// Takes one alert (a JSON object without newline). When this returns
    /// Ok the alert is durable: written, or safely spooled.
    fn send(&mut self, alert: &[u8]) -> Result<(), LiveError>;
    fn stats(&self) -> SinkStats;
    /// Delivers what it still can within `grace`; what is left stays in
    /// the spool for the next run.
    fn close(&mut self, grace: Duration);
    /// Lines worth logging since the last call (connection changes,
    /// alerts dropped from a full spool). The library never prints.
    fn take_log(&mut self) -> Vec<String> {
        Vec::new()
    }
}
