//! chids: container host intrusion detection from system-call sequence graphs.
//!
//! The pipeline is one straight line, one module per stage:
//!
//! ```text
//! source ──► event ──► window ──► ssg (features) ──► model ──► detect / eval
//! ```

pub mod args;
pub(crate) mod cache;
pub mod calibrate;
pub mod detect;
pub mod escape;
pub mod eval;
pub mod event;
pub mod features;
#[cfg(feature = "live")]
pub mod live;
pub mod model;
mod output;
pub mod patterns;
pub mod source;
pub mod ssg;
pub mod stide;
pub mod train;
pub mod window;
