//! Line-at-a-time reading shared by the text formats.

use std::io::Read;
use std::path::Path;

use super::{Position, ReadStats, Sink, SourceError};
use crate::event::Event;

/// Longest line accepted: a guard against a binary file read as text.
pub(crate) const MAX_LINE: usize = 1 << 20;

/// Calls `f(line_number, line)` for every line (with its newline, if it
/// has one). Lines are handed out straight from a large read buffer, found
/// with `memchr`: no copy and no allocation per line. Lines longer than
/// [`MAX_LINE`] are an error.
pub(crate) fn for_each_line(
    path: &Path,
    mut reader: impl Read,
    mut f: impl FnMut(u64, &[u8]) -> Result<(), SourceError>,
) -> Result<(), SourceError> {
    const CHUNK: usize = 1 << 18;
    let mut buf: Vec<u8> = vec![0; CHUNK];
    // buf[start..end] holds bytes not yet handed out.
    let (mut start, mut end) = (0usize, 0usize);
    let mut number = 0u64;
    let mut eof = false;
    loop {
        // Hand out every complete line in the buffer.
        while let Some(nl) = memchr::memchr(b'\n', &buf[start..end]) {
            number += 1;
            f(number, &buf[start..start + nl + 1])?;
            start += nl + 1;
        }
        if eof {
            if start < end {
                number += 1;
                f(number, &buf[start..end])?;
            }
            return Ok(());
        }
        // Keep the partial line, grow only if one line fills the buffer.
        buf.copy_within(start..end, 0);
        end -= start;
        start = 0;
        if end == buf.len() {
            if buf.len() > MAX_LINE {
                return Err(SourceError::new(
                    path,
                    Position::Line(number + 1),
                    format!("line longer than {MAX_LINE} bytes (not a text recording?)"),
                ));
            }
            buf.resize(buf.len() * 2, 0);
        }
        match reader.read(&mut buf[end..]) {
            Ok(0) => eof = true,
            Ok(n) => end += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(SourceError::io(path, Position::Line(number + 1), &e)),
        }
    }
}

/// How a line-based format's lines become events.
pub(crate) struct LineFormat {
    /// Names the format in "not a ... event line" warnings.
    pub name: &'static str,
    pub parse: for<'l> fn(&'l str) -> Option<Event<'l>>,
    /// The clock is a time of day: count midnights.
    pub time_of_day: bool,
}

/// The reading loop every text format shares: lines to events, with
/// blank lines ignored, bad ones counted (and the first one kept for the
/// warning), and the compat noise filter applied when asked.
pub fn read_events(
    path: &Path,
    reader: impl Read,
    format: &LineFormat,
    compat_filter: bool,
    sink: &mut Sink<'_>,
) -> Result<ReadStats, SourceError> {
    let mut stats = ReadStats::default();
    let mut days = DayCounter::default();
    for_each_line(path, reader, |number, raw| {
        if compat_filter && compat_noise(raw) {
            stats.filtered += 1;
            return Ok(());
        }
        let Ok(line) = std::str::from_utf8(raw) else {
            stats.malformed_at(Position::Line(number), "not valid UTF-8");
            return Ok(());
        };
        match (format.parse)(line) {
            Some(mut event) => {
                // Compat keeps the reference's clock: time of day, no date.
                if format.time_of_day && !compat_filter {
                    event.ts_ns = days.unwrap(event.ts_ns);
                }
                stats.events += 1;
                sink(&event)
            }
            None if line.trim().is_empty() => Ok(()),
            None => {
                stats.malformed_at(
                    Position::Line(number),
                    format!("not a {} event line", format.name),
                );
                Ok(())
            }
        }
    })?;
    Ok(stats)
}

/// Splits on ASCII whitespace, returning each token with its byte offset.
pub(crate) fn tokens_with_offsets(line: &str) -> impl Iterator<Item = (usize, &str)> {
    let bytes = line.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() {
            return None;
        }
        let start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        Some((start, &line[start..i]))
    })
}

/// The rest of `line` from `offset`, trimmed: the `info` of an event.
pub(crate) fn rest_from(line: &str, offset: Option<usize>) -> &str {
    offset.map_or("", |o| line[o..].trim_end())
}

/// Parses `HH:MM:SS.fffffffff` into nanoseconds since midnight (1 to 9
/// fraction digits, or none).
pub(crate) fn parse_time_of_day(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let two = |i: usize| -> Option<u64> {
        let (x, y) = (b[i].wrapping_sub(b'0'), b[i + 1].wrapping_sub(b'0'));
        (x < 10 && y < 10).then(|| u64::from(x * 10 + y))
    };
    let (h, m, sec) = (two(0)?, two(3)?, two(6)?);
    if h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let mut ns = 0u64;
    match &b[8..] {
        [] => {}
        [b'.', frac @ ..] if !frac.is_empty() && frac.len() <= 9 => {
            for &c in frac {
                let d = c.wrapping_sub(b'0');
                if d >= 10 {
                    return None;
                }
                ns = ns * 10 + u64::from(d);
            }
            ns *= 10u64.pow(9 - frac.len() as u32);
        }
        _ => return None,
    }
    Some(((h * 60 + m) * 60 + sec) * 1_000_000_000 + ns)
}

/// Midnight roll-over for time-of-day clocks: when time jumps back by more
/// than 12 hours, a day has passed.
#[derive(Default)]
pub(crate) struct DayCounter {
    last: Option<u64>,
    offset: u64,
}

impl DayCounter {
    const DAY: u64 = 86_400_000_000_000;

    pub fn unwrap(&mut self, tod: u64) -> u64 {
        if let Some(last) = self.last {
            if tod + Self::DAY / 2 < last {
                self.offset += Self::DAY;
            }
        }
        self.last = Some(tod);
        tod + self.offset
    }
}

/// The reference's noise filter (SPEC §1, quirk Q2): a line is dropped when
/// Python's `repr()` of its bytes is at most 20 characters, or contains one
/// of the sysdig metadata words anywhere.
pub(crate) fn compat_noise(line_with_newline: &[u8]) -> bool {
    // repr() adds at least 3 characters, so only short lines can be <= 20.
    if line_with_newline.len() < 18 && py_bytes_repr_len(line_with_newline) <= 20 {
        return true;
    }
    has_noise_word(line_with_newline)
}

/// Whether `text` holds one of the sysdig metadata words of the reference's
/// noise filter.
pub fn has_noise_word(text: &[u8]) -> bool {
    use memchr::memmem::Finder;
    use std::sync::LazyLock;
    // Four SIMD substring searches, built once; measured faster here than
    // one Aho-Corasick pass, whose rare-byte prefilter fires on most lines.
    static NOISE: LazyLock<[Finder<'static>; 4]> = LazyLock::new(|| {
        [
            b"container".as_slice(),
            b"json",
            b"expecting",
            b"falcosecurity-libs",
        ]
        .map(Finder::new)
    });
    NOISE.iter().any(|w| w.find(text).is_some())
}

/// Length of Python's `repr(bytes)`, e.g. `b'abc\n'` is 8.
fn py_bytes_repr_len(b: &[u8]) -> usize {
    // Python quotes with " when the bytes hold ' but no ".
    let dquote = b.contains(&b'\'') && !b.contains(&b'"');
    3 + b
        .iter()
        .map(|&c| match c {
            b'\\' | b'\t' | b'\n' | b'\r' => 2,
            b'\'' if !dquote => 2,
            0x20..=0x7e => 1,
            _ => 4,
        })
        .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_length() {
        assert_eq!(py_bytes_repr_len(b" \n"), 6); // b' \n'
        assert!(compat_noise(b" \n"));
        assert!(compat_noise(b"1 2 3 4 5 6\n")); // 17 chars
        assert!(!compat_noise(b"1 2 3 4 5 6 7 8 9 10\n")); // 25 chars
        assert_eq!(py_bytes_repr_len(b"it's\n"), 9);
        assert!(!compat_noise(
            b"180 14:58:20.492332843 0 cat (16518) < open\n"
        ));
        assert!(compat_noise(
            b"180 14:58:20.492332843 0 cat (1) < open name=/a/package.json\n"
        ));
    }

    #[test]
    fn time_of_day() {
        assert_eq!(parse_time_of_day("00:00:01.5"), Some(1_500_000_000));
        assert_eq!(
            parse_time_of_day("14:58:20.492332843"),
            Some(53_900_492_332_843)
        );
        assert_eq!(parse_time_of_day("25:00:00.0"), None);
        assert_eq!(parse_time_of_day("ab"), None);
        assert_eq!(parse_time_of_day("10:00:00"), Some(36_000_000_000_000));
        assert_eq!(parse_time_of_day("10:00:00."), None);
        assert_eq!(parse_time_of_day("10:00:00.1234567890"), None);
    }
}
