//! Events of containers watched but not yet identified.
//!
//! A container's cgroup is watched the moment it is found, so its first
//! events (its start-up, often the most telling) are captured; who it is
//! (name, image, workload) is looked up on a worker thread (see
//! `identify.rs`), which may take a while (runtime state on disk, a CRI
//! call of up to 2 s). Meanwhile its events are held here, copied out of
//! the ring buffer, and replayed into its stream once it is identified.
//! Bounded: per container and in all; what does not fit is counted.

use chids_core::event::Direction;
use chids_live::capture::RawEvent;
use chids_live::cgroup::CgroupRef;

use crate::discovery::Runtime;
use crate::status::IdentifyingStatus;

/// At most this many events are held per container (about the first
/// windows of a busy start-up).
pub(crate) const HELD_PER_CONTAINER: usize = 8192;
/// At most this many bytes of events are held for all containers together.
pub(crate) const HELD_BYTES_TOTAL: usize = 32 << 20;

/// A container watched from the moment it was found, while the identity
/// worker finds out who it is; its events are held meanwhile.
pub(crate) struct Pending {
    pub cgroup: CgroupRef,
    /// Its id, from its cgroup's name.
    pub container_id: String,
    pub runtime: Runtime,
    /// When it was found, ns since the epoch.
    pub since_ns: u64,
    /// Its program already ran when it was found (see `begin_mid_run`).
    pub running: bool,
    pub held: Held,
    /// Its cgroup went away before it was identified.
    pub stopped: bool,
}

impl Pending {
    /// How `agent status` shows it.
    pub(crate) fn status(&self) -> IdentifyingStatus {
        IdentifyingStatus {
            id: self.container_id.clone(),
            runtime: self.runtime.as_str().to_string(),
            state: "identifying".into(),
            cgroup: self.cgroup.path.display().to_string(),
            cgroup_id: self.cgroup.id,
            since_ns: self.since_ns,
            held_events: self.held.len() as u64,
            held_dropped: self.held.dropped,
            stopped: self.stopped,
        }
    }
}

/// A [`RawEvent`] that owns its bytes.
struct HeldEvent {
    ts_ns: u64,
    watch: u64,
    ret: i64,
    flags: u64,
    pid: u32,
    tid: u32,
    uid: u32,
    nr: i32,
    dir: Direction,
    path_fault: bool,
    comm: [u8; 16],
    comm_len: u8,
    path: Option<Box<[u8]>>,
    sockaddr: Option<Box<[u8]>>,
}

impl HeldEvent {
    fn copy(raw: &RawEvent<'_>) -> HeldEvent {
        let mut comm = [0u8; 16];
        let n = raw.comm.len().min(16);
        comm[..n].copy_from_slice(&raw.comm[..n]);
        HeldEvent {
            ts_ns: raw.ts_ns,
            watch: raw.watch,
            ret: raw.ret,
            flags: raw.flags,
            pid: raw.pid,
            tid: raw.tid,
            uid: raw.uid,
            nr: raw.nr,
            dir: raw.dir,
            path_fault: raw.path_fault,
            comm,
            comm_len: n as u8,
            path: raw.path.map(Box::from),
            sockaddr: raw.sockaddr.map(Box::from),
        }
    }

    /// Bytes it takes, for the global bound.
    fn size(&self) -> usize {
        std::mem::size_of::<HeldEvent>()
            + self.path.as_ref().map_or(0, |p| p.len())
            + self.sockaddr.as_ref().map_or(0, |s| s.len())
    }

    fn as_raw(&self) -> RawEvent<'_> {
        RawEvent {
            ts_ns: self.ts_ns,
            watch: self.watch,
            ret: self.ret,
            flags: self.flags,
            pid: self.pid,
            tid: self.tid,
            uid: self.uid,
            nr: self.nr,
            dir: self.dir,
            comm: &self.comm[..usize::from(self.comm_len)],
            path: self.path.as_deref(),
            path_fault: self.path_fault,
            sockaddr: self.sockaddr.as_deref(),
        }
    }
}

/// One unidentified container's events, in capture order.
#[derive(Default)]
pub(crate) struct Held {
    events: Vec<HeldEvent>,
    bytes: usize,
    /// Events not held (past a bound).
    pub dropped: u64,
}

impl Held {
    /// Keeps a copy of `raw` unless this container holds
    /// [`HELD_PER_CONTAINER`] events already or all containers together
    /// would pass `room` bytes (then it is counted in `dropped`). Returns
    /// the bytes taken.
    pub(crate) fn push(&mut self, raw: &RawEvent<'_>, room: usize) -> usize {
        let ev = HeldEvent::copy(raw);
        let size = ev.size();
        if self.events.len() >= HELD_PER_CONTAINER || size > room {
            self.dropped += 1;
            return 0;
        }
        self.events.push(ev);
        self.bytes += size;
        size
    }

    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }

    /// Bytes held (given back to the global bound when replayed).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Hands every held event to `f`, in the order captured.
    pub(crate) fn replay(&self, f: &mut dyn FnMut(&RawEvent<'_>)) {
        for ev in &self.events {
            f(&ev.as_raw());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'a>(ts_ns: u64, path: &'a [u8]) -> RawEvent<'a> {
        RawEvent {
            ts_ns,
            watch: 7,
            ret: -2,
            flags: 0,
            pid: 10,
            tid: 11,
            uid: 0,
            nr: 257,
            dir: Direction::Exit,
            comm: b"sh",
            path: Some(path),
            path_fault: false,
            sockaddr: None,
        }
    }

    #[test]
    fn replays_what_it_held_in_order_and_counts_the_rest() {
        let mut h = Held::default();
        let mut room = usize::MAX;
        for i in 0..(HELD_PER_CONTAINER as u64 + 5) {
            room -= h.push(&raw(i, b"/etc/shadow"), room);
        }
        assert_eq!(h.len(), HELD_PER_CONTAINER);
        assert_eq!(h.dropped, 5);
        assert_eq!(usize::MAX - room, h.bytes());
        let mut seen = Vec::new();
        h.replay(&mut |r| {
            assert_eq!(r.path, Some(&b"/etc/shadow"[..]));
            assert_eq!(r.comm, b"sh");
            seen.push(r.ts_ns)
        });
        assert_eq!(seen, (0..HELD_PER_CONTAINER as u64).collect::<Vec<_>>());
    }

    #[test]
    fn the_global_bound_is_kept() {
        let mut h = Held::default();
        let one = h.push(&raw(0, b"/a"), usize::MAX);
        assert_eq!(h.push(&raw(1, b"/a"), one - 1), 0);
        assert_eq!((h.len(), h.dropped), (1, 1));
    }
}
