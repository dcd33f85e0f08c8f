//! `record --marker-file`: a file a script touches (or writes Unix seconds
//! into) when the attack starts.
//!
//! The file sits where the recorded workload may reach it, so it is read
//! as hostile input: opened without following a symlink and without
//! blocking (a FIFO must not hang `record`, a link to `/dev/zero` must not
//! feed it gigabytes), and its content is read only when it is a small
//! regular file; anything else is reported and ignored.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest content read: Unix seconds with nanoseconds are ~21 bytes.
const MAX_CONTENT: u64 = 64;

/// What is at the marker's path right now.
enum Seen {
    Missing,
    /// A regular file: its mtime, and its content when that is Unix seconds.
    File {
        mtime: SystemTime,
        content: Option<f64>,
    },
    /// Something that is not read (with what it is).
    Refused(String),
}

fn look(path: &Path) -> Seen {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Seen::Missing,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Seen::Refused("a symlink".into())
        }
        Err(e) => return Seen::Refused(format!("unreadable ({e})")),
    };
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => return Seen::Refused(format!("unreadable ({e})")),
    };
    let ty = meta.file_type();
    if !ty.is_file() {
        let what = if ty.is_fifo() {
            "a FIFO"
        } else if ty.is_dir() {
            "a folder"
        } else if ty.is_char_device() || ty.is_block_device() {
            "a device"
        } else if ty.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Seen::Refused(what.into());
    }
    let Ok(mtime) = meta.modified() else {
        return Seen::Refused("without a modification time".into());
    };
    let content = (meta.len() <= MAX_CONTENT)
        .then(|| read_seconds(file))
        .flatten();
    Seen::File { mtime, content }
}

/// The content as Unix seconds, if it is a plausible time (finite, after
/// 2001): anything else falls back to the mtime.
fn read_seconds(file: File) -> Option<f64> {
    let mut text = String::new();
    file.take(MAX_CONTENT).read_to_string(&mut text).ok()?;
    let t: f64 = text.trim().parse().ok()?;
    (t.is_finite() && t > 1e9).then_some(t)
}

fn unix_secs(t: SystemTime) -> Option<f64> {
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs_f64())
}

/// Watches the marker for its first change after the start.
pub(crate) struct Marker {
    path: PathBuf,
    initial: Option<SystemTime>,
    /// Why the marker was ignored at some point, if it was.
    pub(crate) ignored: Option<String>,
}

impl Marker {
    /// Notes the marker's current state. Something other than a regular
    /// file (or nothing) at the path is an error: said before recording.
    pub(crate) fn new(path: PathBuf) -> Result<Marker, String> {
        let initial = match look(&path) {
            Seen::Missing => None,
            Seen::File { mtime, .. } => Some(mtime),
            Seen::Refused(what) => {
                return Err(format!(
                    "--marker-file {}: is {what}; it must be a regular file (or not exist yet)",
                    path.display()
                ))
            }
        };
        Ok(Marker {
            path,
            initial,
            ignored: None,
        })
    }

    /// The exploit time if the marker changed: its content when that is
    /// Unix seconds, else its mtime. Never blocks.
    pub(crate) fn check(&mut self) -> Option<f64> {
        match look(&self.path) {
            Seen::Missing => None,
            Seen::File { mtime, .. } if Some(mtime) == self.initial => None,
            Seen::File { mtime, content } => content.or_else(|| unix_secs(mtime)),
            Seen::Refused(what) => {
                self.ignored.get_or_insert_with(|| {
                    format!(
                        "--marker-file {} became {what}; ignored (no exploit time from it)",
                        self.path.display()
                    )
                });
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::time::{Duration, Instant};

    fn mkfifo(p: &Path) {
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    #[test]
    fn content_or_mtime_after_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m");
        let mut m = Marker::new(p.clone()).unwrap();
        assert_eq!(m.check(), None);
        std::fs::write(&p, "1700000000.25\n").unwrap();
        assert_eq!(m.check(), Some(1_700_000_000.25));
        // Not a time (inf, too small, text): the mtime counts.
        for bad in ["inf", "NaN", "12", "soon"] {
            std::fs::write(&p, bad).unwrap();
            let t = m.check().unwrap();
            assert!(t.is_finite() && t > 1.6e9, "{bad}: {t}");
        }
        // A big file is not read, its mtime counts.
        std::fs::write(&p, format!("1700000000{}", " ".repeat(100))).unwrap();
        assert_ne!(m.check(), Some(1_700_000_000.0));
        assert!(m.ignored.is_none());
    }

    #[test]
    fn fifo_and_dev_zero_neither_hang_nor_fill_memory() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m");
        // Refused up front.
        mkfifo(&p);
        let e = Marker::new(p.clone()).err().unwrap();
        assert!(e.contains("a FIFO"), "{e}");
        std::fs::remove_file(&p).unwrap();
        symlink("/dev/zero", &p).unwrap();
        let e = Marker::new(p.clone()).err().unwrap();
        assert!(e.contains("a symlink"), "{e}");
        std::fs::remove_file(&p).unwrap();

        // Swapped in during the recording: ignored, said once, at once.
        std::fs::write(&p, "").unwrap();
        let mut m = Marker::new(p.clone()).unwrap();
        std::fs::remove_file(&p).unwrap();
        mkfifo(&p);
        let start = Instant::now();
        assert_eq!(m.check(), None);
        assert!(m.ignored.as_deref().unwrap().contains("a FIFO"));
        std::fs::remove_file(&p).unwrap();
        symlink("/dev/zero", &p).unwrap();
        assert_eq!(m.check(), None);
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
