//! Rendering events like `sysdig -r` (`%evt.info` and the default line), and
//! the state updates sysdig applies before it prints an event (so an `open`
//! exit already shows its new fd, an `execve` exit the new process name).

use std::fmt::Write as _;

use super::event_table::{self, EventInfo, PFmt, PType};
use super::names;
use super::{FdInfo, ScapEvent, State, Thread};

const AT_FDCWD: i64 = -100;

pub fn ipv4(b: &[u8]) -> String {
    format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
}

pub fn ipv6(b: &[u8]) -> String {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    let ip = std::net::Ipv6Addr::from(a);
    // sysdig prints IPv4-mapped peers in dotted form.
    match ip.to_ipv4_mapped() {
        Some(v4) => v4.to_string(),
        None => ip.to_string(),
    }
}

/// sysdig's one-letter fd type tag for scap fd type codes.
pub fn fd_type_char(ty: u8) -> &'static str {
    match ty {
        1 | 16 => "f",
        2 => "d",
        3 | 5 => "4",
        4 | 6 => "6",
        7 => "p",
        8 => "u",
        9 => "e",
        11 => "s",
        12 => "l",
        13 => "i",
        14 => "t",
        15 => "n",
        17 => "b",
        18 => "u",
        19 => "r",
        20 => "m",
        21 => "P",
        _ => "o",
    }
}

pub(super) fn int(p: &[u8]) -> i64 {
    match p.len() {
        1 => p[0] as i8 as i64,
        2 => i16::from_le_bytes([p[0], p[1]]) as i64,
        4 => i32::from_le_bytes([p[0], p[1], p[2], p[3]]) as i64,
        8 => {
            let mut a = [0u8; 8];
            a.copy_from_slice(p);
            i64::from_le_bytes(a)
        }
        _ => 0,
    }
}

fn uint(p: &[u8]) -> u64 {
    match p.len() {
        1 => p[0] as u64,
        2 => u16::from_le_bytes([p[0], p[1]]) as u64,
        4 => u32::from_le_bytes([p[0], p[1], p[2], p[3]]) as u64,
        8 => {
            let mut a = [0u8; 8];
            a.copy_from_slice(p);
            u64::from_le_bytes(a)
        }
        _ => 0,
    }
}

/// A C string parameter: up to the first NUL.
pub(super) fn cstr(p: &[u8]) -> &[u8] {
    match memchr::memchr(0, p) {
        Some(i) => &p[..i],
        None => p,
    }
}

fn push_lossy(out: &mut String, b: &[u8]) {
    match std::str::from_utf8(b) {
        Ok(s) => out.push_str(s),
        Err(_) => out.push_str(&String::from_utf8_lossy(b)),
    }
}

/// Joins a relative path to a directory and folds `.` and `..`, as sysdig
/// does when it shows the resolved path beside a relative one.
pub fn resolve(dir: &str, rel: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for comp in dir.split('/').chain(rel.split('/')) {
        match comp {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut s = String::from("/");
    s.push_str(&parts.join("/"));
    s
}

pub(super) fn cwd_of(st: &State, tid: i64) -> String {
    let c = st
        .threads
        .get(&tid)
        .map(|t| t.cwd.clone())
        .unwrap_or_default();
    if c.is_empty() {
        "/".to_string()
    } else {
        c
    }
}

fn tuple_str(p: &[u8]) -> Option<String> {
    let fam = *p.first()?;
    match fam {
        2 if p.len() >= 13 => Some(format!(
            "{}:{}->{}:{}",
            ipv4(&p[1..5]),
            u16::from_le_bytes([p[5], p[6]]),
            ipv4(&p[7..11]),
            u16::from_le_bytes([p[11], p[12]])
        )),
        10 if p.len() >= 37 => Some(format!(
            "{}:{}->{}:{}",
            ipv6(&p[1..17]),
            u16::from_le_bytes([p[17], p[18]]),
            ipv6(&p[19..35]),
            u16::from_le_bytes([p[35], p[36]])
        )),
        1 if p.len() >= 17 => Some(format!(
            "{:x}->{:x} {}",
            uint(&p[1..9]),
            uint(&p[9..17]),
            String::from_utf8_lossy(cstr(&p[17..]))
        )),
        _ => None,
    }
}

fn unix_path(p: &[u8]) -> Option<String> {
    if p.first() == Some(&1) && p.len() >= 17 {
        Some(String::from_utf8_lossy(cstr(&p[17..])).into_owned())
    } else {
        None
    }
}

fn sockaddr_str(p: &[u8]) -> Option<String> {
    let fam = *p.first()?;
    match fam {
        2 if p.len() >= 7 => Some(format!(
            "{}:{}",
            ipv4(&p[1..5]),
            u16::from_le_bytes([p[5], p[6]])
        )),
        10 if p.len() >= 19 => Some(format!(
            "{}:{}",
            ipv6(&p[1..17]),
            u16::from_le_bytes([p[17], p[18]])
        )),
        1 => Some(String::from_utf8_lossy(cstr(&p[1..])).into_owned()),
        _ => None,
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

/// Applies what sysdig learns from an event to the thread and fd tables.
pub fn update_state(st: &mut State, tid: i64, ty: u16, params: &[&[u8]], info: &EventInfo) {
    let name = info.name;
    let exit = ty % 2 == 1;
    if !exit {
        let mut p = Pending::default();
        if let Some(v) = named(info, params, "fd") {
            p.fd = int(v);
        }
        if let Some(v) = named(info, params, "domain") {
            p.domain = uint(v) as u32;
        }
        if let Some(v) = named(info, params, "type") {
            p.sock_type = uint(v) as u32;
        }
        if let Some(v) = named(info, params, "name") {
            p.path = cstr(v).to_vec();
        }
        if let Some(v) = named(info, params, "flags") {
            p.flags = uint(v) as u32;
        }
        if let Some(v) = named(info, params, "dirfd") {
            p.dirfd = int(v);
        }
        if let Some(v) = named(info, params, "cmd") {
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
                        comm: format!("container:{id}"),
                        ..Thread::default()
                    },
                );
            }
        }
        // Scheduler and other non-syscall events interleave between a
        // syscall's enter and exit; they must not replace its memory.
        if !matches!(
            name,
            "switch"
                | "procexit"
                | "signaldeliver"
                | "procinfo"
                | "page_fault"
                | "container"
                | "drop"
                | "scapevent"
                | "cpu_hotplug"
                | "notification"
                | "infra"
                | "k8s"
                | "mesos"
                | "tracer"
        ) {
            st.pending.insert(tid, p);
        }
        return;
    }
    let pend = st.pending.remove(&tid).unwrap_or_default();
    match name {
        "open" | "openat" | "creat" | "openat2" | "open_by_handle_at" => {
            let fd = params.first().map(|v| int(v)).unwrap_or(-1);
            if fd < 0 {
                return;
            }
            let (path, flags, dirfd) = match named(info, params, "name") {
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
                            .map(|f| f.name.clone())
                            .unwrap_or_default()
                    }
                } else {
                    cwd_of(st, tid)
                };
                resolve(&base, &path)
            };
            let tag = if flags & (1 << 10) != 0 { "d" } else { "f" };
            st.fd_table(tid).insert(
                fd,
                FdInfo {
                    tag: tag.to_string(),
                    name: full,
                    cloexec: flags & (1 << 12) != 0,
                },
            );
        }
        "socket" => {
            let fd = params.first().map(|v| int(v)).unwrap_or(-1);
            if fd >= 0 {
                let tag = match pend.domain {
                    2 => "4",
                    10 => "6",
                    1 => "u",
                    16 => "n",
                    _ => "o",
                };
                st.fd_table(tid).insert(
                    fd,
                    FdInfo {
                        tag: tag.to_string(),
                        name: String::new(),
                        cloexec: false,
                    },
                );
                st.sock_types.insert((st.pid_of(tid), fd), pend.sock_type);
            }
        }
        "connect" => {
            let res = params.first().map(|v| int(v)).unwrap_or(-1);
            if res < 0 && res != -115 {
                return;
            }
            let Some(tp) = named(info, params, "tuple") else {
                return;
            };
            let key = (st.pid_of(tid), pend.fd);
            let stype = st.sock_types.get(&key).copied().unwrap_or(1);
            let Some(f) = st.fd_table(tid).get_mut(&pend.fd) else {
                return;
            };
            if let Some(p) = unix_path(tp) {
                f.name = p;
            } else if let Some(s) = tuple_str(tp) {
                f.tag = l4_tag(&f.tag[..1], stype);
                f.name = s;
            }
        }
        "bind" => {
            let res = params.first().map(|v| int(v)).unwrap_or(-1);
            if res < 0 {
                return;
            }
            let Some(a) = named(info, params, "addr") else {
                return;
            };
            let key = (st.pid_of(tid), pend.fd);
            let stype = st.sock_types.get(&key).copied().unwrap_or(1);
            if let Some(f) = st.fd_table(tid).get_mut(&pend.fd) {
                if let Some(s) = sockaddr_str(a) {
                    if a.first() != Some(&1) {
                        f.tag = l4_tag(&f.tag[..1], stype);
                    }
                    f.name = s;
                }
            }
        }
        "accept" => {
            let fd = params.first().map(|v| int(v)).unwrap_or(-1);
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
            st.fd_table(tid).insert(
                fd,
                FdInfo {
                    tag,
                    name,
                    cloexec: false,
                },
            );
        }
        "pipe" => {
            for key in ["fd1", "fd2"] {
                if let Some(v) = named(info, params, key) {
                    let fd = int(v);
                    if fd >= 0 {
                        st.fd_table(tid).insert(
                            fd,
                            FdInfo {
                                tag: "p".into(),
                                ..FdInfo::default()
                            },
                        );
                    }
                }
            }
        }
        "eventfd" | "signalfd" | "timerfd_create" | "inotify_init" => {
            let fd = params.first().map(|v| int(v)).unwrap_or(-1);
            if fd >= 0 {
                let tag = match name {
                    "eventfd" => "e",
                    "signalfd" => "s",
                    "timerfd_create" => "t",
                    _ => "i",
                };
                st.fd_table(tid).insert(
                    fd,
                    FdInfo {
                        tag: tag.into(),
                        ..FdInfo::default()
                    },
                );
            }
        }
        "dup" | "fcntl" => {
            let res = params.first().map(|v| int(v)).unwrap_or(-1);
            if res < 0 || res == pend.fd {
                return;
            }
            if name == "fcntl" && !matches!(pend.flags, 1 | 26) {
                // Only F_DUPFD / F_DUPFD_CLOEXEC create descriptors (the
                // enter's `cmd` is kept in `Pending::flags`).
                return;
            }
            if let Some(f) = st.fd(tid, pend.fd).cloned() {
                st.fd_table(tid).insert(res, f);
            }
        }
        "close" => {
            let res = params.first().map(|v| int(v)).unwrap_or(-1);
            if res >= 0 {
                st.fd_table(tid).remove(&pend.fd);
            }
        }
        "chdir" => {
            let res = params.first().map(|v| int(v)).unwrap_or(-1);
            if res >= 0 {
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
        }
        "clone" | "fork" | "vfork" | "clone3" => clone_exit(st, tid, params, info),
        "execve" | "execveat" => {
            let res = params.first().map(|v| int(v)).unwrap_or(-1);
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
            t.comm = comm;
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
        _ => {}
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
            comm,
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

/// How many bytes of a buffer sysdig shows before cutting it with `...`.
const BUF_SHOWN: usize = 77;

fn push_bytebuf(out: &mut String, b: &[u8]) {
    let shown = &b[..b.len().min(BUF_SHOWN)];
    for &c in shown {
        if (0x20..0x7f).contains(&c) {
            out.push(c as char);
        } else {
            out.push('.');
        }
    }
    if b.len() > BUF_SHOWN {
        out.push_str("...");
    }
}

/// Appends `evt.info` for one event: `name=value` pairs separated by one
/// space, a value's resolution in parentheses (`3(<f>/etc/passwd)`).
pub fn info(ev: &ScapEvent<'_>, out: &mut String) {
    let Some(info) = ev.info else { return };
    if ev.ty == event_table::GENERIC_E || ev.ty == event_table::GENERIC_X {
        return;
    }
    let st = ev.state;
    for (i, p) in ev.params.iter().enumerate() {
        let Some(pi) = info.params.get(i) else { break };
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(pi.name);
        out.push('=');
        let p: &[u8] = p;
        match pi.ty {
            PType::Errno => {
                let v = int(p);
                let _ = write!(out, "{v}");
                if v < 0 {
                    if let Some(n) = names::errno_name(-v) {
                        let _ = write!(out, "({n})");
                    }
                }
            }
            PType::Fd => {
                let v = int(p);
                let _ = write!(out, "{v}");
                if v == AT_FDCWD {
                    out.push_str("(AT_FDCWD)");
                } else if v < 0 {
                    if let Some(n) = names::errno_name(-v) {
                        let _ = write!(out, "({n})");
                    }
                } else if let Some(f) = st.fd(ev.tid, v) {
                    let _ = write!(out, "(<{}>{})", f.tag, f.name);
                }
            }
            PType::Pid => {
                let v = int(p);
                let _ = write!(out, "{v}");
                if let Some(c) = st.comm(v) {
                    let _ = write!(out, "({c})");
                }
            }
            PType::FsPath | PType::FsRelPath(_) => {
                let s = String::from_utf8_lossy(cstr(p));
                out.push_str(&s);
                if !s.is_empty() && !s.starts_with('/') {
                    let base = match pi.ty {
                        PType::FsRelPath(d) => {
                            let dirfd = ev
                                .params
                                .get(d as usize)
                                .map(|v| int(v))
                                .unwrap_or(AT_FDCWD);
                            if dirfd == AT_FDCWD {
                                cwd_of(st, ev.tid)
                            } else {
                                st.fd(ev.tid, dirfd)
                                    .map(|f| f.name.clone())
                                    .unwrap_or_default()
                            }
                        }
                        _ => cwd_of(st, ev.tid),
                    };
                    let _ = write!(out, "({})", resolve(&base, &s));
                }
            }
            PType::CharBuf => push_lossy(out, cstr(p)),
            PType::ByteBuf => push_bytebuf(out, p),
            PType::Flags8 | PType::Flags16 | PType::Flags32 | PType::Mode => {
                let v = uint(p) as u32;
                if pi.ty == PType::Mode {
                    let _ = write!(out, "{}", octal(v));
                } else {
                    let _ = write!(out, "{v}");
                }
                if let Some(t) = pi.table.and_then(names::flag_table) {
                    let mut s = String::new();
                    names::render_flags(t, v, &mut s);
                    if !s.is_empty() {
                        let _ = write!(out, "({s})");
                    }
                }
            }
            PType::SigType => {
                let v = uint(p);
                let _ = write!(out, "{v}");
                if let Some(n) = names::signal_name(v) {
                    let _ = write!(out, "({n})");
                }
            }
            PType::RelTime => {
                let v = uint(p);
                let secs = v as f64 / 1e9;
                let _ = write!(out, "{v}({secs}s)");
            }
            PType::SockTuple => match tuple_str(p) {
                Some(s) => out.push_str(&s),
                None => out.push_str("NULL"),
            },
            PType::SockAddr => match sockaddr_str(p) {
                Some(s) => out.push_str(&s),
                None => out.push_str("NULL"),
            },
            PType::FdList => {
                let n = if p.len() >= 2 {
                    u16::from_le_bytes([p[0], p[1]]) as usize
                } else {
                    0
                };
                let mut first = true;
                for k in 0..n {
                    let o = 2 + k * 10;
                    let Some(e) = p.get(o..o + 10) else { break };
                    let fd = int(&e[..8]);
                    let fl = i16::from_le_bytes([e[8], e[9]]);
                    if !first {
                        out.push(' ');
                    }
                    first = false;
                    let tag = st
                        .fd(ev.tid, fd)
                        .map(|f| f.tag.chars().next().unwrap_or('?'))
                        .unwrap_or('?');
                    let _ = write!(out, "{fd}:{tag}{fl}");
                }
            }
            PType::Uid | PType::Gid => {
                let v = uint(p) as u32;
                let _ = write!(out, "{v}");
                let names = if pi.ty == PType::Uid {
                    &st.users
                } else {
                    &st.groups
                };
                if let Some(n) = names.get(&v) {
                    let _ = write!(out, "({n})");
                }
            }
            PType::U8 | PType::U16 | PType::U32 | PType::U64 | PType::SigSet => {
                let v = uint(p);
                match pi.fmt {
                    PFmt::Hex => {
                        let _ = write!(out, "{v:X}");
                    }
                    PFmt::Oct => out.push_str(&octal(v as u32)),
                    _ => {
                        let _ = write!(out, "{v}");
                    }
                }
            }
            PType::I8 | PType::I16 | PType::I32 | PType::I64 | PType::AbsTime => {
                let v = int(p);
                match pi.fmt {
                    PFmt::Hex => {
                        let _ = write!(out, "{v:X}");
                    }
                    _ => {
                        let _ = write!(out, "{v}");
                    }
                }
            }
            PType::Dyn => {
                // Tagged union: one index byte, then the value.
                if p.len() > 1 {
                    let v = &p[1..];
                    if matches!(v.len(), 1 | 2 | 4 | 8) {
                        let _ = write!(out, "{}", int(v));
                    } else {
                        push_bytebuf(out, v);
                    }
                }
            }
            PType::SyscallId | PType::CharBufArray | PType::CharBufPairArray => {
                push_bytebuf(out, p);
            }
        }
    }
}

fn octal(v: u32) -> String {
    if v == 0 {
        "0".into()
    } else {
        format!("0{v:o}")
    }
}

/// One `sysdig -r` default line (with its newline):
/// `num HH:MM:SS.nnnnnnnnn cpu proc (tid) dir type info`.
pub fn sysdig_line(ev: &ScapEvent<'_>, info: &str, line: &mut String) {
    let day = ev.ts_ns % 86_400_000_000_000;
    let secs = day / 1_000_000_000;
    let _ = write!(
        line,
        "{} {:02}:{:02}:{:02}.{:09} {} {} ({}) {} {} ",
        ev.num,
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        day % 1_000_000_000,
        ev.cpu,
        ev.process(),
        ev.tid,
        ev.dir.as_char(),
        ev.name
    );
    if !info.is_empty() {
        line.push_str(info);
        line.push(' ');
    }
    line.push('\n');
}
