//! Every file chids writes goes through here.
//!
//! chids often runs as root and writes into folders other users can write
//! to. A name planted there (a symlink to `/etc/shadow`, a hard link, a
//! FIFO) must not redirect, truncate or hang a write, and a failed write
//! (disk full) must not destroy what was there before. So:
//!
//! - a whole file is written to a fresh temporary name in the target
//!   folder (`O_CREAT | O_EXCL` with a random name, through `tempfile`: it
//!   never opens an existing file or follows a symlink), synced, and only
//!   then renamed over the final name (a rename replaces a symlink, it does
//!   not write through it). When writing fails, the temporary file is
//!   removed and the old file, if any, is untouched;
//! - an append-only log (`monitor --alerts`) is opened with `O_NOFOLLOW`
//!   and must be a regular file with a single link;
//! - modes are set on the open handle, not the path: 0600 for outputs,
//!   0640 for model bundles (a service group may read a model).

use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// Mode of recordings, reports, plots and alert logs.
pub const OUTPUT_MODE: u32 = 0o600;
/// Mode of model bundle files.
pub const MODEL_MODE: u32 = 0o640;

/// A file being written under a temporary name beside its destination.
pub struct PendingFile {
    tmp: NamedTempFile,
    dest: PathBuf,
}

impl PendingFile {
    /// Creates `.NAME.XXXXXX.partial` in `dest`'s folder, with `mode`.
    pub fn create(dest: &Path, mode: u32) -> io::Result<PendingFile> {
        let tmp = temp_beside(dest, ".partial")?;
        tmp.as_file()
            .set_permissions(Permissions::from_mode(mode))?;
        Ok(PendingFile {
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    pub fn file(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    /// Syncs the data and renames the file over its destination.
    pub fn commit(self) -> io::Result<()> {
        self.tmp.as_file().sync_all()?;
        self.tmp.persist(&self.dest).map_err(|e| e.error)?;
        Ok(())
    }

    /// Like [`commit`](Self::commit), but never replaces an existing file
    /// (even one that appeared while writing): then the data stays under
    /// the temporary name, which the error names.
    pub fn commit_new(self) -> io::Result<()> {
        self.tmp.as_file().sync_all()?;
        let dest = self.dest.clone();
        match self.tmp.persist_noclobber(&dest) {
            Ok(_) => Ok(()),
            Err(e) => {
                let kept = e.file.keep().map(|(_, p)| p);
                Err(io::Error::new(
                    e.error.kind(),
                    format!(
                        "{} ({})",
                        e.error,
                        match kept {
                            Ok(p) => format!("what was written is kept in {}", p.display()),
                            Err(k) => format!("and keeping the written data failed too: {k}"),
                        }
                    ),
                ))
            }
        }
    }
}

/// A scratch file beside `near` (`.NAME.XXXXXX<suffix>`), mode 0600,
/// removed when dropped unless kept.
pub fn scratch_beside(near: &Path, suffix: &str) -> io::Result<NamedTempFile> {
    let tmp = temp_beside(near, suffix)?;
    tmp.as_file()
        .set_permissions(Permissions::from_mode(OUTPUT_MODE))?;
    Ok(tmp)
}

fn temp_beside(dest: &Path, suffix: &str) -> io::Result<NamedTempFile> {
    let name = dest
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"))?;
    let prefix = format!(".{}.", name.to_string_lossy());
    tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(suffix)
        .tempfile_in(folder_of(dest))
}

/// The folder a path's file lives in (`.` for a bare name).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to `dest` through a temporary name (see the module doc).
pub fn write_file(dest: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut f = PendingFile::create(dest, mode)?;
    f.file().write_all(bytes)?;
    f.commit()
}

/// Writes several files so that a failure while writing any of them
/// replaces none: all are written under temporary names first, then
/// renamed. On error, the path that failed comes with it.
pub fn write_files(files: &[(PathBuf, &[u8])], mode: u32) -> Result<(), (PathBuf, io::Error)> {
    let mut pending = Vec::with_capacity(files.len());
    for (dest, bytes) in files {
        let f = PendingFile::create(dest, mode)
            .and_then(|mut f| f.file().write_all(bytes).map(|()| f))
            .and_then(|f| f.tmp.as_file().sync_all().map(|()| f))
            .map_err(|e| (dest.clone(), e))?;
        pending.push(f);
    }
    for f in pending {
        let dest = f.dest.clone();
        f.commit().map_err(|e| (dest, e))?;
    }
    Ok(())
}

/// Checks, before any work, that `dest` can become a new output file: its
/// folder exists, it is not a folder itself, and it does not exist yet
/// (unless `overwrite`). The error says what is wrong, without the path.
pub fn check_new_file(dest: &Path, overwrite: bool) -> Result<(), String> {
    if dest.file_name().is_none() {
        return Err("not a file name".into());
    }
    let folder = folder_of(dest);
    match std::fs::metadata(folder) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(format!("{} is not a folder", folder.display())),
        Err(e) => return Err(format!("folder {}: {e}", folder.display())),
    }
    match std::fs::symlink_metadata(dest) {
        Ok(m) if m.is_dir() => Err("is a folder; give a file name (e.g. run.zip)".into()),
        Ok(_) if !overwrite => Err("already exists (use --force to replace it)".into()),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Opens an append-only log, creating it with mode 0600. Unless
/// `follow_symlink`, a symlink at `path` is refused (`O_NOFOLLOW`), and so
/// is anything but a regular file with one link (a hard link to another
/// file, a FIFO that would block, a device).
pub fn open_append(path: &Path, follow_symlink: bool) -> io::Result<File> {
    let mut flags = libc::O_CLOEXEC | libc::O_NONBLOCK;
    if !follow_symlink {
        flags |= libc::O_NOFOLLOW;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(OUTPUT_MODE)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| {
            match e.raw_os_error() {
                Some(libc::ELOOP) => io::Error::new(
                    e.kind(),
                    "is a symlink; refusing to write through it (pass --alerts-follow-symlink to allow)",
                ),
                Some(libc::ENXIO) => io::Error::new(e.kind(), "is a FIFO nobody reads"),
                _ => e,
            }
        })?;
    if !follow_symlink {
        let m = file.metadata()?;
        if !m.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        if m.nlink() != 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "has other hard links; refusing to append to it",
            ));
        }
    }
    clear_nonblock(&file)?;
    Ok(file)
}

/// O_NONBLOCK was only there so that opening a FIFO cannot hang; writes
/// to a regular file ignore it, but a followed FIFO or device must block
/// as usual rather than fail with EAGAIN.
fn clear_nonblock(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own, with integer arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    /// Names in `dir` other than `keep`.
    fn others(dir: &Path, keep: &[&str]) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !keep.contains(&n.as_str()))
            .collect()
    }

    #[test]
    fn write_replaces_a_symlink_and_leaves_its_target_alone() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let out = dir.path().join("report.md");
        symlink(&victim, &out).unwrap();
        write_file(&out, b"new", OUTPUT_MODE).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(!std::fs::symlink_metadata(&out).unwrap().is_symlink());
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "new");
        assert_eq!(mode(&out), 0o600);
        assert!(others(dir.path(), &["victim", "report.md"]).is_empty());
    }

    #[test]
    fn modes_are_set_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model.safetensors");
        write_files(&[(model.clone(), b"w".as_slice())], MODEL_MODE).unwrap();
        assert_eq!(mode(&model), 0o640);
        let old = dir.path().join("old");
        std::fs::write(&old, "x").unwrap();
        std::fs::set_permissions(&old, Permissions::from_mode(0o666)).unwrap();
        write_file(&old, b"y", OUTPUT_MODE).unwrap();
        assert_eq!(mode(&old), 0o600);
    }

    #[test]
    fn commit_new_never_replaces_and_keeps_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("r.zip");
        let mut f = PendingFile::create(&out, OUTPUT_MODE).unwrap();
        f.file().write_all(b"recording").unwrap();
        // Something appears at the name while we write.
        std::fs::write(&out, "theirs").unwrap();
        let err = f.commit_new().unwrap_err().to_string();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "theirs");
        let kept = others(dir.path(), &["r.zip"]);
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert!(err.contains(&kept[0]), "{err}");
        let back = std::fs::read_to_string(dir.path().join(&kept[0])).unwrap();
        assert_eq!(back, "recording");
    }

    #[test]
    fn a_failed_write_leaves_the_old_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, "old a").unwrap();
        // The second file cannot be created (its folder is missing): the
        // first must not have been replaced either.
        let b = dir.path().join("missing").join("b");
        let (path, _) =
            write_files(&[(a.clone(), b"new a"), (b.clone(), b"new b")], 0o600).unwrap_err();
        assert_eq!(path, b);
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "old a");
        assert!(others(dir.path(), &["a"]).is_empty());
    }

    #[test]
    fn new_file_checks() {
        let dir = tempfile::tempdir().unwrap();
        let existing = dir.path().join("e.zip");
        std::fs::write(&existing, "x").unwrap();
        assert!(check_new_file(&dir.path().join("n.zip"), false).is_ok());
        let e = check_new_file(&existing, false).unwrap_err();
        assert!(e.contains("--force"), "{e}");
        assert!(check_new_file(&existing, true).is_ok());
        let e = check_new_file(dir.path(), true).unwrap_err();
        assert!(e.contains("is a folder"), "{e}");
        let e = check_new_file(&dir.path().join("no/such/r.zip"), false).unwrap_err();
        assert!(e.contains("no/such"), "{e}");
        // A dangling symlink at the name is something existing, too.
        let dangling = dir.path().join("d.zip");
        symlink("/nonexistent/chids", &dangling).unwrap();
        assert!(check_new_file(&dangling, false).is_err());
    }

    #[test]
    fn append_refuses_symlinks_fifos_and_hard_links() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let link = dir.path().join("alerts.jsonl");
        symlink(&victim, &link).unwrap();
        let e = open_append(&link, false).unwrap_err().to_string();
        assert!(e.contains("symlink"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        // Asked to, it follows.
        let mut f = open_append(&link, true).unwrap();
        f.write_all(b"+").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious+");

        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = open_append(&fifo, false).unwrap_err();
        // No reader: ENXIO from the non-blocking open, never a hang.
        assert!(e.to_string().contains("FIFO"), "{e}");

        let hard = dir.path().join("hard");
        std::fs::hard_link(&victim, &hard).unwrap();
        let e = open_append(&hard, false).unwrap_err().to_string();
        assert!(e.contains("hard links"), "{e}");

        let fresh = dir.path().join("new.jsonl");
        let mut f = open_append(&fresh, false).unwrap();
        f.write_all(b"a\n").unwrap();
        drop(f);
        let mut f = open_append(&fresh, false).unwrap();
        f.write_all(b"b\n").unwrap();
        assert_eq!(std::fs::read_to_string(&fresh).unwrap(), "a\nb\n");
        assert_eq!(mode(&fresh), 0o600);
    }
}
