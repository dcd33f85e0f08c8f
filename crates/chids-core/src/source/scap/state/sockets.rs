//! Exits that create sockets and give them their addresses.

use super::{l4_tag, Exit, O_CLOEXEC};
use crate::source::scap::format::{sockaddr_str, tuple_str, unix_path};
use crate::source::scap::{FdInfo, State, Text};

pub(super) fn socket(st: &mut State, ev: &Exit) {
    let fd = ev.res;
    if fd < 0 {
        return;
    }
    let domain = ev.u32_or("domain", ev.pend.domain);
    let sock_type = ev.u32_or("type", ev.pend.sock_type);
    let tag = match domain {
        2 => "4",
        10 => "6",
        1 => "u",
        16 => "n",
        _ => "o",
    };
    st.fd_table(ev.tid).insert(
        fd,
        FdInfo {
            tag: tag.to_string(),
            name: Text::default(),
            cloexec: ev.flags() & O_CLOEXEC != 0,
        },
    );
    st.sock_types.insert((st.pid_of(ev.tid), fd), sock_type);
}

pub(super) fn socketpair(st: &mut State, ev: &Exit) {
    if ev.res < 0 {
        return;
    }
    for key in ["fd1", "fd2"] {
        let fd = ev.int_or(key, -1);
        if fd >= 0 {
            st.fd_table(ev.tid).insert(
                fd,
                FdInfo {
                    tag: "u".into(),
                    ..FdInfo::default()
                },
            );
        }
    }
}

/// The socket type (SOCK_STREAM, ...) its `socket` exit recorded.
fn sock_type_of(st: &State, tid: i64, fd: i64) -> u32 {
    st.sock_types
        .get(&(st.pid_of(tid), fd))
        .copied()
        .unwrap_or(1)
}

/// A connect that succeeded or is in progress (-EINPROGRESS).
pub(super) fn connect(st: &mut State, ev: &Exit) {
    if ev.res < 0 && ev.res != -115 {
        return;
    }
    let Some(tp) = ev.get("tuple") else {
        return;
    };
    let fd = ev.int_or("fd", ev.pend.fd);
    let stype = sock_type_of(st, ev.tid, fd);
    let Some(f) = st.fd_table(ev.tid).get_mut(&fd) else {
        return;
    };
    if let Some(p) = unix_path(tp) {
        f.name = p.into();
    } else if let Some(s) = tuple_str(tp) {
        f.tag = l4_tag(&f.tag[..1], stype);
        f.name = s.into();
    }
}

pub(super) fn bind(st: &mut State, ev: &Exit) {
    if ev.res < 0 {
        return;
    }
    let Some(a) = ev.get("addr") else {
        return;
    };
    let fd = ev.int_or("fd", ev.pend.fd);
    let stype = sock_type_of(st, ev.tid, fd);
    if let Some(f) = st.fd_table(ev.tid).get_mut(&fd) {
        if let Some(s) = sockaddr_str(a) {
            if a.first() != Some(&1) {
                f.tag = l4_tag(&f.tag[..1], stype);
            }
            f.name = s.into();
        }
    }
}

pub(super) fn accept(st: &mut State, ev: &Exit) {
    let fd = ev.res;
    if fd < 0 {
        return;
    }
    let tp = ev.get("tuple").unwrap_or(&[]);
    let (tag, name) = match tp.first() {
        Some(2) => ("4t".to_string(), tuple_str(tp).unwrap_or_default()),
        Some(10) => ("6t".to_string(), tuple_str(tp).unwrap_or_default()),
        Some(1) => ("u".to_string(), unix_path(tp).unwrap_or_default()),
        _ => ("o".to_string(), String::new()),
    };
    // The driver records SOCK_CLOEXEC as the file flag O_CLOEXEC.
    let cloexec = ev.flags() & O_CLOEXEC != 0;
    st.fd_table(ev.tid).insert(
        fd,
        FdInfo {
            tag,
            name: name.into(),
            cloexec,
        },
    );
}
