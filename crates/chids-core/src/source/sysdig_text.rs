//! `sysdig -r FILE` text, the default line format:
//! `evt.num evt.time cpu proc.name (tid) dir evt.type evt.info...`

use std::fs::File;
use std::path::Path;

use super::lines::{parse_time_of_day, read_events, rest_from, tokens_with_offsets, LineFormat};
use super::text_params::params_from_info;
use super::{EventSource, Position, ReadOptions, ReadStats, Sink, SourceError};
use crate::event::{Direction, Event, Format, Labels, RecordingInfo};

pub struct SysdigText {
    info: RecordingInfo,
}

impl SysdigText {
    pub fn new(path: &Path) -> Self {
        SysdigText {
            info: RecordingInfo {
                name: super::display_name(path),
                path: path.to_path_buf(),
                format: Format::SysdigText,
                labels: Labels::default(),
            },
        }
    }

    /// Whether a line looks like sysdig's default output (for sniffing).
    pub(crate) fn looks_like(line: &str) -> bool {
        let t: Vec<&str> = line.split_ascii_whitespace().take(7).collect();
        t.len() == 7
            && t[0].bytes().all(|b| b.is_ascii_digit())
            && parse_time_of_day(t[1]).is_some()
            && t[4].starts_with('(')
            && t[4].ends_with(')')
            && (t[5] == ">" || t[5] == "<")
    }
}

impl EventSource for SysdigText {
    fn info(&self) -> &RecordingInfo {
        &self.info
    }

    fn read(&self, options: &ReadOptions, sink: &mut Sink<'_>) -> Result<ReadStats, SourceError> {
        let path = &self.info.path;
        let file = File::open(path).map_err(|e| SourceError::io(path, Position::Whole, &e))?;
        let format = LineFormat {
            name: "sysdig",
            parse: parse_line,
            time_of_day: true,
        };
        read_events(path, file, &format, options.compat_line_filter, sink)
    }
}

fn parse_line(line: &str) -> Option<Event<'_>> {
    let mut tokens = tokens_with_offsets(line);
    let _num = tokens.next()?;
    let (_, time) = tokens.next()?;
    let _cpu = tokens.next()?;
    let (_, process) = tokens.next()?;
    let (_, tid) = tokens.next()?;
    let (_, dir) = tokens.next()?;
    let (_, syscall) = tokens.next()?;
    let info_start = tokens.next().map(|(o, _)| o);
    let ts_ns = parse_time_of_day(time)?;
    let tid = tid
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .and_then(|t| t.parse().ok())
        .unwrap_or(-1);
    let dir = Direction::from_char(*dir.as_bytes().first()?)?;
    let info = rest_from(line, info_start);
    Some(Event {
        ts_ns,
        tid,
        pid: 0,
        process,
        dir,
        syscall,
        info,
        params: params_from_info(syscall, dir, info),
    })
}
