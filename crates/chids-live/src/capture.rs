//! Loading the eBPF program, choosing what to watch, and reading its ring
//! buffer.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, RingBuffer, RingBufferBuilder};

use super::abi::{self, chids_counter, chids_dir, chids_event, chids_event_flag, chids_watch_flag};
use super::cgroup::CgroupRef;
use super::skel::{ChidsSkel, ChidsSkelBuilder};
use super::LiveError;
use chids_core::event::Direction;

/// Longest a final [`Capture::drain`] may take.
pub(crate) const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// Kernel-side counters (summed over CPUs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Events lost because the ring buffer was full.
    pub dropped: u64,
    /// Path arguments that could not be read (emitted with an empty path).
    pub path_faults: u64,
    /// Kernel-window records (unresolved arguments) or events lost, because
    /// the ring buffer was full or the window's slot was still unread: the
    /// windows they belonged to are inexact.
    pub agg_lost: u64,
    /// Watched tasks that moved themselves (or were moved) out of every
    /// watched cgroup; they are followed, and their events still captured.
    pub migrated: u64,
    /// Successful execs whose enter was not seen (it came before the
    /// capture started): the exec's enter event with its path is lost.
    pub exec_unmatched: u64,
    /// Ring-buffer records too short to decode (lost).
    pub undecodable: u64,
}

/// One event as the kernel sent it, with its time already on the epoch.
#[derive(Clone, Copy, Debug)]
pub struct RawEvent<'a> {
    /// Nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// The watched cgroup (the task's own or an ancestor) it matched.
    pub watch: u64,
    /// Return value (exit events).
    pub ret: i64,
    /// Open flags (open family exit), else 0.
    pub flags: u64,
    pub pid: u32,
    pub tid: u32,
    pub uid: u32,
    pub nr: i32,
    pub dir: Direction,
    /// `comm`, the kernel's 16-byte task name (up to its NUL).
    pub comm: &'a [u8],
    /// The path argument, for the families that carry one.
    pub path: Option<&'a [u8]>,
    /// The path could not be read from user memory (`path` is empty).
    pub path_fault: bool,
    /// The `struct sockaddr` a socket call named (its first bytes, up to
    /// 128), for `connect`, `bind`, `sendto`, `accept`, `recvfrom`.
    pub sockaddr: Option<&'a [u8]>,
}

impl<'a> RawEvent<'a> {
    /// Decodes one ring-buffer record (`struct chids_event`, then its
    /// payload); `None` if it is shorter than the header. A record shorter
    /// than the payload it claims has no payload (no path, no address).
    pub fn decode(b: &'a [u8], epoch_offset_ns: i64) -> Option<RawEvent<'a>> {
        let h: chids_event = abi::read(b)?;
        let at = std::mem::offset_of!(chids_event, comm);
        let comm = &b[at..at + abi::COMM_LEN];
        let comm = &comm[..comm.iter().position(|&c| c == 0).unwrap_or(abi::COMM_LEN)];
        let has = |f: chids_event_flag| u32::from(h.evflags) & f.0 != 0;
        let payload_len = usize::from(h.path_len).min(abi::PATH_LEN);
        let payload = b.get(abi::EVENT_HEADER_LEN..abi::EVENT_HEADER_LEN + payload_len);
        let path = match payload {
            // path_len counts the NUL.
            Some(p) if has(chids_event_flag::F_HAS_PATH) => {
                Some(&p[..payload_len.saturating_sub(1)])
            }
            _ => None,
        };
        let sockaddr = match payload {
            Some(p) if has(chids_event_flag::F_HAS_SOCKADDR) && payload_len >= 2 => Some(p),
            _ => None,
        };
        Some(RawEvent {
            ts_ns: (h.ts as i64).wrapping_add(epoch_offset_ns) as u64,
            watch: h.watch,
            ret: h.ret,
            flags: u64::from(h.flags),
            pid: h.pid,
            tid: h.tid,
            uid: h.uid,
            nr: h.nr,
            dir: direction(h.dir),
            comm,
            path,
            path_fault: has(chids_event_flag::F_PATH_FAULT),
            sockaddr,
        })
    }
}

impl<'a> RawEvent<'a> {
    /// The call's enter event that the exit record `b` (this event, decoded)
    /// also stands for (`F_WITH_ENTER`: sys_exit sends a call's two events as
    /// one record): the same time, thread, name and number, no payload.
    pub(crate) fn enter_of(&self, b: &[u8]) -> Option<RawEvent<'a>> {
        let h: chids_event = abi::read(b)?;
        let with_enter = u32::from(h.evflags) & chids_event_flag::F_WITH_ENTER.0 != 0;
        (with_enter && self.dir == Direction::Exit).then_some(RawEvent {
            ret: 0,
            flags: 0,
            dir: Direction::Enter,
            path: None,
            path_fault: false,
            sockaddr: None,
            ..*self
        })
    }
}

/// A record's `dir` byte (`enum chids_dir`).
pub(crate) fn direction(dir: u8) -> Direction {
    if u32::from(dir) == chids_dir::DIR_ENTER.0 {
        Direction::Enter
    } else {
        Direction::Exit
    }
}

/// The ring records copied into an arena: each is a u32 length, then
/// that many bytes (see the ring-buffer callbacks in [`Capture::open`]).
pub(crate) fn records(arena: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let len = u32::from_ne_bytes(arena.get(at..at + 4)?.try_into().ok()?) as usize;
        let rec = arena.get(at + 4..at + 4 + len)?;
        at += 4 + len;
        Some(rec)
    })
}

/// What the kernel does with a watched cgroup's events (`struct watch`'s flags and slot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WatchFlags {
    /// One ring-buffer record per event.
    pub emit: bool,
    /// Window aggregation in aggregation slot `slot` (see `aggregate`).
    pub aggregate: Option<u32>,
}

/// A loaded, attached capture. Not `Send`: poll it from the thread that made it.
pub struct Capture {
    // Declared before `skel` so it is dropped first.
    ring: RingBuffer<'static>,
    skel: ChidsSkel<'static>,
    /// Records copied out of the ring buffer by the callback, each prefixed
    /// by its length (u32), consumed after every poll.
    arena: Rc<RefCell<Vec<u8>>>,
    /// The same for the aggregation's records (`agg_ring`).
    agg_arena: Rc<RefCell<Vec<u8>>>,
    epoch_offset_ns: i64,
    level_mask: u32,
    /// Records that failed to decode.
    undecodable: u64,
    /// Aggregation slots in use (bit per slot).
    agg_slots: u64,
}

/// Nanoseconds on `clock`.
fn clock_ns(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// CLOCK_REALTIME − CLOCK_MONOTONIC, the offset that turns
/// `bpf_ktime_get_ns` into epoch time. Taken as the tightest of a few
/// monotonic/realtime/monotonic sandwiches.
pub(crate) fn epoch_offset_ns() -> i64 {
    let now = clock_ns;
    let mut best = (i64::MAX, 0);
    for _ in 0..16 {
        let m1 = now(libc::CLOCK_MONOTONIC);
        let r = now(libc::CLOCK_REALTIME);
        let m2 = now(libc::CLOCK_MONOTONIC);
        if m2 - m1 < best.0 {
            best = (m2 - m1, r - (m1 + (m2 - m1) / 2));
        }
    }
    best.1
}

/// Fails early, with what to do, when this process cannot load eBPF.
pub fn check_environment() -> Result<(), LiveError> {
    let btf = Path::new("/sys/kernel/btf/vmlinux");
    if !btf.exists() {
        return Err(LiveError::NoBtf(btf.to_path_buf()));
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // Not root: enough capabilities will do.
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let eff = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0);
        const CAP_SYS_ADMIN: u64 = 21;
        const CAP_PERFMON: u64 = 38;
        const CAP_BPF: u64 = 39;
        let has = |c: u64| eff & (1 << c) != 0;
        if !(has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))) {
            return Err(LiveError::NotPrivileged);
        }
    }
    Ok(())
}

/// Whether this kernel has what the io_uring hook (bpf/iouring.bpf.h)
/// attaches to and reads: the io_uring_submit_req tracepoint (Linux 5.19
/// on) and requests that carry their prepared command (6.0 on). Without
/// them (or without io_uring) the capture runs without io_uring events.
fn io_uring_hook_available() -> bool {
    let Ok(btf) = libbpf_rs::btf::Btf::from_vmlinux() else {
        return false;
    };
    ["btf_trace_io_uring_submit_req", "io_cmd_data"]
        .iter()
        .all(|name| {
            btf.type_by_name::<libbpf_rs::btf::BtfType<'_>>(name)
                .is_some()
        })
}

fn bpf_err(what: &str, e: libbpf_rs::Error) -> LiveError {
    LiveError::Bpf(format!("{what}: {e}"))
}

impl Capture {
    /// Loads and attaches the program. Nothing is captured until a cgroup
    /// is [`watch`](Capture::watch)ed.
    pub fn open() -> Result<Capture, LiveError> {
        check_environment()?;
        // Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK.
        let unlimited = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: valid rlimit pointer; failure is harmless on newer kernels.
        unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) };

        // The skeleton borrows its object storage for its whole life; a
        // capture lives as long as the command using it, so leaking this
        // small allocation (once per capture) is the simple, safe choice.
        let storage: &'static mut MaybeUninit<libbpf_rs::OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let mut open = ChidsSkelBuilder::default()
            .open(storage)
            .map_err(|e| bpf_err("open", e))?;
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.self_tgid = std::process::id();
            // The secret key of the kernel's argument hash (aggregate.bpf.h,
            // arg_hash): a workload must not be able to aim a path at the
            // hash of a seen one.
            let mut key = [0u8; 16];
            rand::RngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut key)
                .map_err(|e| LiveError::Other(format!("no random key from the OS: {e}")))?;
            ro.arg_key0 = u64::from_ne_bytes(key[..8].try_into().expect("8 bytes"));
            ro.arg_key1 = u64::from_ne_bytes(key[8..].try_into().expect("8 bytes"));
        }
        if !io_uring_hook_available() {
            open.progs.chids_iouring_submit.set_autoload(false);
        }
        let mut skel = open.load().map_err(|e| {
            let e = bpf_err("load (verifier)", e);
            if let LiveError::Bpf(m) = &e {
                if m.contains("Operation not permitted") || m.contains("EPERM") {
                    return LiveError::NotPrivileged;
                }
            }
            e
        })?;
        skel.attach()
            .map_err(|e| bpf_err("attach tracepoints", e))?;

        let arena = Rc::new(RefCell::new(Vec::with_capacity(1 << 20)));
        let agg_arena = Rc::new(RefCell::new(Vec::new()));
        let mut builder = RingBufferBuilder::new();
        for (map, arena) in [
            (&skel.maps.events, &arena),
            (&skel.maps.agg_ring, &agg_arena),
        ] {
            let sink = Rc::clone(arena);
            builder
                .add(map, move |data: &[u8]| {
                    let mut a = sink.borrow_mut();
                    a.extend_from_slice(&(data.len() as u32).to_ne_bytes());
                    a.extend_from_slice(data);
                    0
                })
                .map_err(|e| bpf_err("ring buffer", e))?;
        }
        let ring = builder.build().map_err(|e| bpf_err("ring buffer", e))?;
        Ok(Capture {
            ring,
            skel,
            arena,
            agg_arena,
            epoch_offset_ns: epoch_offset_ns(),
            level_mask: 0,
            undecodable: 0,
            agg_slots: 0,
        })
    }

    /// Starts capturing the cgroup and everything below it (also cgroups
    /// created below it later: the kernel side checks ancestors).
    pub fn watch(&mut self, cg: &CgroupRef) -> Result<(), LiveError> {
        self.watch_with(
            cg,
            WatchFlags {
                emit: true,
                aggregate: None,
            },
        )
    }

    /// [`watch`](Capture::watch), choosing per-event records and/or window
    /// aggregation.
    pub(crate) fn watch_with(&mut self, cg: &CgroupRef, how: WatchFlags) -> Result<(), LiveError> {
        if cg.level >= 32 {
            return Err(LiveError::Other(format!(
                "cgroup {} is nested {} deep; at most 31 levels are supported",
                cg.path.display(),
                cg.level
            )));
        }
        let key = cg.id.to_ne_bytes();
        let flag = |on: bool, f: chids_watch_flag| if on { f.0 } else { 0 };
        let value = abi::chids_watch {
            id: cg.id,
            flags: flag(how.emit, chids_watch_flag::W_EMIT)
                | flag(how.aggregate.is_some(), chids_watch_flag::W_AGG),
            slot: how.aggregate.unwrap_or(0),
        };
        self.skel
            .maps
            .watched
            .update(&key, abi::bytes(&value), MapFlags::ANY)
            .map_err(|e| bpf_err("watch cgroup", e))?;
        self.level_mask |= 1 << cg.level;
        if let Some(bss) = self.skel.maps.bss_data.as_deref_mut() {
            bss.level_mask = self.level_mask;
        }
        self.watch_changed();
        Ok(())
    }

    /// Stops capturing a cgroup watched before.
    pub fn unwatch(&mut self, cg: &CgroupRef) -> Result<(), LiveError> {
        let _ = self.skel.maps.watched.delete(&cg.id.to_ne_bytes());
        self.watch_changed();
        Ok(())
    }

    /// Makes the kernel side drop its per-CPU answers to "is this cgroup
    /// watched" (`verdicts` in the BPF program): call after every change
    /// to the `watched` map.
    fn watch_changed(&mut self) {
        if let Some(bss) = self.skel.maps.bss_data.as_deref_mut() {
            // The BPF side reads it once per call; a stale read there only
            // delays the change by a call on that CPU.
            bss.watch_gen = bss.watch_gen.wrapping_add(1);
        }
    }

    /// How many cgroups the kernel side watches now (entries of its map).
    pub fn watched_count(&self) -> usize {
        self.skel.maps.watched.keys().count()
    }

    /// Waits up to `timeout` for events and hands each to `f`, in ring
    /// buffer order. Returns how many were delivered.
    pub fn poll(
        &mut self,
        timeout: Duration,
        f: &mut dyn FnMut(&RawEvent<'_>),
    ) -> Result<u64, LiveError> {
        match self.ring.poll(timeout) {
            Ok(()) => {}
            // A signal interrupting epoll_wait is how SIGINT reaches us.
            Err(e) if e.kind() == libbpf_rs::ErrorKind::Interrupted => {}
            Err(e) => return Err(bpf_err("ring buffer poll", e)),
        }
        // The kernel side wakes us only when a lot is pending
        // (BPF_RB_NO_WAKEUP otherwise), and a poll that timed out consumes
        // nothing: take whatever is there now.
        let _ = self.ring.consume();
        Ok(self.deliver(f))
    }

    /// Hands out what was in the ring buffer when called, without waiting.
    ///
    /// Bounded even when the watched tasks produce faster than we read:
    /// it stops at the first round that delivers an event stamped after
    /// the call (the ring has caught up with the stop), at an empty round,
    /// or after [`DRAIN_LIMIT`] at the latest.
    pub fn drain(&mut self, f: &mut dyn FnMut(&RawEvent<'_>)) -> Result<u64, LiveError> {
        let stop_ns = self.now_ns();
        let started = std::time::Instant::now();
        let mut total = 0;
        loop {
            let _ = self.ring.consume();
            let mut caught_up = false;
            let n = self.deliver(&mut |ev| {
                caught_up |= ev.ts_ns > stop_ns;
                f(ev)
            });
            total += n;
            if n == 0 || caught_up || started.elapsed() >= DRAIN_LIMIT {
                return Ok(total);
            }
        }
    }

    /// Now, on the events' clock: CLOCK_MONOTONIC (what the kernel stamps
    /// events with) plus the epoch offset taken at open. Windows are closed
    /// by this clock, never by the wall clock, so a wall-clock step cannot
    /// make every later event "late".
    pub fn now_ns(&self) -> u64 {
        clock_ns(libc::CLOCK_MONOTONIC).wrapping_add(self.epoch_offset_ns) as u64
    }

    /// Moves the aggregation records received so far (see [`records`])
    /// into `into` (dropping what it held); `into`'s allocation becomes
    /// the arena for the next records.
    pub(crate) fn take_agg_records(&mut self, into: &mut Vec<u8>) {
        into.clear();
        std::mem::swap(&mut *self.agg_arena.borrow_mut(), into);
    }

    /// Consumes what both ring buffers hold now, without waiting or delivering.
    pub(crate) fn consume(&mut self) {
        let _ = self.ring.consume();
    }

    /// A free aggregation slot (see `aggregate`), now taken.
    pub(crate) fn take_agg_slot(&mut self) -> Option<u32> {
        let free = (!self.agg_slots).trailing_zeros();
        if free >= abi::AGG_WATCHES {
            return None;
        }
        self.agg_slots |= 1 << free;
        Some(free)
    }

    pub(crate) fn release_agg_slot(&mut self, slot: u32) {
        self.agg_slots &= !(1u64 << (slot & 63));
    }

    /// Counts a kernel-window record that failed to decode.
    pub(crate) fn count_undecodable(&mut self) {
        self.undecodable += 1;
    }

    /// The loaded skeleton, for the aggregation's maps.
    pub(crate) fn skel(&mut self) -> &mut ChidsSkel<'static> {
        &mut self.skel
    }

    fn deliver(&mut self, f: &mut dyn FnMut(&RawEvent<'_>)) -> u64 {
        let mut arena = self.arena.borrow_mut();
        let mut n = 0;
        for rec in records(&arena) {
            match RawEvent::decode(rec, self.epoch_offset_ns) {
                Some(ev) => {
                    if let Some(enter) = ev.enter_of(rec) {
                        f(&enter);
                        n += 1;
                    }
                    f(&ev);
                    n += 1;
                }
                None => self.undecodable += 1,
            }
        }
        arena.clear();
        n
    }

    /// The kernel-side counters now.
    pub fn counters(&self) -> Counters {
        let read = |c: chids_counter| -> u64 {
            self.skel
                .maps
                .counters
                .lookup_percpu(&c.0.to_ne_bytes(), MapFlags::ANY)
                .ok()
                .flatten()
                .map(|per_cpu| per_cpu.iter().filter_map(|v| abi::read::<u64>(v)).sum())
                .unwrap_or(0)
        };
        Counters {
            dropped: read(chids_counter::CNT_DROPPED),
            path_faults: read(chids_counter::CNT_PATH_FAULT),
            migrated: read(chids_counter::CNT_MIGRATED),
            exec_unmatched: read(chids_counter::CNT_EXEC_UNMATCHED),
            agg_lost: read(chids_counter::CNT_AGG_LOST),
            undecodable: self.undecodable,
        }
    }

    /// REALTIME − MONOTONIC as measured when the capture opened.
    pub(crate) fn epoch_offset(&self) -> i64 {
        self.epoch_offset_ns
    }
}

/// For `-- CMD` targets: admits events from the command's first `execve`
/// on. What the child did before (joining the cgroup, unsharing
/// namespaces, mounting /proc) is chids' doing, not the workload's, and
/// must not end up in recordings or be scored (`record` and `monitor`
/// apply the same gate, so training and monitoring see the same stream).
#[derive(Clone, Copy, Debug)]
pub struct ExecGate {
    open: bool,
}

impl ExecGate {
    /// `for_command`: gate closed until the first execve; otherwise open.
    pub fn new(for_command: bool) -> ExecGate {
        ExecGate { open: !for_command }
    }

    pub fn admit(&mut self, raw: &RawEvent<'_>) -> bool {
        if !self.open
            && raw.dir == Direction::Enter
            && super::syscalls::name(raw.nr) == Some("execve")
        {
            self.open = true;
        }
        self.open
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{bytes, chids_dir, zeroed, EVENT_HEADER_LEN};

    /// A ring record: an event header for `nr`, then `payload`.
    fn record(flags: chids_event_flag, claimed: u16, payload: &[u8]) -> Vec<u8> {
        let mut e: chids_event = zeroed();
        e.ts = 1_000;
        e.watch = 5;
        e.ret = -2;
        e.pid = 10;
        e.tid = 11;
        e.uid = 12;
        e.nr = 257;
        e.dir = chids_dir::DIR_EXIT.0 as u8;
        e.evflags = flags.0 as u8;
        e.path_len = claimed;
        e.flags = 0o100;
        for (c, b) in e.comm.iter_mut().zip(b"cat") {
            *c = *b as i8;
        }
        let mut b = bytes(&e).to_vec();
        b.extend_from_slice(payload);
        b
    }

    #[test]
    fn decodes_an_event_with_its_path() {
        let b = record(chids_event_flag::F_HAS_PATH, 12, b"/etc/shadow\0");
        let ev = RawEvent::decode(&b, 500).unwrap();
        assert_eq!(
            (ev.ts_ns, ev.watch, ev.ret, ev.flags),
            (1_500, 5, -2, 0o100)
        );
        assert_eq!((ev.pid, ev.tid, ev.uid, ev.nr), (10, 11, 12, 257));
        assert_eq!(ev.dir, Direction::Exit);
        assert_eq!(ev.comm, b"cat");
        assert_eq!(ev.path, Some(&b"/etc/shadow"[..]));
        assert_eq!(ev.sockaddr, None);
        assert!(!ev.path_fault);
    }

    #[test]
    fn decodes_a_socket_address() {
        let addr = [2u8, 0, 0x1f, 0x90, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        let b = record(chids_event_flag::F_HAS_SOCKADDR, 16, &addr);
        let ev = RawEvent::decode(&b, 0).unwrap();
        assert_eq!(ev.sockaddr, Some(&addr[..]));
        assert_eq!(ev.path, None);
    }

    #[test]
    fn a_truncated_header_is_no_event() {
        let b = record(chids_event_flag::F_HAS_PATH, 3, b"/a\0");
        assert!(RawEvent::decode(&b[..EVENT_HEADER_LEN - 1], 0).is_none());
        assert!(RawEvent::decode(&[], 0).is_none());
    }

    #[test]
    fn a_payload_claimed_past_the_record_is_dropped() {
        // Claims 40 bytes, carries 3: the event stays, without its path.
        let b = record(chids_event_flag::F_HAS_PATH, 40, b"/a\0");
        let ev = RawEvent::decode(&b, 0).unwrap();
        assert_eq!(ev.path, None);
        assert_eq!(ev.nr, 257);
        // A claimed length past the longest path is capped, not trusted.
        let b = record(chids_event_flag::F_HAS_PATH, u16::MAX, &[b'x'; 300]);
        let ev = RawEvent::decode(&b, 0).unwrap();
        assert_eq!(ev.path.map(<[u8]>::len), Some(abi::PATH_LEN - 1));
    }

    #[test]
    fn unknown_flags_and_directions_do_not_fail() {
        let mut b = record(chids_event_flag(0x80), 0, b"");
        b[std::mem::offset_of!(chids_event, dir)] = 7;
        let ev = RawEvent::decode(&b, 0).unwrap();
        assert_eq!((ev.path, ev.sockaddr, ev.path_fault), (None, None, false));
        assert_eq!(ev.dir, Direction::Exit);
    }

    #[test]
    fn an_exit_with_its_enter_is_two_events() {
        let flags =
            chids_event_flag(chids_event_flag::F_HAS_PATH.0 | chids_event_flag::F_WITH_ENTER.0);
        let b = record(flags, 12, b"/etc/shadow\0");
        let exit = RawEvent::decode(&b, 500).unwrap();
        assert_eq!(exit.path, Some(&b"/etc/shadow"[..]));
        let enter = exit.enter_of(&b).expect("the enter rides on the exit");
        assert_eq!(enter.dir, Direction::Enter);
        assert_eq!(
            (enter.ts_ns, enter.tid, enter.nr, enter.comm),
            (1_500, 11, 257, &b"cat"[..])
        );
        assert_eq!((enter.ret, enter.flags, enter.path), (0, 0, None));
        // Without the flag, or on an enter record, there is none.
        let plain = record(chids_event_flag::F_HAS_PATH, 12, b"/etc/shadow\0");
        assert!(RawEvent::decode(&plain, 0)
            .unwrap()
            .enter_of(&plain)
            .is_none());
        let mut on_enter = record(chids_event_flag::F_WITH_ENTER, 0, b"");
        on_enter[std::mem::offset_of!(chids_event, dir)] = chids_dir::DIR_ENTER.0 as u8;
        let ev = RawEvent::decode(&on_enter, 0).unwrap();
        assert!(ev.enter_of(&on_enter).is_none());
    }

    #[test]
    fn records_split_an_arena() {
        let mut arena = Vec::new();
        for rec in [&b"abc"[..], b"", b"de"] {
            arena.extend_from_slice(&(rec.len() as u32).to_ne_bytes());
            arena.extend_from_slice(rec);
        }
        // A length past the arena's end stops the walk.
        arena.extend_from_slice(&100u32.to_ne_bytes());
        arena.push(1);
        let got: Vec<&[u8]> = records(&arena).collect();
        assert_eq!(got, vec![&b"abc"[..], b"", b"de"]);
    }
}
