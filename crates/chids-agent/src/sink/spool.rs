//! A bounded on-disk queue of alerts: what a sink could not deliver yet.
//!
//! Records are appended to segment files (`<seq>.seg`, each record a
//! little-endian u32 length and the bytes), fsync'd before `append`
//! returns. A reader takes them in order ([`Spool::peek`]) and confirms
//! each once delivered ([`Spool::ack`]); the position of the next record is
//! kept in `cursor`, so after a crash or restart delivery resumes where it
//! stopped: at least once, never reordered. Fully delivered segments are
//! deleted. When the spool would exceed its size, the oldest segment goes,
//! and the alerts in it are counted as lost.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chids_live::LiveError;

const SEGMENT_BYTES: u64 = 1 << 20;

#[derive(Clone, Copy, Debug)]
struct Segment {
    seq: u64,
    bytes: u64,
    records: u64,
}

pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    segments: VecDeque<Segment>,
    /// Append handle of the last segment.
    writer: Option<File>,
    /// Next record to deliver: offset in the first segment.
    read_off: u64,
    /// Records of the first segment before `read_off`.
    read_records: u64,
    lost: u64,
}

fn io(what: &Path, e: std::io::Error) -> LiveError {
    LiveError::io(what.display().to_string(), e)
}

/// Reads a segment's records; returns (complete records, bytes they span).
fn scan(path: &Path) -> Result<(u64, u64), LiveError> {
    let mut data = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .map_err(|e| io(path, e))?;
    let (mut at, mut n) = (0usize, 0u64);
    while at + 4 <= data.len() {
        let len = u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        if at + 4 + len > data.len() {
            break;
        }
        at += 4 + len;
        n += 1;
    }
    Ok((n, at as u64))
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, holding at most `max_bytes`.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Spool, LiveError> {
        Spool::with_segment_size(dir, max_bytes, SEGMENT_BYTES.min(max_bytes / 4).max(4096))
    }

    fn with_segment_size(
        dir: &Path,
        max_bytes: u64,
        segment_bytes: u64,
    ) -> Result<Spool, LiveError> {
        if fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(LiveError::Other(format!(
                "spool {}: is a symbolic link",
                dir.display()
            )));
        }
        fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let mut seqs: Vec<u64> = fs::read_dir(dir)
            .map_err(|e| io(dir, e))?
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".seg")?
                    .parse::<u64>()
                    .ok()
            })
            .collect();
        seqs.sort_unstable();
        let mut segments = VecDeque::new();
        for (i, &seq) in seqs.iter().enumerate() {
            let path = dir.join(format!("{seq:016}.seg"));
            let (records, bytes) = scan(&path)?;
            let len = fs::metadata(&path).map_err(|e| io(&path, e))?.len();
            if bytes < len {
                // A record torn by a crash: only the newest segment can end
                // in one; cut it off (it was never acknowledged to anyone).
                if i + 1 == seqs.len() {
                    OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .and_then(|f| f.set_len(bytes))
                        .map_err(|e| io(&path, e))?;
                }
            }
            segments.push_back(Segment {
                seq,
                bytes,
                records,
            });
        }
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_bytes,
            segments,
            writer: None,
            read_off: 0,
            read_records: 0,
            lost: 0,
        };
        spool.load_cursor();
        Ok(spool)
    }

    fn seg_path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:016}.seg"))
    }

    fn cursor_path(&self) -> PathBuf {
        self.dir.join("cursor")
    }

    /// The saved read position, if it points into the first segment at a
    /// record boundary; else the first segment's start.
    fn load_cursor(&mut self) {
        let text = fs::read_to_string(self.cursor_path()).unwrap_or_default();
        let mut it = text.split_whitespace().map(|t| t.parse::<u64>().ok());
        let (Some(Some(seq)), Some(Some(off))) = (it.next(), it.next()) else {
            return;
        };
        // Segments before the cursor's were delivered: drop them.
        while self.segments.front().is_some_and(|s| s.seq < seq) {
            let s = self.segments.pop_front().unwrap();
            let _ = fs::remove_file(self.seg_path(s.seq));
        }
        let Some(first) = self.segments.front() else {
            return;
        };
        if first.seq != seq || off > first.bytes {
            return;
        }
        // Count the records before `off`, checking it is a boundary.
        let Ok(mut f) = File::open(self.seg_path(seq)) else {
            return;
        };
        let (mut at, mut n) = (0u64, 0u64);
        let mut len = [0u8; 4];
        while at < off {
            if f.seek(SeekFrom::Start(at)).is_err() || f.read_exact(&mut len).is_err() {
                return;
            }
            at += 4 + u32::from_le_bytes(len) as u64;
            n += 1;
        }
        if at == off {
            self.read_off = off;
            self.read_records = n;
        }
    }

    fn save_cursor(&self) -> Result<(), LiveError> {
        let seq = self.segments.front().map_or(0, |s| s.seq);
        let tmp = self.dir.join("cursor.tmp");
        let path = self.cursor_path();
        let mut f = File::create(&tmp).map_err(|e| io(&tmp, e))?;
        writeln!(f, "{seq} {}", self.read_off)
            .and_then(|()| f.sync_data())
            .map_err(|e| io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| io(&path, e))
    }

    /// Bytes waiting to be delivered.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum::<u64>() - self.read_off
    }

    /// Records waiting to be delivered.
    pub fn len(&self) -> u64 {
        self.segments.iter().map(|s| s.records).sum::<u64>() - self.read_records
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records dropped because the spool was full, since it was opened.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Adds a record at the end, durable when this returns. Returns how
    /// many old records had to be dropped to make room.
    pub fn append(&mut self, record: &[u8]) -> Result<u64, LiveError> {
        let size = 4 + record.len() as u64;
        if size > self.segment_bytes {
            return Err(LiveError::Other(format!(
                "alert of {} bytes is larger than a spool segment",
                record.len()
            )));
        }
        let roll = match self.segments.back() {
            None => true,
            Some(s) => s.bytes + size > self.segment_bytes,
        };
        if roll {
            let seq = self.segments.back().map_or(1, |s| s.seq + 1);
            self.segments.push_back(Segment {
                seq,
                bytes: 0,
                records: 0,
            });
            self.writer = None;
        }
        let mut dropped = 0;
        while self.bytes() + size > self.max_bytes && self.segments.len() > 1 {
            dropped += self.drop_oldest()?;
        }
        let last = *self.segments.back().unwrap();
        if self.writer.is_none() {
            let path = self.seg_path(last.seq);
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| io(&path, e))?;
            self.writer = Some(f);
        }
        let w = self.writer.as_mut().unwrap();
        let mut buf = Vec::with_capacity(size as usize);
        buf.extend_from_slice(&(record.len() as u32).to_le_bytes());
        buf.extend_from_slice(record);
        w.write_all(&buf)
            .and_then(|()| w.sync_data())
            .map_err(|e| LiveError::io("append to the alert spool", e))?;
        let last = self.segments.back_mut().unwrap();
        last.bytes += size;
        last.records += 1;
        Ok(dropped)
    }

    fn drop_oldest(&mut self) -> Result<u64, LiveError> {
        let s = self.segments.pop_front().expect("a segment to drop");
        let n = s.records - self.read_records;
        self.lost += n;
        self.read_off = 0;
        self.read_records = 0;
        let _ = fs::remove_file(self.seg_path(s.seq));
        self.save_cursor()?;
        Ok(n)
    }

    /// The next record to deliver, if any.
    pub fn peek(&mut self) -> Result<Option<Vec<u8>>, LiveError> {
        loop {
            let Some(first) = self.segments.front().copied() else {
                return Ok(None);
            };
            if self.read_off < first.bytes {
                let path = self.seg_path(first.seq);
                let mut f = File::open(&path).map_err(|e| io(&path, e))?;
                let mut len = [0u8; 4];
                f.seek(SeekFrom::Start(self.read_off))
                    .and_then(|_| f.read_exact(&mut len))
                    .map_err(|e| io(&path, e))?;
                let mut rec = vec![0u8; u32::from_le_bytes(len) as usize];
                f.read_exact(&mut rec).map_err(|e| io(&path, e))?;
                return Ok(Some(rec));
            }
            if self.segments.len() == 1 {
                return Ok(None);
            }
            // First segment fully delivered and no longer written to.
            self.segments.pop_front();
            self.read_off = 0;
            self.read_records = 0;
            let _ = fs::remove_file(self.seg_path(first.seq));
            self.save_cursor()?;
        }
    }

    /// Confirms the record [`peek`](Spool::peek) returned was delivered.
    pub fn ack(&mut self) -> Result<(), LiveError> {
        let Some(first) = self.segments.front().copied() else {
            return Ok(());
        };
        if self.read_off >= first.bytes {
            return Ok(());
        }
        let path = self.seg_path(first.seq);
        let mut f = File::open(&path).map_err(|e| io(&path, e))?;
        let mut len = [0u8; 4];
        f.seek(SeekFrom::Start(self.read_off))
            .and_then(|_| f.read_exact(&mut len))
            .map_err(|e| io(&path, e))?;
        self.read_off += 4 + u32::from_le_bytes(len) as u64;
        self.read_records += 1;
        if self.read_off >= first.bytes && self.segments.len() > 1 {
            self.segments.pop_front();
            self.read_off = 0;
            self.read_records = 0;
            let _ = fs::remove_file(&path);
        }
        self.save_cursor()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(s: &mut Spool) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(r) = s.peek().unwrap() {
            out.push(String::from_utf8(r).unwrap());
            s.ack().unwrap();
        }
        out
    }

    #[test]
    fn in_order_across_segments_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::with_segment_size(dir.path(), 1 << 20, 64).unwrap();
        for i in 0..20 {
            s.append(format!("alert-{i:02}").as_bytes()).unwrap();
        }
        assert_eq!(s.len(), 20);
        // Deliver five, then "crash" (drop) and reopen: resume at the sixth.
        for _ in 0..5 {
            s.peek().unwrap().unwrap();
            s.ack().unwrap();
        }
        drop(s);
        let mut s = Spool::with_segment_size(dir.path(), 1 << 20, 64).unwrap();
        assert_eq!(s.len(), 15);
        let got = drain(&mut s);
        let want: Vec<String> = (5..20).map(|i| format!("alert-{i:02}")).collect();
        assert_eq!(got, want);
        assert_eq!(s.bytes(), 0);
        // Delivered segments are gone (only the one being written stays).
        let segs = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
            .count();
        assert_eq!(segs, 1);
    }

    #[test]
    fn a_peek_without_ack_is_delivered_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        s.append(b"one").unwrap();
        assert_eq!(s.peek().unwrap().as_deref(), Some(&b"one"[..]));
        drop(s);
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(drain(&mut s), ["one"]);
    }

    #[test]
    fn full_spool_drops_oldest_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::with_segment_size(dir.path(), 256, 64).unwrap();
        let mut dropped = 0;
        for i in 0..100 {
            dropped += s.append(format!("alert-{i:03}").as_bytes()).unwrap();
        }
        assert!(s.bytes() <= 256, "{}", s.bytes());
        assert!(dropped > 0);
        assert_eq!(dropped, s.lost());
        let got = drain(&mut s);
        assert_eq!(got.len() as u64 + dropped, 100);
        // What is left is the newest, in order.
        assert_eq!(got.last().unwrap(), "alert-099");
        assert!(got.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        s.append(b"whole").unwrap();
        drop(s);
        let seg = dir.path().join(format!("{:016}.seg", 1));
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[200, 0, 0, 0, b'x']).unwrap();
        drop(f);
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(drain(&mut s), ["whole"]);
        s.append(b"next").unwrap();
        assert_eq!(drain(&mut s), ["next"]);
    }

    #[test]
    fn refuses_a_symlinked_dir() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("spool");
        std::os::unix::fs::symlink("/tmp", &link).unwrap();
        assert!(Spool::open(&link, 1 << 20).is_err());
    }
}
