//! System call numbers to names: x86-64, and ia32 (32-bit programs on an
//! x86-64 kernel).
//!
//! The kernel program reports a 32-bit call either as its x86-64 twin
//! (the argument-bearing families, whose arguments it reads from the ia32
//! registers) or as [`IA32_BASE`] + its ia32 number, so that a 32-bit
//! `open` (ia32 number 5, which is `fstat` on x86-64) is never misnamed.

#[rustfmt::skip]
mod table;
#[rustfmt::skip]
mod table_ia32;

/// Offset of ia32 syscall numbers in events (NR_IA32_BASE, bpf/chids_abi.h).
pub(crate) const IA32_BASE: i32 = crate::abi::chids_limit::NR_IA32_BASE.0 as i32;

/// Offset of io_uring operations in events (NR_IOURING_BASE,
/// bpf/chids_abi.h): an operation is this plus its opcode.
pub(crate) const IOURING_BASE: i32 = crate::abi::chids_limit::NR_IOURING_BASE.0 as i32;

/// io_uring operations by opcode (enum io_uring_op in the kernel's uapi
/// `linux/io_uring.h`, through Linux 6.18), named `io_uring_` and the
/// opcode's name. In modern mode the ones naming a path or a peer are
/// folded into their syscall's family (`Mode::node_name`).
const IOURING_OPS: &[&str] = &[
    "io_uring_nop",
    "io_uring_readv",
    "io_uring_writev",
    "io_uring_fsync",
    "io_uring_read_fixed",
    "io_uring_write_fixed",
    "io_uring_poll_add",
    "io_uring_poll_remove",
    "io_uring_sync_file_range",
    "io_uring_sendmsg",
    "io_uring_recvmsg",
    "io_uring_timeout",
    "io_uring_timeout_remove",
    "io_uring_accept",
    "io_uring_async_cancel",
    "io_uring_link_timeout",
    "io_uring_connect",
    "io_uring_fallocate",
    "io_uring_openat",
    "io_uring_close",
    "io_uring_files_update",
    "io_uring_statx",
    "io_uring_read",
    "io_uring_write",
    "io_uring_fadvise",
    "io_uring_madvise",
    "io_uring_send",
    "io_uring_recv",
    "io_uring_openat2",
    "io_uring_epoll_ctl",
    "io_uring_splice",
    "io_uring_provide_buffers",
    "io_uring_remove_buffers",
    "io_uring_tee",
    "io_uring_shutdown",
    "io_uring_renameat",
    "io_uring_unlinkat",
    "io_uring_mkdirat",
    "io_uring_symlinkat",
    "io_uring_linkat",
    "io_uring_msg_ring",
    "io_uring_fsetxattr",
    "io_uring_setxattr",
    "io_uring_fgetxattr",
    "io_uring_getxattr",
    "io_uring_socket",
    "io_uring_uring_cmd",
    "io_uring_send_zc",
    "io_uring_sendmsg_zc",
    "io_uring_read_multishot",
    "io_uring_waitid",
    "io_uring_futex_wait",
    "io_uring_futex_wake",
    "io_uring_futex_waitv",
    "io_uring_fixed_fd_install",
    "io_uring_ftruncate",
    "io_uring_bind",
    "io_uring_listen",
    "io_uring_recv_zc",
    "io_uring_epoll_wait",
    "io_uring_readv_fixed",
    "io_uring_writev_fixed",
    "io_uring_pipe",
];

/// Calls newer than the committed header (Debian 12's linux-libc-dev stops
/// at 450); numbers from the kernel's syscall_64.tbl.
const NEWER: &[(i32, &str)] = &[
    (451, "cachestat"),
    (452, "fchmodat2"),
    (453, "map_shadow_stack"),
    (454, "futex_wake"),
    (455, "futex_wait"),
    (456, "futex_requeue"),
    (457, "statmount"),
    (458, "listmount"),
    (459, "lsm_get_self_attr"),
    (460, "lsm_set_self_attr"),
    (461, "lsm_list_modules"),
    (462, "mseal"),
    (463, "setxattrat"),
    (464, "getxattrat"),
    (465, "listxattrat"),
    (466, "removexattrat"),
    (467, "open_tree_attr"),
];

/// The name of syscall `nr`, or `None` for an unassigned number.
pub fn name(nr: i32) -> Option<&'static str> {
    if nr < 0 {
        return None;
    }
    if nr >= IOURING_BASE {
        return IOURING_OPS.get((nr - IOURING_BASE) as usize).copied();
    }
    if nr >= IA32_BASE {
        let n = table_ia32::IA32_SYSCALL_NAMES.get((nr - IA32_BASE) as usize)?;
        return (!n.is_empty()).then_some(*n);
    }
    match table::SYSCALL_NAMES.get(nr as usize) {
        Some(n) if !n.is_empty() => Some(n),
        Some(_) => None,
        None => NEWER.iter().find(|(n, _)| *n == nr).map(|(_, s)| *s),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_numbers() {
        assert_eq!(super::name(0), Some("read"));
        assert_eq!(super::name(2), Some("open"));
        assert_eq!(super::name(59), Some("execve"));
        assert_eq!(super::name(257), Some("openat"));
        assert_eq!(super::name(262), Some("newfstatat"));
        assert_eq!(super::name(435), Some("clone3"));
        assert_eq!(super::name(462), Some("mseal"));
        assert_eq!(super::name(-1), None);
        assert_eq!(super::name(100_000), None);
        // ia32: 5 is open, 3 is read; never their x86-64 namesakes.
        assert_eq!(super::name(super::IA32_BASE + 5), Some("open"));
        assert_eq!(super::name(super::IA32_BASE + 3), Some("read"));
        assert_eq!(super::name(super::IA32_BASE + 102), Some("socketcall"));
        assert_eq!(
            super::name(super::IOURING_BASE + 18),
            Some("io_uring_openat")
        );
        assert_eq!(
            super::name(super::IOURING_BASE + 16),
            Some("io_uring_connect")
        );
        assert_eq!(super::name(super::IOURING_BASE + 56), Some("io_uring_bind"));
        assert_eq!(super::name(super::IOURING_BASE + 62), Some("io_uring_pipe"));
        assert_eq!(super::name(super::IOURING_BASE + 63), None);
    }
}
