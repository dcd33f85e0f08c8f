//! The event model every source produces and every later stage consumes.
//!
//! Sources hand out events borrowed from their own buffers (`Event<'a>`), so
//! reading does not allocate per event; the window stage keeps only the few
//! interned facts it needs.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Enter (`>`) or exit (`<`) half of a system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    Enter,
    Exit,
}

impl Direction {
    pub(crate) fn from_char(c: u8) -> Option<Direction> {
        match c {
            b'>' => Some(Direction::Enter),
            b'<' => Some(Direction::Exit),
            _ => None,
        }
    }

    pub fn as_char(self) -> char {
        match self {
            Direction::Enter => '>',
            Direction::Exit => '<',
        }
    }
}

/// A socket address a call names: the peer of `connect`, `accept`,
/// `sendto`/`recvfrom` (and their `msg` forms), the local address of `bind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint<'a> {
    Ip(SocketAddr),
    /// A Unix socket's path in [`crate::escape`]d form (empty when unnamed).
    Unix(&'a str),
}

/// The typed parameters the features read. Every source fills them once,
/// from its own representation (kernel records, scap parameters, text
/// tokens); no later stage re-parses rendered text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Params<'a> {
    /// The file the call names, in [`crate::escape`]d form (printable,
    /// no whitespace): `open` family `name`, `stat` family `path`, `execve`
    /// `filename`, and for `clone` the `exe` of the new task. Absolute when
    /// the source knows the working directory (scap, sysdig text), as
    /// passed to the call otherwise (live capture).
    pub path: Option<&'a str>,
    /// The socket address the call names (see [`Endpoint`]).
    pub endpoint: Option<Endpoint<'a>>,
    /// The return value of an exit event, when the source has it.
    pub ret: Option<i64>,
}

/// One system-call event, borrowed from the reader's buffer.
#[derive(Clone, Copy, Debug)]
pub struct Event<'a> {
    /// Nanoseconds. Since the Unix epoch when the source knows the date
    /// (scap, LID-DS, live); since midnight for `sysdig -r` text, which
    /// prints only the time of day.
    pub ts_ns: u64,
    pub tid: i64,
    /// Process (thread group) id, 0 when the source does not record it.
    pub pid: i64,
    pub process: &'a str,
    pub dir: Direction,
    /// Event type as sysdig names it (`open`, `openat`, `switch`, ...).
    pub syscall: &'a str,
    /// The parameters as `sysdig -r` prints `evt.info`: space-separated
    /// `name=value` tokens. Only compat mode reads it, by token position,
    /// because that is the reference's rule (SPEC §3, quirk Q7); modern
    /// mode reads [`Event::params`]. Sources may leave it empty when the
    /// reader is not in compat mode, and binary ones (scap) fill it only
    /// for the events compat takes an argument from, up to that token.
    pub info: &'a str,
    /// Typed parameters (modern mode, network arguments, the agent).
    pub params: Params<'a>,
}

impl<'a> Event<'a> {
    /// Whitespace-separated tokens of `info`, as the reference splits them.
    pub fn tokens(&self) -> std::str::SplitAsciiWhitespace<'a> {
        self.info.split_ascii_whitespace()
    }
}

/// Ground truth that comes with a recording (LID-DS metadata).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Labels {
    /// The recording contains an attack.
    pub exploit: bool,
    /// When the attack starts, ns since the epoch (LID-DS 2021
    /// `time.exploit[0].absolute`, LID-DS 2019 `exploit_start_time`).
    pub exploit_ns: Option<u64>,
}

/// What a recording is, before any of it is read.
#[derive(Clone, Debug)]
pub struct RecordingInfo {
    /// Display name: the file name (for zips, the recording's base name).
    pub name: String,
    pub path: PathBuf,
    pub format: Format,
    pub labels: Labels,
}

/// The input formats chids recognises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `sysdig -r FILE` default text output.
    SysdigText,
    /// LID-DS 2021: `.zip` with `<name>.sc` + `<name>.json`, or the `.sc` beside its `.json`.
    Lidds2021,
    /// LID-DS 2019: `<name>.txt` with `runs.csv` beside it.
    Lidds2019,
    /// sysdig / Falco capture file (`.scap`, optionally gzip-compressed).
    Scap,
}
