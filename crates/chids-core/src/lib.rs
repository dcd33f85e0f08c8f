//! chids-core: the first stages of the pipeline, from system-call sources
//! to graph features.
//!
//! ```text
//! source ──► event ──► window ──► ssg (features)
//! ```
//!
//! A library that never prints: readers return typed events and errors
//! that name the file and position.

pub mod cache;
pub mod escape;
pub mod event;
pub mod features;
pub mod mode;
pub mod output;
pub mod patterns;
pub mod source;
pub mod ssg;
pub mod window;
