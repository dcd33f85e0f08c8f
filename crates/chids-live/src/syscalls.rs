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

/// Offset of ia32 syscall numbers in events (mirrors NR_IA32_BASE in
/// bpf/chids.bpf.c).
pub const IA32_BASE: i32 = 0x10000;

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
    }
}
