//! Reading the host's files that say who a container is: runtime state
//! (`config.json`, `containers.json`), cgroup folders (`cgroup.procs`),
//! `/proc/PID/comm`.
//!
//! Whoever controls a runtime's state folder (or a container escaping into
//! it) can plant anything there. A FIFO opened plainly blocks the opener
//! until a writer comes: the identity thread would hang for ever; a
//! device can be endless; a symbolic link points the agent, as root, at
//! any file. So: opened `O_NONBLOCK` (a FIFO open returns at once) and
//! `O_NOFOLLOW` (the last component is not a link), anything but a
//! regular file refused, and at most `max` bytes read.

use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The first `max` bytes of the regular file at `path`; a link, FIFO,
/// device or socket there is an error naming what it is.
pub(crate) fn read_bounded(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                io::Error::other("a symbolic link, not followed")
            } else {
                e
            }
        })?;
    let kind = f.metadata()?.file_type();
    if !kind.is_file() {
        return Err(io::Error::other(format!(
            "{}, not a regular file; not read",
            describe(kind)
        )));
    }
    let mut bytes = Vec::new();
    f.take(max).read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn describe(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_dir() {
        "a folder"
    } else {
        "not a regular file"
    }
}

/// [`read_bounded`] as text (invalid UTF-8 replaced).
pub(crate) fn read_text(path: &Path, max: u64) -> io::Result<String> {
    read_bounded(path, max).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Whether an error only says the file is not there (a container gone
/// meanwhile, a runtime not installed): not worth a log line.
pub(crate) fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn refuses_fifos_links_and_devices_at_once_and_bounds_the_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("config.json");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let started = Instant::now();
        let e = read_bounded(&fifo, 1 << 20).unwrap_err().to_string();
        assert!(e.contains("a FIFO"), "{e}");
        // A plain open would wait for a writer for ever.
        assert!(started.elapsed() < Duration::from_secs(5));

        let target = dir.path().join("secret");
        std::fs::write(&target, "x".repeat(100)).unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = read_bounded(&link, 1 << 20).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");

        let e = read_bounded(Path::new("/dev/zero"), 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(e.contains("a device"), "{e}");

        assert_eq!(read_bounded(&target, 10).unwrap().len(), 10);
        let e = read_bounded(&dir.path().join("none"), 10).unwrap_err();
        assert!(is_absent(&e));
    }
}
