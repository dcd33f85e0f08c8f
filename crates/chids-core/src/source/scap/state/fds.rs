//! Exits that open, copy and close plain descriptors: files, pipes and the
//! special kinds (eventfd, epoll, memfd, ...).

use super::{Exit, O_CLOEXEC, O_DIRECTORY, PPM_CLOSE_RANGE_CLOEXEC, PPM_EPOLL_CLOEXEC};
use super::{PPM_FCNTL_F_DUPFD, PPM_FCNTL_F_DUPFD_CLOEXEC, PPM_MFD_CLOEXEC};
use crate::source::scap::format::{cstr, cwd_of, int, resolve, uint, AT_FDCWD};
use crate::source::scap::{FdInfo, State};

pub(super) fn open(st: &mut State, ev: &Exit) {
    let fd = ev.res;
    if fd < 0 {
        return;
    }
    let (path, flags, dirfd) = match ev.get("name").or_else(|| ev.get("path")) {
        Some(n) => (
            cstr(n).to_vec(),
            ev.flags(),
            ev.get("dirfd").map(int).unwrap_or(AT_FDCWD),
        ),
        None => (ev.pend.path.clone(), ev.pend.flags, ev.pend.dirfd),
    };
    let path = String::from_utf8_lossy(&path).into_owned();
    let full = if path.starts_with('/') {
        path
    } else {
        let base = if matches!(ev.name(), "openat" | "openat2") && dirfd != AT_FDCWD {
            st.fd(ev.tid, dirfd)
                .map(|f| f.name.to_string())
                .unwrap_or_default()
        } else {
            cwd_of(st, ev.tid)
        };
        resolve(&base, &path)
    };
    let tag = if flags & O_DIRECTORY != 0 { "d" } else { "f" };
    st.fd_table(ev.tid).insert(
        fd,
        FdInfo {
            tag: tag.to_string(),
            name: full.into(),
            cloexec: flags & O_CLOEXEC != 0,
        },
    );
}

pub(super) fn pipe(st: &mut State, ev: &Exit) {
    let cloexec = ev.flags() & O_CLOEXEC != 0;
    for key in ["fd1", "fd2"] {
        if let Some(v) = ev.get(key) {
            let fd = int(v);
            if fd >= 0 {
                st.fd_table(ev.tid).insert(
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

/// Calls returning a new descriptor of a special kind.
pub(super) fn new_fd(st: &mut State, ev: &Exit) {
    let fd = ev.res;
    let name = ev.name();
    if fd < 0 {
        return;
    }
    if name == "bpf" && ev.info.params.first().map(|p| p.name) != Some("fd") {
        // Old bpf events return a result, not a descriptor.
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
    let flags = ev.flags();
    let cloexec = match name {
        "memfd_create" => flags & PPM_MFD_CLOEXEC != 0,
        "epoll_create1" => flags & PPM_EPOLL_CLOEXEC != 0,
        "eventfd2" | "signalfd4" | "inotify_init1" | "userfaultfd" => flags & O_CLOEXEC != 0,
        _ => false,
    };
    let fd_name = match (name, ev.text("name")) {
        ("memfd_create", Some(n)) => n,
        _ => String::new(),
    };
    st.fd_table(ev.tid).insert(
        fd,
        FdInfo {
            tag: tag.into(),
            name: fd_name.into(),
            cloexec,
        },
    );
}

/// dup, dup2, dup3 and fcntl's F_DUPFD*.
pub(super) fn dup(st: &mut State, ev: &Exit) {
    let res = ev.res;
    let old = ev
        .get("oldfd")
        .or_else(|| ev.get("fd"))
        .map(int)
        .unwrap_or(ev.pend.fd);
    if res < 0 || res == old {
        return;
    }
    let mut cloexec = false;
    if ev.name() == "fcntl" {
        // Only F_DUPFD / F_DUPFD_CLOEXEC create descriptors (the
        // enter's `cmd` is kept in `Pending::flags`).
        let cmd = ev.u32_or("cmd", ev.pend.flags);
        if !matches!(cmd, PPM_FCNTL_F_DUPFD | PPM_FCNTL_F_DUPFD_CLOEXEC) {
            return;
        }
        cloexec = cmd == PPM_FCNTL_F_DUPFD_CLOEXEC;
    } else if ev.name() == "dup3" {
        cloexec = ev.flags() & O_CLOEXEC != 0;
    }
    // dup2/dup3 close what `newfd` named before: the copy replaces it.
    match st.fd(ev.tid, old).cloned() {
        Some(mut f) => {
            f.cloexec = cloexec;
            st.fd_table(ev.tid).insert(res, f);
        }
        None => {
            st.fd_table(ev.tid).remove(&res);
        }
    }
}

/// A successful close.
pub(super) fn close(st: &mut State, ev: &Exit) {
    let fd = ev.int_or("fd", ev.pend.fd);
    st.fd_table(ev.tid).remove(&fd);
}

pub(super) fn close_range(st: &mut State, ev: &Exit) {
    if ev.res < 0 {
        return;
    }
    let bound = |k: &str| ev.get(k).map(|v| uint(v) as i64);
    let (Some(first), Some(last)) = (bound("first"), bound("last")) else {
        return;
    };
    let flags = ev.flags();
    let table = st.fd_table(ev.tid);
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
