//! Raw kernel events to [`Event`]s whose `info` reads like sysdig's
//! `evt.info` in LID-DS recordings, so both chids modes find the arguments
//! where they expect them: compat by token position, modern by name.
//!
//! | event                          | info                                          |
//! |--------------------------------|-----------------------------------------------|
//! | open/openat/openat2 exit       | `fd=<res>(<f>PATH) name=PATH flags=<n>(O_..)` |
//! | stat/lstat/newfstatat/statx exit | `res=<n> path=PATH`                         |
//! | execve/execveat enter          | `filename=PATH`                               |
//! | execve/execveat exit           | `res=<n> exe=PATH`                            |
//! | clone/clone3/fork/vfork exit   | `res=<n> exe=COMM`                            |
//! | connect/bind/sendto/accept(4)/recvfrom exit | `res=<n> addr=ENDPOINT` (when named) |
//! | io_uring_openat(2) (enter)     | `name=PATH flags=<n>(O_..)`                   |
//! | other io_uring ops naming a path (enter) | `path=PATH`                         |
//! | io_uring_connect/bind (enter)  | `addr=ENDPOINT`                               |
//! | any other exit                 | `res=<n>`                                     |
//! | any other enter                | (empty)                                       |

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::capture::RawEvent;
use super::syscalls;
// Names and paths are written in chids' escaped form: the .sc line format
// has no quoting, and the escaped form is one token that reads back as the
// same value.
use chids_core::escape::push_escaped;
use chids_core::event::{Direction, Endpoint, Event, Params};

/// Turns [`RawEvent`]s into [`Event`]s, reusing its buffers.
#[derive(Default)]
pub struct Formatter {
    process: String,
    info: String,
    syscall: String,
    /// The typed path parameter of the current event (escaped).
    path: String,
    /// A Unix socket path of the current event (escaped).
    unix: String,
    /// execve path per thread, from its enter to its exit.
    exec_paths: HashMap<u32, String>,
}

/// Kernel (x86-64) open flags and their names, as sysdig lists them.
const OPEN_FLAGS: &[(u64, &str)] = &[
    (0o1, "O_WRONLY"),
    (0o2, "O_RDWR"),
    (0o100, "O_CREAT"),
    (0o200, "O_EXCL"),
    (0o400, "O_NOCTTY"),
    (0o1000, "O_TRUNC"),
    (0o2000, "O_APPEND"),
    (0o4000, "O_NONBLOCK"),
    (0o10000, "O_DSYNC"),
    (0o40000, "O_DIRECT"),
    (0o100000, "O_LARGEFILE"),
    (0o200000, "O_DIRECTORY"),
    (0o400000, "O_NOFOLLOW"),
    (0o1000000, "O_NOATIME"),
    (0o2000000, "O_CLOEXEC"),
    (0o10000000, "O_PATH"),
];

const ERRNO_NAMES: &[(i64, &str)] = &[
    (1, "EPERM"),
    (2, "ENOENT"),
    (6, "ENXIO"),
    (11, "EAGAIN"),
    (13, "EACCES"),
    (17, "EEXIST"),
    (20, "ENOTDIR"),
    (21, "EISDIR"),
    (22, "EINVAL"),
    (24, "EMFILE"),
    (36, "ENAMETOOLONG"),
    (40, "ELOOP"),
];

/// A kernel `struct sockaddr` (x86-64 layout): the family, then for inet
/// the port (big-endian) and address, for Unix the path (abstract names,
/// which start with a NUL, as `@name`).
pub(crate) fn parse_sockaddr<'b>(b: &[u8], unix: &'b mut String) -> Option<Endpoint<'b>> {
    let family = u16::from_ne_bytes([*b.first()?, *b.get(1)?]);
    match family {
        2 if b.len() >= 8 => {
            let port = u16::from_be_bytes([b[2], b[3]]);
            let ip = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
            Some(Endpoint::Ip(SocketAddr::new(IpAddr::V4(ip), port)))
        }
        10 if b.len() >= 24 => {
            let port = u16::from_be_bytes([b[2], b[3]]);
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[8..24]);
            let ip = Ipv6Addr::from(a);
            let ip = match ip.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(ip),
            };
            Some(Endpoint::Ip(SocketAddr::new(ip, port)))
        }
        1 => {
            unix.clear();
            let path = &b[2..];
            match path.first() {
                Some(0) => {
                    unix.push('@');
                    let name = &path[1..];
                    let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
                    push_escaped(unix, &name[..end]);
                }
                _ => {
                    let end = path.iter().position(|&c| c == 0).unwrap_or(path.len());
                    push_escaped(unix, &path[..end]);
                }
            }
            Some(Endpoint::Unix(unix))
        }
        _ => None,
    }
}

fn write_endpoint(out: &mut String, endpoint: &Endpoint<'_>) {
    // After the other arguments (an io_uring submission has none).
    if !out.is_empty() {
        out.push(' ');
    }
    let _ = match endpoint {
        Endpoint::Ip(a) => write!(out, "addr={a}"),
        Endpoint::Unix(p) => write!(out, "addr={p}"),
    };
}

/// Appends a decimal integer. (`write!` goes through `core::fmt`, which
/// was most of `record`'s own CPU time per event.)
fn push_int(out: &mut String, v: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(v));
}

fn write_open_flags(out: &mut String, flags: u64) {
    out.push_str("flags=");
    push_int(out, flags);
    out.push('(');
    let mut first = true;
    let mut sep = |out: &mut String| {
        if !first {
            out.push('|');
        }
        first = false;
    };
    if flags & 0o3 == 0 {
        sep(out);
        out.push_str("O_RDONLY");
    }
    for (bit, name) in OPEN_FLAGS {
        if flags & bit == *bit {
            sep(out);
            out.push_str(name);
        }
    }
    out.push(')');
}

fn write_fd(out: &mut String, res: i64) {
    out.push_str("fd=");
    push_int(out, res);
    if res < 0 {
        if let Some((_, n)) = ERRNO_NAMES.iter().find(|(e, _)| *e == -res) {
            out.push('(');
            out.push_str(n);
            out.push(')');
        }
    }
}

impl Formatter {
    pub fn new() -> Formatter {
        Formatter::default()
    }

    /// The event, borrowing this formatter's buffers until the next call.
    pub fn format<'s>(&'s mut self, raw: &RawEvent<'_>) -> Event<'s> {
        self.process.clear();
        push_escaped(&mut self.process, raw.comm);
        let name = syscalls::name(raw.nr);
        self.syscall.clear();
        match name {
            Some(n) => self.syscall.push_str(n),
            None => {
                let _ = write!(self.syscall, "syscall_{}", raw.nr);
            }
        }
        self.info.clear();
        self.path.clear();
        let mut has_path = false;
        if let Some(p) = raw.path {
            push_escaped(&mut self.path, p);
        }
        let path = self.path.as_str();
        let out = &mut self.info;
        let n = name.unwrap_or("");
        match (raw.dir, n) {
            (Direction::Enter, "execve" | "execveat") => {
                out.push_str("filename=");
                out.push_str(path);
                self.exec_paths.insert(raw.tid, path.to_string());
                has_path = true;
            }
            // io_uring operations (submissions: enter only), see
            // bpf/iouring.bpf.h.
            (Direction::Enter, "io_uring_openat" | "io_uring_openat2") if raw.path.is_some() => {
                out.push_str("name=");
                out.push_str(path);
                out.push(' ');
                write_open_flags(out, raw.flags);
                has_path = true;
            }
            (Direction::Enter, n) if raw.path.is_some() && n.starts_with("io_uring_") => {
                out.push_str("path=");
                out.push_str(path);
                has_path = true;
            }
            (Direction::Enter, _) => {}
            (Direction::Exit, "open" | "openat" | "openat2") => {
                write_fd(out, raw.ret);
                if raw.ret >= 0 {
                    out.push_str("(<f>");
                    out.push_str(path);
                    out.push(')');
                }
                out.push_str(" name=");
                out.push_str(path);
                out.push(' ');
                write_open_flags(out, raw.flags);
                has_path = true;
            }
            (Direction::Exit, "stat" | "lstat" | "newfstatat" | "statx") => {
                out.push_str("res=");
                push_int(out, raw.ret);
                out.push_str(" path=");
                out.push_str(path);
                has_path = true;
            }
            (Direction::Exit, "execve" | "execveat") => {
                out.push_str("res=");
                push_int(out, raw.ret);
                out.push_str(" exe=");
                // After a successful exec the thread id may have changed
                // (a non-leader thread exec'ing becomes the leader).
                let p = self
                    .exec_paths
                    .remove(&raw.tid)
                    .or_else(|| self.exec_paths.remove(&raw.pid));
                match p {
                    Some(p) => out.push_str(&p),
                    None => out.push_str(&self.process),
                }
            }
            (Direction::Exit, "clone" | "clone3" | "fork" | "vfork") => {
                out.push_str("res=");
                push_int(out, raw.ret);
                out.push_str(" exe=");
                out.push_str(&self.process);
                self.path.clear();
                self.path.push_str(&self.process);
                has_path = true;
            }
            (Direction::Exit, _) => {
                out.push_str("res=");
                push_int(out, raw.ret);
            }
        }
        let endpoint = raw.sockaddr.and_then(|b| parse_sockaddr(b, &mut self.unix));
        if let Some(e) = &endpoint {
            write_endpoint(&mut self.info, e);
        }
        // Threads that exec'd and never came back (killed) must not pile up.
        if self.exec_paths.len() > 4096 {
            self.exec_paths.clear();
        }
        Event {
            ts_ns: raw.ts_ns,
            tid: raw.tid as i64,
            pid: raw.pid as i64,
            process: &self.process,
            dir: raw.dir,
            syscall: &self.syscall,
            info: &self.info,
            params: Params {
                path: has_path.then_some(self.path.as_str()),
                endpoint,
                ret: (raw.dir == Direction::Exit).then_some(raw.ret),
            },
        }
    }
}

/// Appends one LID-DS 2021 `.sc` line for `ev`:
/// `ts_ns uid pid proc tid syscall dir args...`, with the same trailing
/// space after every argument (and after `dir` when there are none).
pub fn write_sc_line(out: &mut Vec<u8>, ev: &Event<'_>, uid: u32) {
    let mut int = itoa::Buffer::new();
    out.extend_from_slice(int.format(ev.ts_ns).as_bytes());
    out.push(b' ');
    out.extend_from_slice(int.format(uid).as_bytes());
    out.push(b' ');
    out.extend_from_slice(int.format(ev.pid).as_bytes());
    out.push(b' ');
    out.extend_from_slice(ev.process.as_bytes());
    out.push(b' ');
    out.extend_from_slice(int.format(ev.tid).as_bytes());
    out.push(b' ');
    out.extend_from_slice(ev.syscall.as_bytes());
    out.push(b' ');
    out.push(ev.dir.as_char() as u8);
    out.push(b' ');
    for tok in ev.info.split(' ').filter(|t| !t.is_empty()) {
        out.extend_from_slice(tok.as_bytes());
        out.push(b' ');
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'a>(nr: i32, dir: Direction, ret: i64, path: Option<&'a [u8]>) -> RawEvent<'a> {
        RawEvent {
            ts_ns: 1_631_078_867_380_457_267,
            watch: 1,
            ret,
            flags: 0o2000000,
            pid: 10,
            tid: 11,
            uid: 0,
            nr,
            dir,
            comm: b"cat",
            path,
            path_fault: false,
            sockaddr: None,
        }
    }

    #[test]
    fn open_exit_has_name_at_index_1() {
        let mut f = Formatter::new();
        let ev = f.format(&raw(257, Direction::Exit, 3, Some(b"/etc/hostname")));
        assert_eq!(ev.syscall, "openat");
        assert_eq!(
            ev.info,
            "fd=3(<f>/etc/hostname) name=/etc/hostname flags=524288(O_RDONLY|O_CLOEXEC)"
        );
        assert_eq!(ev.tokens().nth(1), Some("name=/etc/hostname"));
        assert_eq!(ev.params.path, Some("/etc/hostname"));
        assert_eq!(ev.params.ret, Some(3));
        let ev = f.format(&raw(2, Direction::Exit, -2, Some(b"/nope")));
        assert!(ev.info.starts_with("fd=-2(ENOENT) name=/nope "));
    }

    #[test]
    fn stat_exec_clone_and_others() {
        let mut f = Formatter::new();
        let ev = f.format(&raw(4, Direction::Exit, 0, Some(b"/var/www/x.php")));
        assert_eq!(ev.info, "res=0 path=/var/www/x.php");
        let ev = f.format(&raw(59, Direction::Enter, 0, Some(b"/bin/cat")));
        assert_eq!(ev.info, "filename=/bin/cat");
        let ev = f.format(&raw(59, Direction::Exit, 0, None));
        assert_eq!(ev.info, "res=0 exe=/bin/cat");
        let ev = f.format(&raw(56, Direction::Exit, 23, None));
        assert_eq!(ev.info, "res=23 exe=cat");
        let ev = f.format(&raw(0, Direction::Exit, 512, None));
        assert_eq!((ev.syscall, ev.info), ("read", "res=512"));
        let ev = f.format(&raw(0, Direction::Enter, 0, None));
        assert_eq!(ev.info, "");
    }

    #[test]
    fn hostile_names_read_back_as_the_same_typed_values() {
        // A path with a space and `name=` in it, and a process name with a
        // form feed: once written to a .sc line and read back, the model
        // must see exactly the values live capture saw.
        let mut f = Formatter::new();
        let mut r = raw(
            257,
            Direction::Exit,
            3,
            Some(b"/tmp/seen/ name=/x /../../../../etc/shadow"),
        );
        r.comm = b"evil\x0cname";
        let ev = f.format(&r);
        assert_eq!(
            ev.params.path,
            Some("/tmp/seen/\\x20name=/x\\x20/../../../../etc/shadow")
        );
        let mut line = Vec::new();
        write_sc_line(&mut line, &ev, 0);
        let line = String::from_utf8(line).unwrap();
        let back = chids_core::source::lidds::parse_sc_line(&line).expect("line reads back");
        assert_eq!(back.process, ev.process);
        assert_eq!(back.params, ev.params);
        assert_eq!(back.info, ev.info);
    }

    #[test]
    fn a_space_in_a_path_cannot_hide_it_from_the_model() {
        use chids_core::features::{FeatureStream, Settings, TrainingElements};
        use chids_core::mode::{normalize_path, Mode};
        let mut baseline = TrainingElements::default();
        baseline.seen_syscalls.insert("open".into());
        baseline.seen_args.insert(normalize_path("/tmp/seen/"));
        baseline.max_freq = 10;
        let settings = Settings::for_mode(Mode::Modern, 1_000_000_000);
        let mut stream = FeatureStream::new(settings, Some(&baseline), true);
        let mut f = Formatter::new();
        let ev = f.format(&raw(
            257,
            Direction::Exit,
            3,
            Some(b"/tmp/seen/ /../../../../etc/shadow"),
        ));
        let mut windows = Vec::new();
        stream.push(&ev, &mut |w| windows.push(w)).unwrap();
        stream.finish(&mut |w| windows.push(w));
        let unseen: Vec<_> = windows.iter().flat_map(|w| &w.unseen_args).collect();
        assert_eq!(unseen.len(), 1, "{windows:?}");
        assert!(unseen[0].arg.contains("\\x20"), "{:?}", unseen[0]);
    }

    #[test]
    fn socket_addresses_become_endpoints_and_read_back() {
        let mut f = Formatter::new();
        // struct sockaddr_in for 10.0.0.9:4444.
        let mut sin = vec![2u8, 0, 0x11, 0x5c, 10, 0, 0, 9];
        sin.extend_from_slice(&[0; 8]);
        let mut r = raw(42, Direction::Exit, 0, None);
        r.sockaddr = Some(&sin);
        let ev = f.format(&r);
        assert_eq!(ev.syscall, "connect");
        assert_eq!(ev.info, "res=0 addr=10.0.0.9:4444");
        assert_eq!(
            ev.params.endpoint,
            Some(Endpoint::Ip("10.0.0.9:4444".parse().unwrap()))
        );
        let mut line = Vec::new();
        write_sc_line(&mut line, &ev, 0);
        let line = String::from_utf8(line).unwrap();
        let back = chids_core::source::lidds::parse_sc_line(&line).unwrap();
        assert_eq!(back.params, ev.params);
        // An abstract Unix socket with a space in its name.
        let sun = b"\x01\x00\x00my sock\x00";
        let mut r = raw(49, Direction::Exit, 0, None);
        r.sockaddr = Some(sun);
        let ev = f.format(&r);
        assert_eq!(ev.params.endpoint, Some(Endpoint::Unix("@my\\x20sock")));
        let mut line = Vec::new();
        write_sc_line(&mut line, &ev, 0);
        let line = String::from_utf8(line).unwrap();
        let back = chids_core::source::lidds::parse_sc_line(&line).unwrap();
        assert_eq!(back.params, ev.params);
    }

    #[test]
    fn io_uring_operations_carry_their_syscalls_arguments_and_read_back() {
        use crate::syscalls::IOURING_BASE;
        let mut f = Formatter::new();
        let mut r = raw(IOURING_BASE + 18, Direction::Enter, 0, Some(b"/etc/shadow"));
        r.flags = 0;
        let ev = f.format(&r);
        assert_eq!(ev.syscall, "io_uring_openat");
        assert_eq!(ev.info, "name=/etc/shadow flags=0(O_RDONLY)");
        let mut sin = vec![2u8, 0, 0x11, 0x5c, 127, 0, 0, 1];
        sin.extend_from_slice(&[0; 8]);
        let mut c = raw(IOURING_BASE + 16, Direction::Enter, 0, None);
        c.sockaddr = Some(&sin);
        let unlink = raw(IOURING_BASE + 36, Direction::Enter, 0, Some(b"/tmp/x"));
        let read = raw(IOURING_BASE + 22, Direction::Enter, 0, None);
        for (r, info) in [
            (&r, "name=/etc/shadow flags=0(O_RDONLY)"),
            (&c, "addr=127.0.0.1:4444"),
            (&unlink, "path=/tmp/x"),
            (&read, ""),
        ] {
            let ev = f.format(r);
            assert_eq!(ev.info, info);
            let mut line = Vec::new();
            write_sc_line(&mut line, &ev, 0);
            let line = String::from_utf8(line).unwrap();
            let back = chids_core::source::lidds::parse_sc_line(&line).unwrap();
            assert_eq!(back.params, ev.params, "{line}");
            assert_eq!(back.syscall, ev.syscall);
        }
    }

    #[test]
    fn sc_lines_match_lidds_shape() {
        let mut f = Formatter::new();
        let mut out = Vec::new();
        let ev = f.format(&raw(
            4,
            Direction::Exit,
            0,
            Some(b"/var/www/private/upload.php"),
        ));
        write_sc_line(&mut out, &ev, 33);
        let ev = f.format(&raw(61, Direction::Enter, 0, None));
        write_sc_line(&mut out, &ev, 0);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "1631078867380457267 33 10 cat 11 stat < res=0 path=/var/www/private/upload.php \n\
             1631078867380457267 0 10 cat 11 wait4 > \n"
        );
    }
}
