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
//! | any other exit                 | `res=<n>`                                     |
//! | any other enter                | (empty)                                       |

use std::collections::HashMap;
use std::fmt::Write as _;

use super::capture::RawEvent;
use super::syscalls;
use crate::event::{Direction, Event};

/// Turns [`RawEvent`]s into [`Event`]s, reusing its buffers.
#[derive(Default)]
pub struct Formatter {
    process: String,
    info: String,
    syscall: String,
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

/// Text safe for one whitespace-separated field: the .sc line format has
/// no quoting, so whitespace inside a name would shift every later field.
fn push_field(out: &mut String, bytes: &[u8], replace_space: bool) {
    for ch in String::from_utf8_lossy(bytes).chars() {
        match ch {
            '\n' | '\r' | '\t' => out.push('?'),
            ' ' if replace_space => out.push('_'),
            c => out.push(c),
        }
    }
}

fn push_path(out: &mut String, bytes: &[u8]) {
    // Paths keep their spaces, as sysdig prints them.
    push_field(out, bytes, false);
}

fn write_open_flags(out: &mut String, flags: u64) {
    let _ = write!(out, "flags={flags}(");
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
    let _ = write!(out, "fd={res}");
    if res < 0 {
        if let Some((_, n)) = ERRNO_NAMES.iter().find(|(e, _)| *e == -res) {
            let _ = write!(out, "({n})");
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
        push_field(&mut self.process, raw.comm, true);
        let name = syscalls::name(raw.nr);
        self.syscall.clear();
        match name {
            Some(n) => self.syscall.push_str(n),
            None => {
                let _ = write!(self.syscall, "syscall_{}", raw.nr);
            }
        }
        self.info.clear();
        let path = raw.path.unwrap_or(b"");
        let out = &mut self.info;
        let n = name.unwrap_or("");
        match (raw.dir, n) {
            (Direction::Enter, "execve" | "execveat") => {
                out.push_str("filename=");
                push_path(out, path);
                let mut p = String::new();
                push_path(&mut p, path);
                self.exec_paths.insert(raw.tid, p);
            }
            (Direction::Enter, _) => {}
            (Direction::Exit, "open" | "openat" | "openat2") => {
                write_fd(out, raw.ret);
                if raw.ret >= 0 {
                    out.push_str("(<f>");
                    push_path(out, path);
                    out.push(')');
                }
                out.push_str(" name=");
                push_path(out, path);
                out.push(' ');
                write_open_flags(out, raw.flags);
            }
            (Direction::Exit, "stat" | "lstat" | "newfstatat" | "statx") => {
                let _ = write!(out, "res={} path=", raw.ret);
                push_path(out, path);
            }
            (Direction::Exit, "execve" | "execveat") => {
                let _ = write!(out, "res={} exe=", raw.ret);
                // After a successful exec the thread id may have changed
                // (a non-leader thread exec'ing becomes the leader).
                let p = self
                    .exec_paths
                    .remove(&raw.tid)
                    .or_else(|| self.exec_paths.remove(&raw.pid));
                match p {
                    Some(p) => out.push_str(&p),
                    None => push_field(out, raw.comm, true),
                }
            }
            (Direction::Exit, "clone" | "clone3" | "fork" | "vfork") => {
                let _ = write!(out, "res={} exe=", raw.ret);
                push_field(out, raw.comm, true);
            }
            (Direction::Exit, _) => {
                let _ = write!(out, "res={}", raw.ret);
            }
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
        }
    }
}

/// Appends one LID-DS 2021 `.sc` line for `ev`:
/// `ts_ns uid pid proc tid syscall dir args...`, with the same trailing
/// space after every argument (and after `dir` when there are none).
pub fn write_sc_line(out: &mut Vec<u8>, ev: &Event<'_>, uid: u32) {
    use std::io::Write as _;
    let _ = write!(
        out,
        "{} {} {} {} {} {} {} ",
        ev.ts_ns,
        uid,
        ev.pid,
        ev.process,
        ev.tid,
        ev.syscall,
        ev.dir.as_char()
    );
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
            cgroup: 1,
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
        assert_eq!(ev.param("name"), Some("/etc/hostname"));
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
