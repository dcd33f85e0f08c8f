//! Which cgroup to watch: a path, a container id, or a command we start in
//! a fresh cgroup of its own.

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::{AsFd, AsRawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::LiveError;

/// What to capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A cgroup v2 directory (absolute, or relative to the cgroup2 root).
    Cgroup(PathBuf),
    /// A docker / containerd / cri-o / podman container id (or a prefix of it).
    Container(String),
    /// Start this command in a fresh cgroup and namespaces, and follow it.
    Command(Vec<String>),
}

/// A resolved cgroup v2 directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupRef {
    pub path: PathBuf,
    /// The kernel's cgroup id (= the directory's inode number on cgroup2),
    /// what `bpf_get_current_cgroup_id()` returns.
    pub id: u64,
    /// Depth below the cgroup2 root (the root is 0).
    pub level: u32,
    /// Short name for reports: the container id when known, else the last
    /// path component.
    pub name: String,
}

/// Where cgroup v2 is mounted: `/sys/fs/cgroup` on unified systems,
/// `/sys/fs/cgroup/unified` on hybrid ones (this machine).
pub fn cgroup2_root() -> Result<PathBuf, LiveError> {
    let mi = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| LiveError::io("/proc/self/mountinfo", e))?;
    // Fields: id parent maj:min root mountpoint opts... - fstype source superopts
    mi.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fstype = post.split_whitespace().next()?;
            let root = pre.split_whitespace().nth(3)?;
            (fstype == "cgroup2" && root == "/").then(|| pre.split_whitespace().nth(4))?
        })
        .map(PathBuf::from)
        .min_by_key(|p| p.as_os_str().len())
        .ok_or(LiveError::NoCgroup2)
}

impl CgroupRef {
    /// Resolves a cgroup directory (absolute, or relative to the cgroup2 root).
    pub(crate) fn from_path(path: &Path) -> Result<CgroupRef, LiveError> {
        let root = cgroup2_root()?;
        let full = if path.is_absolute() {
            path.to_path_buf()
        } else {
            root.join(path)
        };
        let meta = fs::metadata(&full)
            .map_err(|e| LiveError::CgroupNotFound(format!("{}: {e}", full.display())))?;
        let rel = full.strip_prefix(&root).map_err(|_| {
            LiveError::CgroupNotFound(format!(
                "{} is not under the cgroup v2 root {}",
                full.display(),
                root.display()
            ))
        })?;
        if !meta.is_dir() || !full.join("cgroup.procs").exists() {
            return Err(LiveError::CgroupNotFound(format!(
                "{} is not a cgroup v2 directory",
                full.display()
            )));
        }
        let level = rel.components().count() as u32;
        let name = full
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "root".into());
        Ok(CgroupRef {
            path: full,
            id: meta.ino(),
            level,
            name,
        })
    }

    /// Finds the cgroup of a container by (a prefix of) its id, as docker
    /// (`docker-<id>.scope`, `docker/<id>`), containerd
    /// (`cri-containerd-<id>.scope`), cri-o (`crio-<id>.scope`) and podman
    /// (`libpod-<id>.scope`) name them.
    pub fn from_container(id: &str) -> Result<CgroupRef, LiveError> {
        let id_lc = id.to_ascii_lowercase();
        if id_lc.len() < 4 || !id_lc.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(LiveError::Container {
                id: id.into(),
                why: "give at least 4 hex digits of the container id".into(),
            });
        }
        let root = cgroup2_root()?;
        let mut found: Vec<(PathBuf, String)> = Vec::new();
        find_container_dirs(&root, &id_lc, 0, &mut found);
        // The same container can show up twice (e.g. `docker-<id>.scope` and
        // an `init.scope` child is not a match; but nested runtimes may
        // create `<id>/<id>`): keep the shallowest of each full id.
        found.sort_by_key(|(p, _)| p.components().count());
        let mut ids: Vec<&str> = found.iter().map(|(_, full)| full.as_str()).collect();
        ids.dedup();
        ids.sort();
        ids.dedup();
        match ids.len() {
            0 => Err(LiveError::Container {
                id: id.into(),
                why: format!("no cgroup for it under {}", root.display()),
            }),
            1 => {
                let (path, full) = &found[0];
                let mut cg = CgroupRef::from_path(path)?;
                cg.name = full.chars().take(12).collect();
                Ok(cg)
            }
            _ => Err(LiveError::Container {
                id: id.into(),
                why: format!("ambiguous, matches {}", ids.join(", ")),
            }),
        }
    }
}

/// The container id in a cgroup directory name, if it has one.
fn container_id_of(name: &str) -> Option<&str> {
    crate::container_dir::container_id_in(name).map(|(_, id)| id)
}

fn find_container_dirs(dir: &Path, id: &str, depth: u32, out: &mut Vec<(PathBuf, String)>) {
    if depth > 12 {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let path = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        if let Some(full) = container_id_of(&name) {
            if full.to_ascii_lowercase().starts_with(id) {
                out.push((path, full.to_ascii_lowercase()));
                continue;
            }
        }
        find_container_dirs(&path, id, depth + 1, out);
    }
}

/// A command running in a cgroup chids created for it (under
/// `<cgroup2 root>/chids/<name>`), with new mount, pid, uts, ipc and cgroup
/// namespaces, like a minimal container. The cgroup namespace is rooted at
/// its own cgroup, so the command cannot move itself out of what chids
/// watches (the kernel refuses migrations outside a namespace's root).
/// The command dies with chids, even when chids is killed with SIGKILL
/// (`PR_SET_PDEATHSIG` on the sandbox's first process). The cgroup is
/// removed on drop; one left by a killed run is swept by the next.
pub struct CommandCgroup {
    pub cgroup: CgroupRef,
    child: Option<Child>,
    /// Send the command's stdout to chids' stderr.
    output_to_stderr: bool,
}

impl CommandCgroup {
    /// Creates the cgroup (not yet running anything), so the capture can
    /// watch it before the command starts.
    pub fn create(name: &str) -> Result<CommandCgroup, LiveError> {
        let root = cgroup2_root()?;
        let parent = root.join("chids");
        fs::create_dir_all(&parent)
            .map_err(|e| LiveError::io(format!("create {}", parent.display()), e))?;
        sweep_stale(&parent);
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        // One cgroup per command, even for two of the same name at once in
        // one process (tests, an agent): a shared one would be removed by
        // the first to finish. The pid stays last for `sweep_stale`.
        static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = parent.join(format!("{safe}-{n}-{}", std::process::id()));
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(LiveError::io(format!("create {}", dir.display()), e)),
        }
        let mut cgroup = CgroupRef::from_path(&dir)?;
        cgroup.name = safe;
        Ok(CommandCgroup {
            cgroup,
            child: None,
            output_to_stderr: false,
        })
    }

    /// Sends the command's stdout to chids' stderr (for consumers that
    /// write their own results on stdout).
    pub(crate) fn output_to_stderr(mut self) -> CommandCgroup {
        self.output_to_stderr = true;
        self
    }

    /// Starts `argv` inside the cgroup. The child moves itself into the
    /// cgroup before anything else, so the capture sees it from its first
    /// system call after the move to its exec and on.
    pub fn spawn(&mut self, argv: &[String]) -> Result<u32, LiveError> {
        let (prog, args) = argv
            .split_first()
            .ok_or_else(|| LiveError::Other("no command given after --".into()))?;
        let procs_path = self.cgroup.path.join("cgroup.procs");
        let procs = fs::OpenOptions::new()
            .write(true)
            .open(&procs_path)
            .map_err(|e| LiveError::io(format!("open {}", procs_path.display()), e))?;
        let procs_fd = procs.as_raw_fd();
        let proc_fs = CString::new("proc").unwrap();
        let proc_dir = CString::new("/proc").unwrap();
        let slash = CString::new("/").unwrap();
        // Resolve the program here: a PATH search in the child would show up
        // in the capture as a row of failed execve calls.
        let resolved = resolve_program(prog).ok_or_else(|| {
            LiveError::Other(format!("{prog}: command not found (searched PATH)"))
        })?;
        let chids_pid = std::process::id() as libc::pid_t;
        let mut cmd = Command::new(&resolved);
        cmd.arg0(prog);
        cmd.args(args);
        if self.output_to_stderr {
            // `monitor` writes alerts on stdout: keep the command's output
            // out of that stream.
            let err = std::io::stderr()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| LiveError::io("duplicate stderr", e))?;
            cmd.stdout(err);
        }
        // SAFETY: between fork and exec only async-signal-safe calls are made
        // (write, unshare, fork, waitpid, mount, prctl, getppid,
        // close_range, _exit); nothing allocates.
        unsafe {
            cmd.pre_exec(move || {
                // Die with chids: this process waits for the command, and
                // the command's pid 1 dies with it (below). If chids is
                // already gone, the signal will never come: leave now.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                if libc::getppid() != chids_pid {
                    libc::_exit(137);
                }
                // Join the cgroup: writing "0" moves the writing process.
                if libc::write(procs_fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                // The cgroup namespace is created after joining, so its
                // root is the command's own cgroup.
                let flags = libc::CLONE_NEWNS
                    | libc::CLONE_NEWPID
                    | libc::CLONE_NEWUTS
                    | libc::CLONE_NEWIPC
                    | libc::CLONE_NEWCGROUP;
                if libc::unshare(flags) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // A new pid namespace applies to children: fork once; the
                // child becomes pid 1 and goes on to exec the command, this
                // process only waits for it and passes its status on (as
                // `unshare --fork` does).
                let pid = libc::fork();
                if pid < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if pid > 0 {
                    // Drop every inherited fd, in particular std's exec-error
                    // pipe, so the parent's spawn() returns at the exec.
                    libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
                    let mut status = 0;
                    loop {
                        let r = libc::waitpid(pid, &mut status, 0);
                        if r == pid || (r < 0 && *libc::__errno_location() != libc::EINTR) {
                            break;
                        }
                    }
                    let code = if libc::WIFEXITED(status) {
                        libc::WEXITSTATUS(status)
                    } else {
                        128 + libc::WTERMSIG(status)
                    };
                    libc::_exit(code);
                }
                // pid 1 of the new namespace: die with the waiter.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                // Our own /proc, without leaking the mount to the host.
                libc::mount(
                    std::ptr::null(),
                    slash.as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                );
                libc::mount(
                    proc_fs.as_ptr(),
                    proc_dir.as_ptr(),
                    proc_fs.as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    std::ptr::null(),
                );
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| LiveError::io(format!("start {prog}"), e))?;
        drop(procs);
        let pid = child.id();
        self.child = Some(child);
        Ok(pid)
    }

    /// The command's exit code once it has exited (128+signal if killed).
    pub fn try_wait(&mut self) -> Result<Option<i32>, LiveError> {
        match self.child.as_mut() {
            None => Ok(None),
            Some(c) => match c.try_wait() {
                Ok(Some(st)) => Ok(Some(exit_code(st))),
                Ok(None) => Ok(None),
                Err(e) => Err(LiveError::io("wait for command", e)),
            },
        }
    }

    /// Kills everything left in the cgroup and waits for the command.
    pub fn kill(&mut self) -> Option<i32> {
        let _ = fs::write(self.cgroup.path.join("cgroup.kill"), "1");
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            return c.wait().ok().map(exit_code);
        }
        None
    }
}

/// Removes cgroups earlier chids runs left behind (`<name>-<pid>` whose
/// pid is gone): a run killed with SIGKILL cannot clean up after itself.
/// Anything still running in one (a daemon that escaped the death signal
/// by double-forking inside the sandbox) is killed first: nobody watches it.
fn sweep_stale(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let Some(pid) = name.rsplit('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let populated = |p: &Path| {
            fs::read_to_string(p.join("cgroup.procs"))
                .map(|s| !s.trim().is_empty())
                .unwrap_or(false)
        };
        let dir = e.path();
        if populated(&dir) {
            let _ = fs::write(dir.join("cgroup.kill"), "1");
            let deadline = Instant::now() + Duration::from_secs(2);
            while populated(&dir) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = fs::remove_dir(&dir);
    }
}

/// `prog` itself if it names a path, else the first executable file called
/// `prog` on PATH.
pub(crate) fn resolve_program(prog: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exec = |p: &Path| {
        fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if prog.contains('/') {
        let p = PathBuf::from(prog);
        return is_exec(&p).then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| is_exec(p))
}

fn exit_code(st: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0))
}

impl Drop for CommandCgroup {
    fn drop(&mut self) {
        // Leftover processes (daemons the command started) go with it.
        let populated = |p: &Path| {
            fs::read_to_string(p.join("cgroup.procs"))
                .map(|s| !s.trim().is_empty())
                .unwrap_or(false)
        };
        if populated(&self.cgroup.path) {
            let _ = fs::write(self.cgroup.path.join("cgroup.kill"), "1");
        }
        if let Some(c) = self.child.as_mut() {
            if c.try_wait().ok().flatten().is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while populated(&self.cgroup.path) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = fs::remove_dir(&self.cgroup.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_in_names() {
        let id = "4f811e68bbd5b3ef3ac2e1e36d1e3f950f6df1e7e00330773cdfb16f9984aa16";
        assert_eq!(container_id_of(id), Some(id));
        assert_eq!(container_id_of(&format!("docker-{id}.scope")), Some(id));
        assert_eq!(
            container_id_of(&format!("cri-containerd-{id}.scope")),
            Some(id)
        );
        assert_eq!(container_id_of(&format!("crio-{id}.scope")), Some(id));
        assert_eq!(container_id_of("init.scope"), None);
        assert_eq!(container_id_of("system.slice"), None);
    }
}
