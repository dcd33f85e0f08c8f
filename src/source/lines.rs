//! Line-at-a-time reading shared by the text formats.

use std::io::{BufRead, Read};
use std::path::Path;

use super::{Position, SourceError};

/// Longest line accepted: a guard against a binary file read as text.
pub const MAX_LINE: usize = 1 << 20;

/// Calls `f(line_number, line)` for every line (without its newline),
/// reusing one buffer. Lines longer than [`MAX_LINE`] are an error.
pub fn for_each_line(
    path: &Path,
    mut reader: impl BufRead,
    mut f: impl FnMut(u64, &[u8]) -> Result<(), SourceError>,
) -> Result<(), SourceError> {
    let mut buf = Vec::with_capacity(256);
    let mut number = 0u64;
    loop {
        buf.clear();
        let n = reader
            .by_ref()
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| SourceError::io(path, Position::Line(number + 1), &e))?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        if buf.len() > MAX_LINE {
            return Err(SourceError::new(
                path,
                Position::Line(number),
                format!("line longer than {MAX_LINE} bytes (not a text recording?)"),
            ));
        }
        f(number, &buf)?;
    }
}

/// Splits on ASCII whitespace, returning each token with its byte offset.
pub fn tokens_with_offsets(line: &str) -> impl Iterator<Item = (usize, &str)> {
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
pub fn rest_from(line: &str, offset: Option<usize>) -> &str {
    offset.map_or("", |o| line[o..].trim_end())
}

/// Parses `HH:MM:SS.fffffffff` into nanoseconds since midnight.
pub fn parse_time_of_day(s: &str) -> Option<u64> {
    let (hms, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut parts = hms.split(':');
    let h: u64 = parts.next()?.parse().ok()?;
    let m: u64 = parts.next()?.parse().ok()?;
    let sec: u64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || h > 23 || m > 59 || sec > 60 || frac.len() > 9 {
        return None;
    }
    let mut ns: u64 = 0;
    for (i, c) in frac.bytes().enumerate() {
        if !c.is_ascii_digit() {
            return None;
        }
        ns += u64::from(c - b'0') * 10u64.pow(8 - i as u32);
    }
    Some(((h * 60 + m) * 60 + sec) * 1_000_000_000 + ns)
}

/// Midnight roll-over for time-of-day clocks: when time jumps back by more
/// than 12 hours, a day has passed.
#[derive(Default)]
pub struct DayCounter {
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
pub fn compat_noise(line_with_newline: &[u8]) -> bool {
    const NOISE: [&[u8]; 4] = [b"container", b"json", b"expecting", b"falcosecurity-libs"];
    if NOISE
        .iter()
        .any(|w| memchr::memmem::find(line_with_newline, w).is_some())
    {
        return true;
    }
    py_bytes_repr_len(line_with_newline) <= 20
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
    }
}
