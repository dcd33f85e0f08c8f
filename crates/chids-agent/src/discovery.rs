//! Finding container cgroups and following them as they come and go.
//!
//! Container runtimes make one cgroup directory per container, named after
//! the container id. [`parse_container_dir`] knows their layouts; the
//! [`Discovery`] watcher scans the cgroup v2 tree once, then learns about
//! every new or removed directory from inotify (mkdir and rmdir on
//! cgroupfs raise `IN_CREATE`/`IN_DELETE` on the parent), so a container is
//! seen as soon as its runtime creates the cgroup, without rescanning.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};

pub use chids_live::container_dir::{parse_container_dir, ContainerDir, Runtime};
use chids_live::LiveError;

/// A container cgroup that appeared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    /// The cgroup id (the directory's inode on cgroup2).
    pub cgroup_id: u64,
    /// Depth below the cgroup2 root.
    pub level: u32,
    pub container: ContainerDir,
}

/// What changed in the cgroup tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    Started(Found),
    /// The container's cgroup directory is gone.
    Stopped {
        path: PathBuf,
        cgroup_id: u64,
    },
}

/// How deep below the root a container cgroup can sit (kubepods.slice /
/// qos / pod / container is 4; runtimes nested in slices add a few).
const MAX_DEPTH: usize = 12;

/// Follows the container cgroups under a cgroup v2 root.
pub(crate) struct Discovery {
    root: PathBuf,
    /// How deep `root` sits in the cgroup v2 hierarchy (0 at its mount
    /// point): the kernel counts a cgroup's level from the hierarchy's
    /// root, and a subtree given as `--cgroup-root` starts below it.
    base_level: u32,
    inotify: Inotify,
    /// Watched directories (never container directories themselves: what
    /// happens inside a container's cgroup belongs to that container).
    dirs: HashMap<WatchDescriptor, PathBuf>,
    /// Containers present now, by path, with their cgroup id.
    containers: HashMap<PathBuf, u64>,
    buf: Vec<u8>,
    /// Folders that could not be watched (inotify out of watches: ENOSPC),
    /// since the last [`Discovery::take_errors`].
    errors: Vec<String>,
    /// All such failures so far.
    pub errors_total: u64,
}

/// How many folders `dir` is below the root of its cgroup v2 file system
/// (0 when it is that root, or not on cgroup v2 at all): its parents are
/// counted while they are the same mounted file system.
fn depth_in_cgroup2(dir: &Path) -> u32 {
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return 0;
    };
    // SAFETY: a valid C string and a zeroed out-parameter of the right type.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 || st.f_type as i64 != CGROUP2_SUPER_MAGIC
    {
        return 0;
    }
    let dev = |p: &Path| fs::metadata(p).ok().map(|m| m.dev());
    let mut depth = 0;
    let mut here = dir;
    while let Some(parent) = here.parent() {
        if dev(parent) != dev(dir) {
            break;
        }
        depth += 1;
        here = parent;
    }
    depth
}

impl Discovery {
    /// Starts watching `root`; the containers already there come back as
    /// `Started` changes from the first [`poll`](Discovery::poll).
    pub fn new(root: &Path) -> Result<(Discovery, Vec<Change>), LiveError> {
        let inotify = Inotify::init().map_err(|e| LiveError::io("inotify_init", e))?;
        let mut d = Discovery {
            root: root.to_path_buf(),
            base_level: depth_in_cgroup2(root),
            inotify,
            dirs: HashMap::new(),
            containers: HashMap::new(),
            buf: vec![0; 64 * 1024],
            errors: Vec::new(),
            errors_total: 0,
        };
        let mut changes = Vec::new();
        d.scan(root, &mut changes)?;
        Ok((d, changes))
    }

    /// What went wrong since the last call (for the log).
    pub(crate) fn take_errors(&mut self) -> Vec<String> {
        std::mem::take(&mut self.errors)
    }

    /// Directories under inotify watch (for tests: bounded by the tree).
    #[cfg(test)]
    pub fn watched_dirs(&self) -> usize {
        self.dirs.len()
    }

    /// Watches `dir` and everything below it that is not a container, and
    /// reports the containers found. Watch first, list second: a directory
    /// created between the two shows up in both, and `start` ignores the
    /// second sighting.
    fn scan(&mut self, dir: &Path, out: &mut Vec<Change>) -> Result<(), LiveError> {
        let rel = dir.strip_prefix(&self.root).unwrap_or(Path::new(""));
        if rel.components().count() > MAX_DEPTH {
            return Ok(());
        }
        let mask = WatchMask::CREATE | WatchMask::DELETE | WatchMask::ONLYDIR;
        match self.inotify.watches().add(dir, mask) {
            Ok(wd) => {
                self.dirs.insert(wd, dir.to_path_buf());
            }
            // Removed before we got to it: nothing to follow.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            // Out of watches (ENOSPC) or refused: containers below this
            // folder are not seen, the rest of the tree still is. Said,
            // counted, and tried again at the next rescan.
            Err(e) => {
                self.errors_total += 1;
                self.errors.push(format!(
                    "inotify watch {}: {e}; containers below it are not watched (raise fs.inotify.max_user_watches)",
                    dir.display()
                ));
                return Ok(());
            }
        }
        let Ok(entries) = fs::read_dir(dir) else {
            return Ok(());
        };
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                self.found_dir(&e.path(), out)?;
            }
        }
        Ok(())
    }

    fn found_dir(&mut self, path: &Path, out: &mut Vec<Change>) -> Result<(), LiveError> {
        let rel = path.strip_prefix(&self.root).unwrap_or(path);
        match parse_container_dir(rel) {
            Some(container) => {
                let Ok(meta) = fs::metadata(path) else {
                    return Ok(()); // gone already
                };
                let id = meta.ino();
                match self.containers.insert(path.to_path_buf(), id) {
                    Some(old) if old == id => {}
                    Some(old) => {
                        // Removed and made again before we looked: a restart.
                        out.push(Change::Stopped {
                            path: path.to_path_buf(),
                            cgroup_id: old,
                        });
                        out.push(self.started(path, rel, id, container));
                    }
                    None => out.push(self.started(path, rel, id, container)),
                }
                Ok(())
            }
            None => self.scan(path, out),
        }
    }

    fn started(&self, path: &Path, rel: &Path, cgroup_id: u64, container: ContainerDir) -> Change {
        Change::Started(Found {
            path: path.to_path_buf(),
            cgroup_id,
            level: self.base_level + rel.components().count() as u32,
            container,
        })
    }

    /// What changed since the last call, without waiting.
    pub fn poll(&mut self) -> Result<Vec<Change>, LiveError> {
        let mut out = Vec::new();
        loop {
            let mut buf = std::mem::take(&mut self.buf);
            let events = match self.inotify.read_events(&mut buf) {
                Ok(evs) => evs
                    .map(|e| (e.wd, e.mask, e.name.map(|n| n.to_owned())))
                    .collect::<Vec<_>>(),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Vec::new(),
                Err(e) => {
                    self.buf = buf;
                    return Err(LiveError::io("read inotify events", e));
                }
            };
            self.buf = buf;
            if events.is_empty() {
                return Ok(out);
            }
            for (wd, mask, name) in events {
                if mask.contains(EventMask::Q_OVERFLOW) {
                    self.rescan(&mut out)?;
                    continue;
                }
                if mask.contains(EventMask::IGNORED) {
                    self.dirs.remove(&wd);
                    continue;
                }
                let (Some(parent), Some(name)) = (self.dirs.get(&wd), name) else {
                    continue;
                };
                let path = parent.join(name);
                if mask.contains(EventMask::CREATE) && mask.contains(EventMask::ISDIR) {
                    self.found_dir(&path, &mut out)?;
                } else if mask.contains(EventMask::DELETE) {
                    if let Some(id) = self.containers.remove(&path) {
                        out.push(Change::Stopped {
                            path,
                            cgroup_id: id,
                        });
                    }
                }
            }
        }
    }

    /// After an event queue overflow: what is there now against what we
    /// knew, as changes.
    fn rescan(&mut self, out: &mut Vec<Change>) -> Result<(), LiveError> {
        let known: Vec<(PathBuf, u64)> = self.containers.drain().collect();
        for wd in std::mem::take(&mut self.dirs).into_keys() {
            let _ = self.inotify.watches().remove(wd);
        }
        let mut fresh = Vec::new();
        let root = self.root.clone();
        self.scan(&root, &mut fresh)?;
        for (path, id) in known {
            if self.containers.get(&path) != Some(&id) {
                out.push(Change::Stopped {
                    path,
                    cgroup_id: id,
                });
            }
        }
        // Containers we knew and still see are not new.
        out.extend(fresh);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f811e68bbd5b3ef3ac2e1e36d1e3f950f6df1e7e00330773cdfb16f9984aa16";

    fn parse(p: &str) -> Option<(Runtime, String)> {
        parse_container_dir(Path::new(p)).map(|c| (c.runtime, c.id))
    }

    #[test]
    fn every_runtime_layout() {
        let cases = [
            (format!("libpod_parent/libpod-{ID}"), Runtime::Podman),
            (format!("machine.slice/libpod-{ID}.scope"), Runtime::Podman),
            (
                format!("user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"),
                Runtime::Podman,
            ),
            (format!("docker/{ID}"), Runtime::Docker),
            (format!("system.slice/docker-{ID}.scope"), Runtime::Docker),
            (
                format!("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0a1b_2c3d.slice/cri-containerd-{ID}.scope"),
                Runtime::Containerd,
            ),
            (
                format!("kubepods/burstable/pod0a1b2c3d-0000-1111-2222-333344445555/{ID}"),
                Runtime::Containerd,
            ),
            (
                format!("kubepods/pod0a1b2c3d-0000-1111-2222-333344445555/{ID}"),
                Runtime::Containerd,
            ),
            (
                format!("kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0a1b.slice/crio-{ID}.scope"),
                Runtime::Crio,
            ),
            (
                format!("kubepods/besteffort/pod0a1b2c3d/crio-{ID}"),
                Runtime::Crio,
            ),
        ];
        for (path, runtime) in cases {
            assert_eq!(parse(&path), Some((runtime, ID.to_string())), "{path}");
        }
    }

    #[test]
    fn not_containers() {
        for p in [
            "libpod_parent".to_string(),
            "machine.slice".to_string(),
            format!("machine.slice/libpod-conmon-{ID}.scope"),
            format!("kubepods.slice/kubepods-pod1.slice/crio-conmon-{ID}.scope"),
            "kubepods/burstable/pod0a1b2c3d".to_string(),
            "system.slice/docker.service".to_string(),
            "init.scope".to_string(),
            // A bare id outside the runtimes' folders says nothing.
            format!("system.slice/{ID}"),
            ID.to_string(),
            // Too short, or not hex.
            "docker/4f811e68bbd5".to_string(),
            format!("libpod_parent/libpod-{}", ID.replace('4', "g")),
        ] {
            assert_eq!(parse(&p), None, "{p}");
        }
    }

    #[test]
    fn ids_are_lower_case() {
        let upper = ID.to_ascii_uppercase();
        assert_eq!(
            parse(&format!("docker/{upper}")),
            Some((Runtime::Docker, ID.to_string()))
        );
    }

    /// The watcher on a plain directory tree (inotify reports mkdir/rmdir
    /// the same way on cgroupfs): containers already there, new ones in
    /// new parent folders, removals and a remove-and-recreate.
    /// A subtree of the cgroup v2 hierarchy counts its levels from the
    /// hierarchy's root, as the kernel does; a folder elsewhere is a root.
    #[test]
    fn levels_count_from_the_cgroup2_root() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(depth_in_cgroup2(dir.path()), 0);
        let root = chids_live::cgroup::cgroup2_root().expect("a cgroup v2 mount");
        assert_eq!(depth_in_cgroup2(&root), 0);
        let child = fs::read_dir(&root)
            .unwrap()
            .flatten()
            .find(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .expect("a folder below the cgroup v2 root");
        assert_eq!(depth_in_cgroup2(&child.path()), 1);
    }

    #[test]
    fn follows_a_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let other = "ab".repeat(32);
        fs::create_dir_all(root.join(format!("docker/{other}"))).unwrap();
        let (mut d, initial) = Discovery::new(root).unwrap();
        assert!(matches!(&initial[..], [Change::Started(f)] if f.container.id == other));

        // A parent made after the start, then a container inside it.
        fs::create_dir(root.join("libpod_parent")).unwrap();
        fs::create_dir(root.join(format!("libpod_parent/libpod-{ID}"))).unwrap();
        // Inside a container: not watched, not a container.
        fs::create_dir(root.join(format!("libpod_parent/libpod-{ID}/init"))).unwrap();
        let changes = d.poll().unwrap();
        let started: Vec<&Found> = changes
            .iter()
            .filter_map(|c| match c {
                Change::Started(f) => Some(f),
                _ => None,
            })
            .collect();
        assert_eq!(started.len(), 1, "{changes:?}");
        assert_eq!(started[0].container.runtime, Runtime::Podman);
        assert_eq!(started[0].level, 2);
        let first_id = started[0].cgroup_id;

        fs::remove_dir(root.join(format!("libpod_parent/libpod-{ID}/init"))).unwrap();
        fs::remove_dir(root.join(format!("libpod_parent/libpod-{ID}"))).unwrap();
        // A file of the same name keeps a new inode from reusing the old one.
        let _keep = fs::File::create(root.join("pin")).unwrap();
        fs::create_dir(root.join(format!("libpod_parent/libpod-{ID}"))).unwrap();
        let changes = d.poll().unwrap();
        assert!(
            matches!(&changes[..], [Change::Stopped { cgroup_id, .. }, Change::Started(f)]
                if *cgroup_id == first_id && f.container.id == ID),
            "{changes:?}"
        );
        fs::remove_dir(root.join(format!("docker/{other}"))).unwrap();
        let changes = d.poll().unwrap();
        assert!(
            matches!(&changes[..], [Change::Stopped { .. }]),
            "{changes:?}"
        );
        assert!(d.poll().unwrap().is_empty());
        // root, docker, libpod_parent: never the containers themselves.
        assert_eq!(d.watched_dirs(), 3);
    }
}
