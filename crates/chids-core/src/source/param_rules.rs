//! Which parameters of which calls become the typed fields of an
//! [`Event`](crate::event::Event): one rule for every reader (scap's binary
//! parameters and the text formats' `name=value` tokens alike).

/// Which side of a connection a call's endpoint is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// The peer the task talks to (connect, send*): a tuple's destination.
    Outbound,
    /// The peer that talked to the task (accept, recv*): a tuple's source.
    Inbound,
    /// The task's own address (bind).
    Local,
}

/// The side of the endpoint a socket call names; `None` for other calls.
pub(crate) fn endpoint_side(syscall: &str) -> Option<Side> {
    match syscall {
        "connect" | "sendto" | "sendmsg" | "sendmmsg" | "io_uring_connect" => Some(Side::Outbound),
        "accept" | "accept4" | "recvfrom" | "recvmsg" | "recvmmsg" => Some(Side::Inbound),
        "bind" | "io_uring_bind" => Some(Side::Local),
        _ => None,
    }
}

/// The parameter names that hold the path of a call, in preference order.
pub(crate) fn path_params(syscall: &str) -> &'static [&'static str] {
    match syscall {
        "open" | "openat" | "openat2" => &["name"],
        "stat" | "lstat" | "fstatat" | "newfstatat" | "statx" => &["path", "name"],
        "execve" | "execveat" => &["filename"],
        "clone" | "clone3" | "fork" | "vfork" => &["exe"],
        // io_uring operations as chids' live capture writes them.
        "io_uring_openat" | "io_uring_openat2" => &["name"],
        "io_uring_statx" | "io_uring_unlinkat" | "io_uring_renameat" | "io_uring_mkdirat"
        | "io_uring_symlinkat" | "io_uring_linkat" => &["path"],
        _ => &[],
    }
}
