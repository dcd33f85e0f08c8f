//! Sources: turn a recording on disk into a stream of [`Event`]s.
//!
//! One module per input format. Every reader streams: it holds one line (or
//! one block) at a time and calls the sink for each event, so memory does not
//! grow with the file.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::event::{Event, RecordingInfo};

pub mod discover;
pub mod lidds;
pub(crate) mod lines;
pub(crate) mod param_rules;
pub mod scap;
pub mod sysdig_text;
pub(crate) mod text_params;

pub use discover::{discover, Discovered};

/// Where in a file something went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    Line(u64),
    Byte(u64),
    Whole,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Line(n) => write!(f, "line {n}"),
            Position::Byte(n) => write!(f, "byte {n}"),
            Position::Whole => Ok(()),
        }
    }
}

/// A reader error: always names the file and, where it can, the position.
#[derive(Clone, Debug, thiserror::Error)]
pub struct SourceError {
    pub path: PathBuf,
    pub position: Position,
    pub message: String,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Position::Whole => write!(f, "{}: {}", self.path.display(), self.message),
            p => write!(f, "{}: {}: {}", self.path.display(), p, self.message),
        }
    }
}

impl SourceError {
    pub fn new(path: &Path, position: Position, message: impl Into<String>) -> Self {
        SourceError {
            path: path.to_path_buf(),
            position,
            message: message.into(),
        }
    }

    pub fn io(path: &Path, position: Position, err: &std::io::Error) -> Self {
        SourceError::new(path, position, err.to_string())
    }
}

/// What a reader saw, besides the events it delivered.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReadStats {
    /// Events handed to the sink.
    pub events: u64,
    /// Lines/blocks that could not be parsed and were skipped.
    pub malformed: u64,
    /// Where the first malformed record was, and why.
    pub first_malformed: Option<(Position, String)>,
    /// Lines dropped on purpose (compat noise filter), not errors.
    pub filtered: u64,
}

impl ReadStats {
    pub(crate) fn malformed_at(&mut self, position: Position, why: impl Into<String>) {
        self.malformed += 1;
        if self.first_malformed.is_none() {
            self.first_malformed = Some((position, why.into()));
        }
    }
}

/// The sink a reader calls for every event. Returning an error stops reading.
pub type Sink<'s> = dyn FnMut(&Event<'_>) -> Result<(), SourceError> + 's;

/// A recording that can be read (more than once: training reads twice).
pub trait EventSource: Send + Sync {
    fn info(&self) -> &RecordingInfo;
    /// Streams every event, in file order, to `sink`.
    fn read(&self, options: &ReadOptions, sink: &mut Sink<'_>) -> Result<ReadStats, SourceError>;
}

/// Reader settings that depend on the analysis mode.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// Compat mode: apply the reference's noise-line filter, and fill
    /// [`crate::event::Event::info`] (the rendered text its token rule
    /// reads; binary sources only for the events that rule reads, up to
    /// the token it reads).
    /// Otherwise binary sources may leave `info` empty.
    pub compat_line_filter: bool,
    /// Keep only events of this container id (scap sources).
    pub container: Option<String>,
}

/// A recording's display name: its file name.
pub fn display_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
