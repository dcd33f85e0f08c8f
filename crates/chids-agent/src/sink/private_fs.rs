//! Folders and files of the agent's state: 0700 folders, 0600 files, never
//! reached through a symbolic link someone planted there.
//!
//! The agent runs as root and its state folder may sit where a container
//! (or a local user) can create names: each folder the agent creates or
//! uses is checked with `lstat` and opened `O_NOFOLLOW | O_DIRECTORY`
//! before its mode is set on the open handle; files are opened
//! `O_NOFOLLOW` and must be regular files with one link.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of every folder the agent writes into.
pub(crate) const DIR_MODE: u32 = 0o700;
/// Mode of every file the agent writes.
pub(crate) const FILE_MODE: u32 = 0o600;

fn refused(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{}: {why}", path.display()),
    )
}

/// Creates `dir` and the missing folders above it (mode 0700), or checks
/// an existing one; either way the folder ends up a real folder (no link)
/// of mode 0700. Folders above `dir` that already exist are not changed.
pub(crate) fn private_dir(dir: &Path) -> io::Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(refused(dir, "is a symbolic link; refusing to use it"))
        }
        Ok(m) if !m.is_dir() => return Err(refused(dir, "is not a folder")),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                if !parent.exists() {
                    private_dir(parent)?;
                }
            }
            match fs::DirBuilder::new().mode(DIR_MODE).create(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", dir.display()))),
            }
        }
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", dir.display()))),
    }
    // The mode goes on the opened folder: a link swapped in after the
    // check above is refused by O_NOFOLLOW.
    let handle = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) | Some(libc::ENOTDIR) => {
                refused(dir, "is not a real folder (a symbolic link?)")
            }
            _ => io::Error::new(e.kind(), format!("{}: {e}", dir.display())),
        })?;
    handle.set_permissions(fs::Permissions::from_mode(DIR_MODE))
}

/// Opens `path` for appending, created 0600 if missing; a link, a FIFO,
/// a device or a hard-linked file is refused.
pub(crate) fn append_file(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| open_error(path, e))?;
    checked_regular(path, file)
}

/// Creates `path` (0600) if missing and checks it like [`append_file`];
/// for files another library opens by name afterwards (the outbox
/// database), so that it finds a safe file in place.
pub(crate) fn ensure_file(path: &Path) -> io::Result<()> {
    let file = OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| open_error(path, e))?;
    checked_regular(path, file).map(drop)
}

fn open_error(path: &Path, e: io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(libc::ELOOP) => refused(path, "is a symbolic link; refusing to write through it"),
        Some(libc::ENXIO) => refused(path, "is a FIFO or socket; refusing to write to it"),
        _ => io::Error::new(e.kind(), format!("{}: {e}", path.display())),
    }
}

fn checked_regular(path: &Path, file: File) -> io::Result<File> {
    let m = file.metadata()?;
    if !m.is_file() {
        return Err(refused(path, "is not a regular file"));
    }
    if m.nlink() > 1 {
        return Err(refused(
            path,
            "has other hard links; refusing to write to it",
        ));
    }
    file.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_private_folders_and_files() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("a/b/c");
        private_dir(&deep).unwrap();
        assert_eq!(mode(&tmp.path().join("a")), DIR_MODE);
        assert_eq!(mode(&deep), DIR_MODE);
        let f = deep.join("x.sc");
        append_file(&f).unwrap();
        assert_eq!(mode(&f), FILE_MODE);
    }

    #[test]
    fn refuses_links_fifos_and_hard_links() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        fs::write(&victim, "keep").unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let e = append_file(&link).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert!(ensure_file(&link).is_err());
        let dir_link = tmp.path().join("dirlink");
        std::os::unix::fs::symlink(tmp.path(), &dir_link).unwrap();
        assert!(private_dir(&dir_link)
            .unwrap_err()
            .to_string()
            .contains("symbolic link"));
        let hard = tmp.path().join("hard");
        fs::hard_link(&victim, &hard).unwrap();
        assert!(append_file(&hard)
            .unwrap_err()
            .to_string()
            .contains("hard links"));
        let fifo = tmp.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(append_file(&fifo).is_err());
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
    }
}
