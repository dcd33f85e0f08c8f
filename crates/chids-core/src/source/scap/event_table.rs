//! The event table: for every event type id, its name and parameter layout.
//!
//! The facts (ids, names, categories, flags, parameter names, types, print
//! formats and flag tables) are the public scap format of falcosecurity/libs
//! `driver/event_table.c` and `driver/ppm_events_public.h`. They live in
//! `events_gen.rs`, which `scripts/gen-scap-event-table.py` writes from
//! a libs checkout: a capture from a newer driver needs only a rerun of the
//! script, not hand edits. This module holds the types the generated table
//! is made of and the questions the reader asks of it.

use super::events_gen::{self, EC_INTERNAL, EC_ITER, EC_METAEVENT, EC_PLUGIN, EC_SYSCALL, EVENTS};

/// How a parameter is stored and printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PType {
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    Fd,
    Errno,
    Pid,
    FsPath,
    /// Path relative to the dirfd parameter at the given index.
    FsRelPath(u8),
    CharBuf,
    ByteBuf,
    Flags8,
    Flags16,
    Flags32,
    /// A value of an enumeration: printed with the one name it equals.
    EnumFlags8,
    EnumFlags16,
    EnumFlags32,
    Ipv4Addr,
    Ipv6Addr,
    SockAddr,
    SockTuple,
    FdList,
    RelTime,
    AbsTime,
    SigType,
    Uid,
    Gid,
    SigSet,
    Dyn,
    Mode,
    SyscallId,
    CharBufArray,
    CharBufPairArray,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PFmt {
    Dec,
    Hex,
    Oct,
    Na,
}

#[derive(Clone, Debug)]
pub struct ParamInfo {
    pub name: &'static str,
    pub ty: PType,
    pub fmt: PFmt,
    /// The libs flag table (e.g. `file_flags`) that renders the value
    /// symbolically; [`super::names::flag_table`] knows the ones we print.
    pub table: Option<&'static str>,
}

#[derive(Clone, Debug)]
pub struct EventInfo {
    pub name: &'static str,
    /// `ppm_event_category` bits.
    pub category: u32,
    /// `ppm_event_flags` bits.
    pub flags: u32,
    /// Parameters use 4-byte length prefixes (EF_LARGE_PAYLOAD).
    pub large: bool,
    pub params: &'static [ParamInfo],
}

// Well-known ids the reader's state tracking needs.
pub(crate) const GENERIC_E: u16 = 0;
pub(crate) const GENERIC_X: u16 = 1;
pub(crate) const PROCEXIT_E: u16 = 16;
pub(crate) const PROCEXIT_1_E: u16 = 186;
pub(crate) const NOTIFICATION_E: u16 = 280;
pub(crate) const CONTAINER_JSON_E: u16 = 272;
pub const CONTAINER_JSON_2_E: u16 = 324;

/// Internal events (category EC_INTERNAL: drop, scapevent, old container,
/// procinfo, k8s, mesos, infra) that `sysdig -r` reads and numbers but does
/// not print. Notification events were internal in the sysdig that made the
/// shared reference dumps (0.29) and it leaves them out too.
pub(crate) fn is_internal(ty: u16) -> bool {
    ty == NOTIFICATION_E || info(ty).is_some_and(|i| i.category & EC_INTERNAL != 0)
}

/// Container metadata events (old container, container JSON 1 and 2):
/// `sysdig -r` prints the JSON ones, but they describe a container, they
/// are not something it did, and some carry time 0 — which would start a
/// recording's windows at the epoch.
pub(crate) fn is_container_metadata(ty: u16) -> bool {
    matches!(ty, 228 | 229 | 272 | 273 | 324 | 325)
}

/// Events that are not something a process did: metadata (container,
/// user and group added, async plugin events), kernel-iterator snapshots of
/// what existed when the capture started, plugin events. They are left out
/// of the pipeline; `dump` prints them as `sysdig -r` does.
pub(crate) fn is_metadata(ty: u16) -> bool {
    info(ty).is_some_and(|i| {
        i.category & (EC_METAEVENT | EC_ITER | EC_PLUGIN) != 0 && i.category & EC_SYSCALL == 0
    })
}

/// The table, indexed by event type id.
pub fn table() -> &'static [EventInfo] {
    &EVENTS
}

pub fn info(ty: u16) -> Option<&'static EventInfo> {
    EVENTS.get(ty as usize)
}

/// Syscall names by PPM syscall code, for generic events (`PT_SYSCALLID`).
pub(crate) fn syscall_name(code: u16) -> &'static str {
    events_gen::SYSCALLS
        .get(code as usize)
        .copied()
        .unwrap_or("<unknown>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_line_up_with_the_public_numbering() {
        let t = table();
        assert_eq!(t.len(), 454);
        assert_eq!(t[3].name, "open");
        assert_eq!(t[152].name, "switch");
        assert_eq!(t[186].name, "procexit");
        assert_eq!(t[222].name, "clone");
        assert_eq!(t[272].name, "container");
        assert_eq!(t[292].name, "execve");
        assert_eq!(t[306].name, "openat");
        assert_eq!(t[351].name, "munlockall");
        assert_eq!(syscall_name(47), "gettimeofday");
    }

    #[test]
    fn events_past_351_are_known_with_their_parameters() {
        let t = table();
        let names = |ty: usize| t[ty].params.iter().map(|p| p.name).collect::<Vec<_>>();
        assert_eq!(t[365].name, "dup3");
        assert_eq!(names(365), ["res", "oldfd", "newfd", "flags"]);
        assert_eq!(t[389].name, "accept4");
        assert_eq!(t[393].name, "pipe2");
        assert_eq!(t[401].name, "prctl");
        assert_eq!(t[405].name, "memfd_create");
        assert_eq!(t[411].name, "init_module");
        assert_eq!(t[413].name, "finit_module");
        assert_eq!(t[419].name, "newfstatat");
        assert_eq!(
            t[419]
                .params
                .iter()
                .find(|p| p.name == "path")
                .map(|p| p.ty),
            Some(PType::FsRelPath(1))
        );
        assert_eq!(syscall_name(5), "open");
    }

    #[test]
    fn large_payload_events_are_the_metadata_ones() {
        let large: Vec<usize> = (0..table().len()).filter(|&i| table()[i].large).collect();
        assert_eq!(large, [322, 324, 402]);
    }

    #[test]
    fn internal_and_metadata_events_are_recognised() {
        for ty in [148, 149, 196, 228, 234, 260, 270, 280, 286] {
            assert!(is_internal(ty), "{ty}");
        }
        assert!(!is_internal(3) && !is_internal(272));
        // container JSON, useradded, groupadded, asyncevent, task iterator
        for ty in [272, 324, 354, 358, 402, 430, 448] {
            assert!(is_metadata(ty), "{ty}");
        }
        // open, newfstatat, switch, procexit
        for ty in [3, 419, 152, 186] {
            assert!(!is_metadata(ty), "{ty}");
        }
    }
}
