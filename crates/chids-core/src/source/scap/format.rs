//! Rendering events like `sysdig -r` (`%evt.info` and the default line), and
//! the state updates sysdig applies before it prints an event (so an `open`
//! exit already shows its new fd, an `execve` exit the new process name).

use std::fmt::Write as _;

use super::event_table::{self, PFmt, PType, ParamInfo};
use super::names;
use super::{ScapEvent, State};

pub(super) const AT_FDCWD: i64 = -100;

pub(crate) fn ipv4(b: &[u8]) -> String {
    format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
}

pub(crate) fn ipv6(b: &[u8]) -> String {
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
pub(crate) fn fd_type_char(ty: u8) -> &'static str {
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

pub(super) fn uint(p: &[u8]) -> u64 {
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

/// What a relative path parameter of type `ty` is relative to: the
/// thread's working directory, or the directory fd's name (`None` when
/// that fd is unknown).
pub(super) fn relative_base(ev: &ScapEvent<'_>, ty: PType) -> Option<String> {
    match ty {
        PType::FsRelPath(d) => {
            let dirfd = ev
                .params
                .get(d as usize)
                .map(|v| int(v))
                .unwrap_or(AT_FDCWD);
            if dirfd == AT_FDCWD {
                Some(cwd_of(ev.state, ev.tid))
            } else {
                ev.state.fd(ev.tid, dirfd).map(|f| f.name.to_string())
            }
        }
        PType::FsPath => Some(cwd_of(ev.state, ev.tid)),
        _ => None,
    }
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

pub(super) fn tuple_str(p: &[u8]) -> Option<String> {
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

pub(super) fn unix_path(p: &[u8]) -> Option<String> {
    if p.first() == Some(&1) && p.len() >= 17 {
        Some(String::from_utf8_lossy(cstr(&p[17..])).into_owned())
    } else {
        None
    }
}

pub(super) fn sockaddr_str(p: &[u8]) -> Option<String> {
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
    info_tokens(ev, out, usize::MAX)
}

/// The start of `evt.info`: parameters in order until `out` holds at
/// least `tokens` whitespace-separated tokens. They are the first tokens
/// of the whole text, each complete: the next parameter would start with
/// a space.
pub fn info_tokens(ev: &ScapEvent<'_>, out: &mut String, tokens: usize) {
    let Some(info) = ev.info.filter(|_| tokens > 0) else {
        return;
    };
    if ev.ty == event_table::GENERIC_E || ev.ty == event_table::GENERIC_X {
        return;
    }
    for (i, p) in ev.params.iter().enumerate() {
        let Some(pi) = info.params.get(i) else { break };
        if tokens != usize::MAX && out.split_ascii_whitespace().nth(tokens - 1).is_some() {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(pi.name);
        out.push('=');
        push_param(out, ev, pi, p);
    }
}

/// One parameter's value as `evt.info` prints it: the number or text, and
/// for many types what it names in parentheses (the fd's file, the pid's
/// command, the errno's or flags' names, the path resolved).
fn push_param(out: &mut String, ev: &ScapEvent<'_>, pi: &ParamInfo, p: &[u8]) {
    match pi.ty {
        // An address returned in an errno slot (mmap) prints in hex.
        PType::Errno if pi.fmt == PFmt::Hex && int(p) >= 0 => {
            let _ = write!(out, "{:X}", uint(p));
        }
        PType::Errno => {
            let v = int(p);
            let _ = write!(out, "{v}");
            push_errno_name(out, v);
        }
        PType::Fd => push_fd(out, ev, int(p)),
        PType::Pid => {
            let v = int(p);
            let _ = write!(out, "{v}");
            if let Some(c) = ev.state.comm(v) {
                let _ = write!(out, "({c})");
            }
        }
        PType::FsPath | PType::FsRelPath(_) => push_path(out, ev, pi.ty, p),
        PType::CharBuf => push_lossy(out, cstr(p)),
        PType::ByteBuf => push_bytebuf(out, p),
        PType::Flags8 | PType::Flags16 | PType::Flags32 | PType::Mode => push_flags(out, pi, p),
        PType::EnumFlags8 | PType::EnumFlags16 | PType::EnumFlags32 => push_enum_flag(out, pi, p),
        PType::Ipv4Addr if p.len() == 4 => out.push_str(&ipv4(p)),
        PType::Ipv6Addr if p.len() == 16 => out.push_str(&ipv6(p)),
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
        PType::SockTuple => out.push_str(tuple_str(p).as_deref().unwrap_or("NULL")),
        PType::SockAddr => out.push_str(sockaddr_str(p).as_deref().unwrap_or("NULL")),
        PType::FdList => push_fd_list(out, ev, p),
        PType::Uid | PType::Gid => push_user_or_group(out, ev.state, pi.ty, uint(p) as u32),
        PType::U8 | PType::U16 | PType::U32 | PType::U64 | PType::SigSet => {
            push_unsigned(out, pi.fmt, uint(p))
        }
        PType::I8 | PType::I16 | PType::I32 | PType::I64 | PType::AbsTime => {
            let v = int(p);
            if pi.fmt == PFmt::Hex {
                let _ = write!(out, "{v:X}");
            } else {
                let _ = write!(out, "{v}");
            }
        }
        PType::Dyn => push_dyn(out, p),
        PType::SyscallId
        | PType::CharBufArray
        | PType::CharBufPairArray
        | PType::Ipv4Addr
        | PType::Ipv6Addr => push_bytebuf(out, p),
    }
}

/// `(ENOENT)` after a negative result, when the errno has a name.
fn push_errno_name(out: &mut String, v: i64) {
    if v < 0 {
        if let Some(n) = names::errno_name(-v) {
            let _ = write!(out, "({n})");
        }
    }
}

/// A descriptor and what it names: `3(<f>/etc/passwd)`.
fn push_fd(out: &mut String, ev: &ScapEvent<'_>, v: i64) {
    let _ = write!(out, "{v}");
    if v == AT_FDCWD {
        out.push_str("(AT_FDCWD)");
    } else if v < 0 {
        push_errno_name(out, v);
    } else if let Some(f) = ev.state.fd(ev.tid, v) {
        let _ = write!(out, "(<{}>{})", f.tag, f.name);
    }
}

/// A path, and a relative one resolved against its base in parentheses.
fn push_path(out: &mut String, ev: &ScapEvent<'_>, ty: PType, p: &[u8]) {
    let s = String::from_utf8_lossy(cstr(p));
    out.push_str(&s);
    if !s.is_empty() && !s.starts_with('/') {
        let base = relative_base(ev, ty).unwrap_or_default();
        let _ = write!(out, "({})", resolve(&base, &s));
    }
}

/// A flags (or mode) value and the names of its set bits.
fn push_flags(out: &mut String, pi: &ParamInfo, p: &[u8]) {
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

/// An enumerated value and its one name.
fn push_enum_flag(out: &mut String, pi: &ParamInfo, p: &[u8]) {
    let v = uint(p) as u32;
    let _ = write!(out, "{v}");
    let name = pi
        .table
        .and_then(names::flag_table)
        .and_then(|t| t.iter().find(|&&(_, fv)| fv == v));
    if let Some((n, _)) = name {
        let _ = write!(out, "({n})");
    }
}

/// A poll list: `fd:TAGflags` per entry (2-byte count, then 8-byte fd and
/// 2-byte flags each).
fn push_fd_list(out: &mut String, ev: &ScapEvent<'_>, p: &[u8]) {
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
        let tag = ev
            .state
            .fd(ev.tid, fd)
            .map(|f| f.tag.chars().next().unwrap_or('?'))
            .unwrap_or('?');
        let _ = write!(out, "{fd}:{tag}{fl}");
    }
}

/// A uid or gid and its name from the capture's user list.
fn push_user_or_group(out: &mut String, st: &State, ty: PType, v: u32) {
    let _ = write!(out, "{v}");
    let names = if ty == PType::Uid {
        &st.users
    } else {
        &st.groups
    };
    if let Some(n) = names.get(&v) {
        let _ = write!(out, "({n})");
    }
}

fn push_unsigned(out: &mut String, fmt: PFmt, v: u64) {
    match fmt {
        PFmt::Hex => {
            let _ = write!(out, "{v:X}");
        }
        PFmt::Oct => out.push_str(&octal(v as u32)),
        _ => {
            let _ = write!(out, "{v}");
        }
    }
}

/// A tagged union: one index byte, then the value.
fn push_dyn(out: &mut String, p: &[u8]) {
    if p.len() > 1 {
        let v = &p[1..];
        if matches!(v.len(), 1 | 2 | 4 | 8) {
            let _ = write!(out, "{}", int(v));
        } else {
            push_bytebuf(out, v);
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
///
/// Exactly one line per event: control characters in the process name and
/// the parameters (a newline in a file name, a form feed in a thread name)
/// are written as `\xNN`.
pub fn sysdig_line(ev: &ScapEvent<'_>, info: &str, line: &mut String) {
    let day = ev.ts_ns % 86_400_000_000_000;
    let secs = day / 1_000_000_000;
    let _ = write!(
        line,
        "{} {:02}:{:02}:{:02}.{:09} {} ",
        ev.num,
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        day % 1_000_000_000,
        ev.cpu,
    );
    push_controls_escaped(line, ev.process());
    let _ = write!(line, " ({}) {} {} ", ev.tid, ev.dir.as_char(), ev.name);
    if !info.is_empty() {
        push_controls_escaped(line, info);
        line.push(' ');
    }
    line.push('\n');
}

/// Appends `s` with its control characters escaped as `\xNN` (the form
/// [`crate::escape`] uses), spaces and everything else as they are: the
/// line keeps `sysdig -r`'s shape and stays one line.
pub(crate) fn push_controls_escaped(out: &mut String, s: &str) {
    // Fast byte scan: C0 controls and DEL are single bytes, C1 controls
    // (U+0080..U+009F) start with 0xC2; decode chars only when one may be
    // there. Branch-free over 32-byte chunks so the compiler vectorises it.
    let maybe = |c: &[u8]| {
        c.iter()
            .fold(false, |m, &b| m | (b < 0x20) | (b == 0x7f) | (b == 0xc2))
    };
    if !s.as_bytes().chunks(32).any(maybe) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        if c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "\\x{b:02x}");
            }
        } else {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::push_controls_escaped;

    #[test]
    fn control_characters_are_escaped_on_one_line() {
        let mut s = String::new();
        push_controls_escaped(&mut s, "a b\nc\td\x0ce\x7f\u{85}é\\");
        assert_eq!(s, "a b\\x0ac\\x09d\\x0ce\\x7f\\xc2\\x85é\\");
        s.clear();
        push_controls_escaped(&mut s, "/etc/passwd");
        assert_eq!(s, "/etc/passwd");
    }
}
