//! Exits that change threads: chdir, clone/fork, execve.

use super::Exit;
use crate::source::scap::container_from_cgroups;
use crate::source::scap::format::{cwd_of, int, resolve};
use crate::source::scap::{State, Thread};

/// A successful chdir.
pub(super) fn chdir(st: &mut State, ev: &Exit) {
    if let Some(p) = ev.text("path") {
        let cwd = cwd_of(st, ev.tid);
        let mut full = resolve(&cwd, &p);
        if !full.ends_with('/') {
            full.push('/');
        }
        if let Some(t) = st.threads.get_mut(&ev.tid) {
            t.cwd = full;
        }
    }
}

pub(super) fn execve(st: &mut State, ev: &Exit) {
    if ev.res != 0 {
        return;
    }
    let tid = ev.tid;
    let comm = ev
        .text("comm")
        .or_else(|| ev.text("exe"))
        .unwrap_or_default();
    let pid = ev.int_or("pid", tid);
    let cwd = ev.text("cwd");
    let container = ev.get("cgroups").and_then(container_from_cgroups);
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

/// clone, fork, vfork, clone3: the exit in the parent (result = the
/// child's tid) or in the child (result 0).
pub(super) fn clone(st: &mut State, ev: &Exit) {
    let (res, tid) = (ev.res, ev.tid);
    if res < 0 {
        return;
    }
    let comm = ev
        .text("comm")
        .or_else(|| ev.text("exe"))
        .unwrap_or_default();
    let is_thread = ev.flags() & (1 << 13) != 0;
    let cwd = ev.text("cwd").unwrap_or_default();
    let container = ev.get("cgroups").and_then(container_from_cgroups);
    let (child, parent_tid) = if res == 0 {
        (tid, ev.int_or("ptid", -1))
    } else {
        (res, tid)
    };
    // Inside a pid namespace the parent sees the child's id in that
    // namespace, not the global tid: then sysdig learns the child only from
    // the child's own exit.
    if res != 0 {
        let in_ns = ev.get("vtid").map(int).is_some_and(|v| v != tid);
        if in_ns || st.threads.contains_key(&child) {
            return;
        }
    }
    let parent = st.threads.get(&parent_tid).cloned();
    let pid = if res == 0 {
        ev.int_or("pid", child)
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
