//! chids-eval: evaluation (SPEC §7) — the reference's recording-level
//! table of detection and false-alarm rates, the operating point, the
//! LID-DS metrics, reports and plots. Only the `chids` command links it:
//! the node agent carries no plotting code.

pub mod metrics;
pub mod plot;
pub mod report;
mod table;

pub use table::{operating_point, recording_table, series, table, OperatingPoint, Row};
