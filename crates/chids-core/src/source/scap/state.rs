//! The state sysdig keeps while it reads a capture and applies before it
//! prints an event: thread names and working directories, and per process
//! the table of open file descriptors (so an `open` exit already shows its
//! new fd, a `dup2` copy resolves to the file it copies, an `execve` exit
//! shows the new process name).

use super::event_table::{self, EventInfo};
use std::sync::LazyLock;

use super::events_gen::{EC_SYSCALL, EVENTS};
use super::format::{
    cstr, cwd_of, int, resolve, sockaddr_str, tuple_str, uint, unix_path, AT_FDCWD,
};
use super::{FdInfo, State, Text, Thread};

// PPM encodings (ppm_events_public.h) of the flags the state depends on.
const O_DIRECTORY: u32 = 1 << 10;
const O_CLOEXEC: u32 = 1 << 12;
const PPM_FCNTL_F_DUPFD: u32 = 1;
const PPM_FCNTL_F_DUPFD_CLOEXEC: u32 = 26;
const PPM_CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;
const PPM_MFD_CLOEXEC: u32 = 1;
const PPM_EPOLL_CLOEXEC: u32 = 1;

fn param<'a>(params: &[&'a [u8]], i: usize) -> Option<&'a [u8]> {
    params.get(i).copied()
}

fn pidx(info: &EventInfo, name: &str) -> Option<usize> {
    info.params.iter().position(|p| p.name == name)
}

fn named<'a>(info: &EventInfo, params: &[&'a [u8]], name: &str) -> Option<&'a [u8]> {
    pidx(info, name).and_then(|i| param(params, i))
}

fn l4_tag(base: &str, sock_type: u32) -> String {
    if base == "4" || base == "6" {
        match sock_type & 0xf {
            1 => format!("{base}t"),
            2 => format!("{base}u"),
            3 => format!("{base}r"),
            _ => base.to_string(),
        }
    } else {
        base.to_string()
    }
}

/// Per-thread memory of the enter event, for exits that need its values.
#[derive(Default, Clone)]
pub struct Pending {
    pub fd: i64,
    pub domain: u32,
    pub sock_type: u32,
    pub path: Vec<u8>,
    pub flags: u32,
    pub dirfd: i64,
}

/// What an exit event of a type does to the tables: decided once per type
/// from its name, so that an exit changing nothing (most of them) costs
/// one table lookup.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ExitKind {
    Open,
    Socket,
    Socketpair,
    Connect,
    Bind,
    Accept,
    Pipe,
    /// Calls returning a new descriptor of a special kind (eventfd, ...).
    NewFd,
    Dup,
    Close,
    CloseRange,
    Chdir,
    Clone,
    Execve,
    Other,
}

fn exit_kind(name: &str) -> ExitKind {
    match name {
        "open" | "openat" | "creat" | "openat2" | "open_by_handle_at" => ExitKind::Open,
        "socket" => ExitKind::Socket,
        "socketpair" => ExitKind::Socketpair,
        "connect" => ExitKind::Connect,
        "bind" => ExitKind::Bind,
        "accept" | "accept4" => ExitKind::Accept,
        "pipe" | "pipe2" => ExitKind::Pipe,
        "eventfd" | "eventfd2" | "signalfd" | "signalfd4" | "timerfd_create" | "inotify_init"
        | "inotify_init1" | "epoll_create" | "epoll_create1" | "userfaultfd" | "io_uring_setup"
        | "pidfd_open" | "bpf" | "memfd_create" => ExitKind::NewFd,
        "dup" | "dup2" | "dup3" | "fcntl" => ExitKind::Dup,
        "close" => ExitKind::Close,
        "close_range" => ExitKind::CloseRange,
        "chdir" => ExitKind::Chdir,
        "clone" | "fork" | "vfork" | "clone3" => ExitKind::Clone,
        "execve" | "execveat" => ExitKind::Execve,
        _ => ExitKind::Other,
    }
}

/// Parameter positions an enter event's memory ([`Pending`]) is read from
/// (`NONE` when the type has no such parameter).
#[derive(Clone, Copy)]
struct EnterSlots {
    fd: u8,
    domain: u8,
    sock_type: u8,
    name: u8,
    flags: u8,
    dirfd: u8,
    cmd: u8,
}

const NONE: u8 = u8::MAX;

/// Per event type: its [`ExitKind`] and [`EnterSlots`].
static TYPES: LazyLock<Vec<(ExitKind, EnterSlots)>> = LazyLock::new(|| {
    EVENTS
        .iter()
        .map(|info| {
            let at = |n: &str| pidx(info, n).map_or(NONE, |i| i.min(NONE as usize - 1) as u8);
            let slots = EnterSlots {
                fd: at("fd"),
                domain: at("domain"),
                sock_type: at("type"),
                name: at("name"),
                flags: at("flags"),
                dirfd: at("dirfd"),
                cmd: at("cmd"),
            };
            (exit_kind(info.name), slots)
        })
        .collect()
});

/// Applies what sysdig learns from an event to the thread and fd tables.
pub fn update_state(st: &mut State, tid: i64, ty: u16, params: &[&[u8]], info: &EventInfo) {
    let name = info.name;
    let exit = ty % 2 == 1;
    let (kind, slots) = TYPES[ty as usize];
    if !exit {
        let slot = |i: u8| param(params, i as usize);
        let mut p = Pending::default();
        if let Some(v) = slot(slots.fd) {
            p.fd = int(v);
        }
        if let Some(v) = slot(slots.domain) {
            p.domain = uint(v) as u32;
        }
        if let Some(v) = slot(slots.sock_type) {
            p.sock_type = uint(v) as u32;
        }
        if let Some(v) = slot(slots.name) {
            p.path = cstr(v).to_vec();
        }
        if let Some(v) = slot(slots.flags) {
            p.flags = uint(v) as u32;
        }
        if let Some(v) = slot(slots.dirfd) {
            p.dirfd = int(v);
        }
        if let Some(v) = slot(slots.cmd) {
            p.flags = uint(v) as u32;
        }
        if ty == event_table::PROCEXIT_E || ty == event_table::PROCEXIT_1_E {
            st.remove_next = Some(tid);
        }
        if tid == -1
            && (ty == event_table::CONTAINER_JSON_E || ty == event_table::CONTAINER_JSON_2_E)
        {
            if let Some(id) = params.first().and_then(|j| json_id(j)) {
                st.threads.insert(
                    tid,
                    Thread {
                        pid: tid,
                        comm: format!("container:{id}").into(),
                        ..Thread::default()
                    },
                );
            }
        }
        // Scheduler and other non-syscall events interleave between a
        // syscall's enter and exit; they must not replace its memory.
        if info.category & EC_SYSCALL != 0 {
            st.pending.insert(tid, p);
        }
        return;
    }
    let pend = st.pending.remove(&tid).unwrap_or_default();
    if kind == ExitKind::Other {
        return;
    }
    // A current driver sends only exit events, each carrying the arguments
    // (fd, domain, cmd, ...) an older one sent with the enter: read them
    // from the exit when it has them, from the enter's memory otherwise.
    let arg_fd =
        |key: &str, remembered: i64| named(info, params, key).map(int).unwrap_or(remembered);
    let res = params.first().map(|v| int(v)).unwrap_or(-1);
    match kind {
        ExitKind::Open => {
            let fd = res;
            if fd < 0 {
                return;
            }
            let (path, flags, dirfd) =
                match named(info, params, "name").or_else(|| named(info, params, "path")) {
                    Some(n) => (
                        cstr(n).to_vec(),
                        named(info, params, "flags")
                            .map(|f| uint(f) as u32)
                            .unwrap_or(0),
                        named(info, params, "dirfd").map(int).unwrap_or(AT_FDCWD),
                    ),
                    None => (pend.path.clone(), pend.flags, pend.dirfd),
                };
            let path = String::from_utf8_lossy(&path).into_owned();
            let full = if path.starts_with('/') {
                path
            } else {
                let base = if name == "openat" || name == "openat2" {
                    if dirfd == AT_FDCWD {
                        cwd_of(st, tid)
                    } else {
                        st.fd(tid, dirfd)
                            .map(|f| f.name.to_string())
                            .unwrap_or_default()
                    }
                } else {
                    cwd_of(st, tid)
                };
                resolve(&base, &path)
            };
            let tag = if flags & O_DIRECTORY != 0 { "d" } else { "f" };
            st.fd_table(tid).insert(
                fd,
                FdInfo {
                    tag: tag.to_string(),
                    name: full.into(),
                    cloexec: flags & O_CLOEXEC != 0,
                },
            );
        }
        ExitKind::Socket => {
            let fd = res;
            if fd >= 0 {
                let domain = named(info, params, "domain").map_or(pend.domain, |v| uint(v) as u32);
                let sock_type =
                    named(info, params, "type").map_or(pend.sock_type, |v| uint(v) as u32);
                let tag = match domain {
                    2 => "4",
                    10 => "6",
                    1 => "u",
                    16 => "n",
                    _ => "o",
                };
                let flags = named(info, params, "flags").map_or(0, |v| uint(v) as u32);
                st.fd_table(tid).insert(
                    fd,
                    FdInfo {
                        tag: tag.to_string(),
                        name: Text::default(),
                        cloexec: flags & O_CLOEXEC != 0,
                    },
                );
                st.sock_types.insert((st.pid_of(tid), fd), sock_type);
            }
        }
        ExitKind::Socketpair => {
            if res < 0 {
                return;
            }
            for key in ["fd1", "fd2"] {
                let fd = named(info, params, key).map(int).unwrap_or(-1);
                if fd >= 0 {
                    st.fd_table(tid).insert(
                        fd,
                        FdInfo {
                            tag: "u".into(),
                            ..FdInfo::default()
                        },
                    );
                }
            }
        }
        ExitKind::Connect => {
            if res < 0 && res != -115 {
                return;
            }
            let Some(tp) = named(info, params, "tuple") else {
                return;
            };
            let fd = arg_fd("fd", pend.fd);
            let key = (st.pid_of(tid), fd);
            let stype = st.sock_types.get(&key).copied().unwrap_or(1);
            let Some(f) = st.fd_table(tid).get_mut(&fd) else {
                return;
            };
            if let Some(p) = unix_path(tp) {
                f.name = p.into();
            } else if let Some(s) = tuple_str(tp) {
                f.tag = l4_tag(&f.tag[..1], stype);
                f.name = s.into();
            }
        }
        ExitKind::Bind => {
            if res < 0 {
                return;
            }
            let Some(a) = named(info, params, "addr") else {
                return;
            };
            let fd = arg_fd("fd", pend.fd);
            let key = (st.pid_of(tid), fd);
            let stype = st.sock_types.get(&key).copied().unwrap_or(1);
            if let Some(f) = st.fd_table(tid).get_mut(&fd) {
                if let Some(s) = sockaddr_str(a) {
                    if a.first() != Some(&1) {
                        f.tag = l4_tag(&f.tag[..1], stype);
                    }
                    f.name = s.into();
                }
            }
        }
        ExitKind::Accept => {
            let fd = res;
            if fd < 0 {
                return;
            }
            let tp = named(info, params, "tuple").unwrap_or(&[]);
            let (tag, name) = match tp.first() {
                Some(2) => ("4t".to_string(), tuple_str(tp).unwrap_or_default()),
                Some(10) => ("6t".to_string(), tuple_str(tp).unwrap_or_default()),
                Some(1) => ("u".to_string(), unix_path(tp).unwrap_or_default()),
                _ => ("o".to_string(), String::new()),
            };
            // The driver records SOCK_CLOEXEC as the file flag O_CLOEXEC.
            let cloexec =
                named(info, params, "flags").is_some_and(|f| uint(f) as u32 & O_CLOEXEC != 0);
            st.fd_table(tid).insert(
                fd,
                FdInfo {
                    tag,
                    name: name.into(),
                    cloexec,
                },
            );
        }
        ExitKind::Pipe => {
            let cloexec =
                named(info, params, "flags").is_some_and(|f| uint(f) as u32 & O_CLOEXEC != 0);
            for key in ["fd1", "fd2"] {
                if let Some(v) = named(info, params, key) {
                    let fd = int(v);
                    if fd >= 0 {
                        st.fd_table(tid).insert(
                            fd,
                            FdInfo {
                                tag: "p".into(),
                                cloexec,
                                ..FdInfo::default()
                            },
                        );
                    }
                }
            }
        }
        ExitKind::NewFd => {
            let fd = res;
            if fd < 0 {
                return;
            }
            let tag = match name {
                "eventfd" | "eventfd2" => "e",
                "signalfd" | "signalfd4" => "s",
                "timerfd_create" => "t",
                "inotify_init" | "inotify_init1" => "i",
                "epoll_create" | "epoll_create1" => "l",
                "userfaultfd" => "u",
                "io_uring_setup" => "r",
                "pidfd_open" => "P",
                "bpf" => "b",
                _ => "m",
            };
            if name == "bpf" && info.params.first().map(|p| p.name) != Some("fd") {
                // Old bpf events return a result, not a descriptor.
                return;
            }
            let flags = named(info, params, "flags").map_or(0, |v| uint(v) as u32);
            let cloexec = match name {
                "memfd_create" => flags & PPM_MFD_CLOEXEC != 0,
                "epoll_create1" => flags & PPM_EPOLL_CLOEXEC != 0,
                "eventfd2" | "signalfd4" | "inotify_init1" | "userfaultfd" => {
                    flags & O_CLOEXEC != 0
                }
                _ => false,
            };
            let fd_name = match (name, named(info, params, "name")) {
                ("memfd_create", Some(n)) => String::from_utf8_lossy(cstr(n)).into_owned(),
                _ => String::new(),
            };
            st.fd_table(tid).insert(
                fd,
                FdInfo {
                    tag: tag.into(),
                    name: fd_name.into(),
                    cloexec,
                },
            );
        }
        ExitKind::Dup => {
            let old = named(info, params, "oldfd")
                .or_else(|| named(info, params, "fd"))
                .map(int)
                .unwrap_or(pend.fd);
            if res < 0 || res == old {
                return;
            }
            let mut cloexec = false;
            if name == "fcntl" {
                // Only F_DUPFD / F_DUPFD_CLOEXEC create descriptors (the
                // enter's `cmd` is kept in `Pending::flags`).
                let cmd = named(info, params, "cmd").map_or(pend.flags, |v| uint(v) as u32);
                if !matches!(cmd, PPM_FCNTL_F_DUPFD | PPM_FCNTL_F_DUPFD_CLOEXEC) {
                    return;
                }
                cloexec = cmd == PPM_FCNTL_F_DUPFD_CLOEXEC;
            } else if name == "dup3" {
                cloexec =
                    named(info, params, "flags").is_some_and(|f| uint(f) as u32 & O_CLOEXEC != 0);
            }
            // dup2/dup3 close what `newfd` named before: the copy replaces it.
            match st.fd(tid, old).cloned() {
                Some(mut f) => {
                    f.cloexec = cloexec;
                    st.fd_table(tid).insert(res, f);
                }
                None => {
                    st.fd_table(tid).remove(&res);
                }
            }
        }
        ExitKind::Close if res >= 0 => {
            let fd = arg_fd("fd", pend.fd);
            st.fd_table(tid).remove(&fd);
        }
        ExitKind::CloseRange => {
            if res < 0 {
                return;
            }
            let bound = |k: &str| named(info, params, k).map(|v| uint(v) as i64);
            let (Some(first), Some(last)) = (bound("first"), bound("last")) else {
                return;
            };
            let flags = named(info, params, "flags").map_or(0, |v| uint(v) as u32);
            let table = st.fd_table(tid);
            if flags & PPM_CLOSE_RANGE_CLOEXEC != 0 {
                for (_, f) in table
                    .iter_mut()
                    .filter(|(fd, _)| (first..=last).contains(*fd))
                {
                    f.cloexec = true;
                }
            } else {
                table.retain(|fd, _| !(first..=last).contains(fd));
            }
        }
        ExitKind::Chdir if res >= 0 => {
            if let Some(p) = named(info, params, "path") {
                let p = String::from_utf8_lossy(cstr(p)).into_owned();
                let cwd = cwd_of(st, tid);
                let mut full = resolve(&cwd, &p);
                if !full.ends_with('/') {
                    full.push('/');
                }
                if let Some(t) = st.threads.get_mut(&tid) {
                    t.cwd = full;
                }
            }
        }
        ExitKind::Clone => clone_exit(st, tid, params, info),
        ExitKind::Execve => {
            if res != 0 {
                return;
            }
            let comm = named(info, params, "comm")
                .or_else(|| named(info, params, "exe"))
                .map(|v| String::from_utf8_lossy(cstr(v)).into_owned())
                .unwrap_or_default();
            let pid = named(info, params, "pid").map(int).unwrap_or(tid);
            let cwd =
                named(info, params, "cwd").map(|v| String::from_utf8_lossy(cstr(v)).into_owned());
            let container = named(info, params, "cgroups").and_then(super::container_from_cgroups);
            let t = st.threads.entry(tid).or_default();
            t.comm = comm.into();
            t.pid = pid;
            if let Some(c) = cwd.filter(|c| !c.is_empty()) {
                t.cwd = c;
            }
            if container.is_some() {
                t.container = container;
            }
            // Descriptors opened close-on-exec are gone after exec.
            st.fd_table(tid).retain(|_, f| !f.cloexec);
        }
        ExitKind::Close | ExitKind::Chdir | ExitKind::Other => {}
    }
}

fn clone_exit(st: &mut State, tid: i64, params: &[&[u8]], info: &EventInfo) {
    let res = params.first().map(|v| int(v)).unwrap_or(-1);
    if res < 0 {
        return;
    }
    let get = |n: &str| named(info, params, n);
    let comm = get("comm")
        .or_else(|| get("exe"))
        .map(|v| String::from_utf8_lossy(cstr(v)).into_owned())
        .unwrap_or_default();
    let flags = get("flags").map(|v| uint(v) as u32).unwrap_or(0);
    let is_thread = flags & (1 << 13) != 0;
    let cwd = get("cwd")
        .map(|v| String::from_utf8_lossy(cstr(v)).into_owned())
        .unwrap_or_default();
    let container = get("cgroups").and_then(super::container_from_cgroups);
    let (child, parent_tid) = if res == 0 {
        (tid, get("ptid").map(int).unwrap_or(-1))
    } else {
        (res, tid)
    };
    // Inside a pid namespace the parent sees the child's id in that
    // namespace, not the global tid: then sysdig learns the child only from
    // the child's own exit.
    if res != 0 {
        let in_ns = get("vtid").map(int).is_some_and(|v| v != tid);
        if in_ns || st.threads.contains_key(&child) {
            return;
        }
    }
    let parent = st.threads.get(&parent_tid).cloned();
    let pid = if res == 0 {
        get("pid").map(int).unwrap_or(child)
    } else if is_thread {
        parent.as_ref().map(|p| p.pid).unwrap_or(parent_tid)
    } else {
        child
    };
    let parent_pid = parent.as_ref().map(|p| p.pid).unwrap_or(parent_tid);
    if pid != parent_pid && !st.fds.contains_key(&pid) {
        if let Some(tab) = st.fds.get(&parent_pid).cloned() {
            st.fds.insert(pid, tab);
        }
    }
    let container = container.or_else(|| parent.as_ref().and_then(|p| p.container.clone()));
    st.threads.insert(
        child,
        Thread {
            pid,
            comm: comm.into(),
            cwd: if cwd.is_empty() {
                parent.map(|p| p.cwd).unwrap_or_default()
            } else {
                cwd
            },
            container,
        },
    );
}

fn json_id(j: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(cstr(j)).ok()?;
    let i = s.find("\"id\":\"")? + 6;
    let rest = &s[i..];
    let end = rest.find('"')?;
    Some(rest[..end].to_string())
}
