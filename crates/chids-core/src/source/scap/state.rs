//! The state sysdig keeps while it reads a capture and applies before it
//! prints an event: thread names and working directories, and per process
//! the table of open file descriptors (so an `open` exit already shows its
//! new fd, a `dup2` copy resolves to the file it copies, an `execve` exit
//! shows the new process name).

use super::event_table::{self, EventInfo};
use std::sync::LazyLock;

use super::events_gen::{EC_SYSCALL, EVENTS};
use super::format::{cstr, int, uint};
use super::{State, Thread};

mod fds;
mod sockets;
mod threads;

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
pub(crate) fn update_state(st: &mut State, tid: i64, ty: u16, params: &[&[u8]], info: &EventInfo) {
    let exit = ty % 2 == 1;
    let (kind, slots) = TYPES[ty as usize];
    if !exit {
        enter(st, tid, ty, params, info, slots);
        return;
    }
    let pend = st.pending.remove(&tid).unwrap_or_default();
    if kind == ExitKind::Other {
        return;
    }
    let ev = Exit {
        tid,
        info,
        params,
        res: params.first().map(|v| int(v)).unwrap_or(-1),
        pend,
    };
    match kind {
        ExitKind::Open => fds::open(st, &ev),
        ExitKind::Socket => sockets::socket(st, &ev),
        ExitKind::Socketpair => sockets::socketpair(st, &ev),
        ExitKind::Connect => sockets::connect(st, &ev),
        ExitKind::Bind => sockets::bind(st, &ev),
        ExitKind::Accept => sockets::accept(st, &ev),
        ExitKind::Pipe => fds::pipe(st, &ev),
        ExitKind::NewFd => fds::new_fd(st, &ev),
        ExitKind::Dup => fds::dup(st, &ev),
        ExitKind::Close if ev.res >= 0 => fds::close(st, &ev),
        ExitKind::CloseRange => fds::close_range(st, &ev),
        ExitKind::Chdir if ev.res >= 0 => threads::chdir(st, &ev),
        ExitKind::Clone => threads::clone(st, &ev),
        ExitKind::Execve => threads::execve(st, &ev),
        ExitKind::Close | ExitKind::Chdir | ExitKind::Other => {}
    }
}

/// An enter event: remembers its arguments for the thread's exit, and
/// applies the few enter events that change the tables themselves.
fn enter(st: &mut State, tid: i64, ty: u16, params: &[&[u8]], info: &EventInfo, slots: EnterSlots) {
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
    if tid == -1 && (ty == event_table::CONTAINER_JSON_E || ty == event_table::CONTAINER_JSON_2_E) {
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
}

/// An exit event being applied: its parameters by name, its result (the
/// first parameter) and what the thread's enter event remembered.
struct Exit<'e, 'p> {
    tid: i64,
    info: &'e EventInfo,
    params: &'e [&'p [u8]],
    res: i64,
    pend: Pending,
}

impl<'p> Exit<'_, 'p> {
    fn name(&self) -> &'static str {
        self.info.name
    }

    fn get(&self, key: &str) -> Option<&'p [u8]> {
        named(self.info, self.params, key)
    }

    /// A signed argument, or `absent`. A current driver sends only exit
    /// events, each carrying the arguments (fd, domain, cmd, ...) an older
    /// one sent with the enter: handlers read them from the exit when it
    /// has them, from the enter's memory (`pend`) otherwise.
    fn int_or(&self, key: &str, absent: i64) -> i64 {
        self.get(key).map(int).unwrap_or(absent)
    }

    /// An unsigned 32-bit argument, or `absent`.
    fn u32_or(&self, key: &str, absent: u32) -> u32 {
        self.get(key).map_or(absent, |v| uint(v) as u32)
    }

    /// The `flags` argument (0 when absent).
    fn flags(&self) -> u32 {
        self.u32_or("flags", 0)
    }

    /// A string argument, up to its NUL, lossily decoded.
    fn text(&self, key: &str) -> Option<String> {
        self.get(key)
            .map(|v| String::from_utf8_lossy(cstr(v)).into_owned())
    }
}

fn json_id(j: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(cstr(j)).ok()?;
    let i = s.find("\"id\":\"")? + 6;
    let rest = &s[i..];
    let end = rest.find('"')?;
    Some(rest[..end].to_string())
}
