//! Window features computed in the kernel (`bpf/aggregate.bpf.h`): the
//! second capture path beside per-event records, producing the same
//! [`WindowFeatures`] a [`FeatureStream`](chids_core::features::FeatureStream)
//! computes from the events, without one ring-buffer record per syscall.
//!
//! ```text
//! kernel, per event: label (node | USN | pending) ─► per-CPU window slot:
//!                    count, node bits, unseen bits, USN neighbour bits
//!                    pending (an argument not known seen) ─► MISS record
//!                    successor of a pending event ─► SUCC record
//! user, per record:  normalise the argument ─► label (node | UAN),
//!                    edges to its neighbours; a seen argument goes into
//!                    the kernel's set, so its next use is a map lookup
//! user, window k two windows old: merge the CPUs' slots + the records
//!                    ─► GraphSummary ─► [FI, USI, UAI]
//! ```
//!
//! Exact for feature version 2 ([`EdgeOrder::Thread`]): edges join a
//! thread's consecutive calls, which the kernel sees in program order, so
//! no cross-CPU order is involved. `tests/live_kernel_windows.rs` records
//! and aggregates the same run and holds the two equal window by window.
//! Compat mode and stream-edge bundles use the per-event path.

use std::collections::{BTreeSet, HashMap};

use libbpf_rs::{MapCore, MapFlags};

use super::capture::{Capture, WatchFlags};
use super::cgroup::CgroupRef;
use super::format::parse_sockaddr;
use super::syscalls;
use super::LiveError;

use chids_core::cache::BoundedCache;
use chids_core::event::{Event, Params};
use chids_core::features::{
    label_arg, normalized_arg, ArgLabel, Settings, TrainingElements, UnseenArg, WindowFeatures,
    CACHE_BYTES, CACHE_ENTRIES,
};
use chids_core::mode::Mode;
use chids_core::ssg::{EdgeOrder, GraphSummary};

use super::abi::{
    self, chids_agg_cfg, chids_agg_flight, chids_agg_thread, chids_agg_window, chids_arg_class,
    chids_label, AGG_SLOTS, AGG_WATCHES, LBL_WORDS, NR_TABLE,
};
use super::agg_record::{self, AggRecord, Miss};

const LBL_USN: u32 = chids_label::LBL_USN.0;
const LBL_NONE: u32 = chids_label::LBL_NONE.0;
const LBL_PENDING: u32 = chids_label::LBL_PENDING.0;
const SEQ_MASK: u32 = chids_label::SEQ_MASK.0;
/// The special nodes, in the kernel's label space (UAN only exists here).
const USN: u32 = LBL_USN;
const UAN: u32 = LBL_USN + 1;
/// Labels user space gives nodes the kernel's table cannot name
/// (syscall numbers outside it): above every kernel label.
const EXTRA_LABELS: u32 = 1 << 16;

/// Whether the kernel can compute a bundle's windows (else: per-event path).
pub fn supported(settings: &Settings) -> bool {
    unsupported_reason(settings).is_none()
}

/// Why the kernel cannot compute a bundle's windows, or `None` when it can:
/// it keeps per-thread edges only (a stream's arrival order across CPUs
/// exists only in per-event records).
pub fn unsupported_reason(settings: &Settings) -> Option<&'static str> {
    match (settings.mode, settings.edges) {
        (Mode::Modern, EdgeOrder::Thread) => None,
        (Mode::Compat, _) => Some(
            "a compat bundle links the whole stream's calls, as the reference does; kernel windows keep per-thread edges only",
        ),
        (Mode::Modern, EdgeOrder::Stream) => Some(
            "this bundle has stream edges (trained with --edges stream, or before per-thread edges were the default); train it again without --edges for kernel windows",
        ),
    }
}

/// What the records and the user-space labels add to one window.
#[derive(Default)]
struct Extra {
    nodes: BTreeSet<u32>,
    usn_preds: BTreeSet<u32>,
    usn_succs: BTreeSet<u32>,
    uan_preds: BTreeSet<u32>,
    uan_succs: BTreeSet<u32>,
    /// Unseen nodes of the kernel's table found here (events outside the
    /// table named as a table node: io_uring operations).
    unseen_nodes: BTreeSet<u32>,
    /// Unseen nodes the kernel could not name (outside its table).
    unseen_extra: BTreeSet<u32>,
    unseen_arg_calls: BTreeSet<u32>,
    unseen_args: BTreeSet<String>,
    /// (argument, syscall node) -> first process, in record order.
    detail: Vec<UnseenArg>,
}

impl Extra {
    fn edge(&mut self, prev: u32, cur: u32) {
        if cur == USN {
            self.usn_preds.insert(prev);
        }
        if prev == USN {
            self.usn_succs.insert(cur);
        }
        if cur == UAN {
            self.uan_preds.insert(prev);
        }
        if prev == UAN {
            self.uan_succs.insert(cur);
        }
    }
}

/// How a raw argument resolved: to a label-deciding normalised argument
/// (`Some(arg)` unseen) or to its node (`None`: seen, or no argument).
type Resolution = Option<String>;

/// One watched cgroup's kernel-computed windows.
pub struct KernelWindows {
    settings: Settings,
    baseline: TrainingElements,
    slot: u32,
    watch: u64,
    epoch_offset_ns: i64,
    /// Kernel time of window 0's start, once the stream began.
    t0: Option<u64>,
    /// Next window to emit.
    next: u64,
    /// Node label -> node (family) name.
    node_names: Vec<String>,
    /// Nodes the kernel table cannot name, by syscall number.
    extra_nodes: HashMap<i32, (u32, String)>,
    /// Labels of the MISS records of open windows, by sequence number.
    pending: HashMap<u32, (u64, u32)>,
    extras: HashMap<u64, Extra>,
    /// Raw argument (class byte, then its bytes) -> how it resolved;
    /// bounded, as a workload chooses how many distinct arguments it uses.
    resolved: BoundedCache<Box<[u8]>, Resolution>,
    key_scratch: Vec<u8>,
    /// Events lost for their time: counted in no window.
    late: u64,
    /// Hashes (8 bytes each) of arguments resolved as seen since the last
    /// flush to the kernel's set.
    seen_args: Vec<u8>,
    /// The aggregation records of one poll (reused buffer).
    batch: Vec<u8>,
    /// The kernel's seen-argument set is full: stop adding to it.
    args_full: bool,
    scratch: String,
    windows_since_sweep: u32,
}

impl KernelWindows {
    /// Starts aggregating `cgroup` in the kernel for a bundle's settings and
    /// training elements. `gated`: the stream starts at the first `execve`
    /// (a `-- CMD` target, as `record` does). `also_events`: keep sending
    /// per-event records too (to record the same run).
    pub fn attach(
        capture: &mut Capture,
        cgroup: &CgroupRef,
        settings: Settings,
        baseline: &TrainingElements,
        gated: bool,
        also_events: bool,
    ) -> Result<KernelWindows, LiveError> {
        if let Some(why) = unsupported_reason(&settings) {
            return Err(LiveError::Other(format!(
                "kernel windows need a modern bundle with per-thread edges: {why}"
            )));
        }
        let slot = capture.take_agg_slot().ok_or_else(|| {
            LiveError::Other(format!(
                "at most {AGG_WATCHES} cgroups can have kernel windows at once"
            ))
        })?;
        let mode = settings.mode;
        // The family table: syscall number -> node label.
        let mut labels: HashMap<String, u32> = HashMap::new();
        let mut node_names: Vec<String> = Vec::new();
        let mut table = vec![0u32; NR_TABLE];
        for (nr, entry) in table.iter_mut().enumerate() {
            let name = syscalls::name(nr as i32)
                .map(str::to_string)
                .unwrap_or_else(|| format!("syscall_{nr}"));
            let node = mode.node_name(&name).to_string();
            let next = node_names.len() as u32;
            *entry = *labels.entry(node.clone()).or_insert_with(|| {
                node_names.push(node);
                next
            });
        }
        let mut seen = [0u64; LBL_WORDS];
        for (label, name) in node_names.iter().enumerate() {
            if baseline.seen_syscalls.contains(name) {
                seen[label / 64] |= 1 << (label % 64);
            }
        }
        let mut cfg: chids_agg_cfg = abi::zeroed();
        cfg.window_ns = settings.window_ns;
        cfg.gated = u32::from(gated);
        cfg.seen = seen;
        let bpf = |what: &str, e: libbpf_rs::Error| LiveError::Bpf(format!("{what}: {e}"));
        {
            let maps = &capture.skel().maps;
            for (nr, label) in table.iter().enumerate() {
                maps.agg_nodes
                    .update(
                        &(nr as u32).to_ne_bytes(),
                        &label.to_ne_bytes(),
                        MapFlags::ANY,
                    )
                    .map_err(|e| bpf("family table", e))?;
            }
            // A slot used before starts clean.
            for i in 0..AGG_SLOTS {
                let key = (slot * AGG_SLOTS + i).to_ne_bytes();
                let ncpu = libbpf_rs::num_possible_cpus().map_err(|e| bpf("cpus", e))?;
                let zero = vec![abi::bytes(&abi::zeroed::<chids_agg_window>()).to_vec(); ncpu];
                maps.agg_windows
                    .update_percpu(&key, &zero, MapFlags::ANY)
                    .map_err(|e| bpf("window slots", e))?;
            }
            maps.agg_cfgs
                .update(&slot.to_ne_bytes(), abi::bytes(&cfg), MapFlags::ANY)
                .map_err(|e| bpf("window settings", e))?;
        }
        capture.watch_with(
            cgroup,
            WatchFlags {
                emit: also_events,
                aggregate: Some(slot),
            },
        )?;
        Ok(KernelWindows {
            settings,
            baseline: baseline.clone(),
            slot,
            watch: cgroup.id,
            epoch_offset_ns: capture.epoch_offset(),
            t0: None,
            next: 0,
            node_names,
            extra_nodes: HashMap::new(),
            pending: HashMap::new(),
            extras: HashMap::new(),
            resolved: BoundedCache::new(CACHE_ENTRIES, CACHE_BYTES),
            key_scratch: Vec::new(),
            late: 0,
            seen_args: Vec::new(),
            batch: Vec::new(),
            args_full: false,
            scratch: String::new(),
            windows_since_sweep: 0,
        })
    }

    /// Reads the records received so far and emits every window that is
    /// two windows old by the kernel clock: the grace the per-event path
    /// gives late events.
    pub fn pump(
        &mut self,
        capture: &mut Capture,
        emit: &mut dyn FnMut(WindowFeatures),
    ) -> Result<(), LiveError> {
        self.take_records(capture);
        let Some(t0) = self.start(capture) else {
            return Ok(());
        };
        let now = monotonic_ns();
        if now < t0 {
            return Ok(());
        }
        let current = (now - t0) / self.settings.window_ns;
        while self.next + 2 <= current {
            // Every program that took a time before the window's end has
            // finished: its counts are complete and its records committed.
            let end = t0 + (self.next + 1) * self.settings.window_ns;
            if !quiescent(capture, end) {
                break; // try again at the next poll
            }
            capture.consume();
            self.take_records(capture);
            self.close_next(capture, emit)?;
        }
        Ok(())
    }

    /// Events lost for their time (in no window), as the per-event
    /// windower's dropped events.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Ends the stream: the caller has drained the ring buffers
    /// ([`Capture::drain`]) after the workload stopped. Emits every window
    /// up to the last one with events.
    pub fn finish(
        mut self,
        capture: &mut Capture,
        emit: &mut dyn FnMut(WindowFeatures),
    ) -> Result<u64, LiveError> {
        quiescent(capture, u64::MAX);
        capture.consume();
        self.take_records(capture);
        if self.start(capture).is_none() {
            return Ok(self.late);
        }
        let last = self.last_window(capture)?;
        if let Some(last) = last {
            while self.next <= last {
                self.close_next(capture, emit)?;
            }
        }
        capture.release_agg_slot(self.slot);
        Ok(self.late)
    }

    fn start(&mut self, capture: &mut Capture) -> Option<u64> {
        if self.t0.is_none() {
            let t0 = self.cfg(capture)?.t0;
            self.t0 = (t0 != 0).then_some(t0);
        }
        self.t0
    }

    /// This watch's `struct chids_agg_cfg` as the kernel has it now.
    fn cfg(&self, capture: &mut Capture) -> Option<chids_agg_cfg> {
        let cfg = capture
            .skel()
            .maps
            .agg_cfgs
            .lookup(&self.slot.to_ne_bytes(), MapFlags::ANY)
            .ok()
            .flatten()?;
        abi::read(&cfg)
    }

    /// The per-CPU windows in window `k`'s slot.
    fn slot_values(
        &self,
        capture: &mut Capture,
        k: u64,
    ) -> Result<Vec<chids_agg_window>, LiveError> {
        let key = (self.slot * AGG_SLOTS + (k % u64::from(AGG_SLOTS)) as u32).to_ne_bytes();
        let per_cpu = capture
            .skel()
            .maps
            .agg_windows
            .lookup_percpu(&key, MapFlags::ANY)
            .map_err(|e| LiveError::Bpf(format!("read window slot: {e}")))?
            .unwrap_or_default();
        Ok(per_cpu.iter().filter_map(|v| abi::read(v)).collect())
    }

    /// The newest window any CPU holds events of.
    fn last_window(&self, capture: &mut Capture) -> Result<Option<u64>, LiveError> {
        let mut last = self.extras.keys().copied().max();
        for i in 0..u64::from(AGG_SLOTS) {
            for v in self.slot_values(capture, i)? {
                if v.events > 0 {
                    last = last.max(Some(v.window));
                }
            }
        }
        Ok(last)
    }

    fn close_next(
        &mut self,
        capture: &mut Capture,
        emit: &mut dyn FnMut(WindowFeatures),
    ) -> Result<(), LiveError> {
        let k = self.next;
        self.next += 1;
        let mut events = 0u64;
        let mut bits = [[0u64; LBL_WORDS]; 4];
        for v in self.slot_values(capture, k)? {
            if v.window != k {
                continue;
            }
            events += v.events;
            // Events the kernel could not count in their window (its slot
            // already held this newer one).
            self.late += v.late;
            for (map, words) in bits
                .iter_mut()
                .zip([&v.nodes, &v.unseen, &v.usn_pred, &v.usn_succ])
            {
                for (word, w) in map.iter_mut().zip(words) {
                    *word |= w;
                }
            }
        }
        // The kernel may now reuse the slot of window k.
        if let Some(t0) = self.t0 {
            let mut cfg = self.cfg(capture).unwrap_or_else(abi::zeroed);
            cfg.t0 = t0;
            cfg.done = k + 1;
            let _ = capture.skel().maps.agg_cfgs.update(
                &self.slot.to_ne_bytes(),
                abi::bytes(&cfg),
                MapFlags::ANY,
            );
        }
        let extra = self.extras.remove(&k).unwrap_or_default();
        self.pending.retain(|_, (w, _)| *w > k);
        let [nodes, unseen, usn_pred, usn_succ] = bits;
        let set = |words: &[u64; LBL_WORDS], more: &BTreeSet<u32>| -> BTreeSet<u32> {
            let mut s = more.clone();
            for (w, word) in words.iter().enumerate() {
                for b in 0..64 {
                    if word >> b & 1 == 1 {
                        s.insert((w * 64 + b) as u32);
                    }
                }
            }
            s
        };
        let unseen_nodes = set(&unseen, &extra.unseen_nodes);
        let summary = GraphSummary {
            events,
            nodes: set(&nodes, &extra.nodes).len() as u64,
            unseen_syscalls: (unseen_nodes.len() + extra.unseen_extra.len()) as u64,
            unseen_arg_calls: extra.unseen_arg_calls.len() as u64,
            unseen_args: extra.unseen_args.len() as u64,
            usn_preds: set(&usn_pred, &extra.usn_preds).len() as u64,
            usn_succs: set(&usn_succ, &extra.usn_succs).len() as u64,
            uan_preds: extra.uan_preds.len() as u64,
            uan_succs: extra.uan_succs.len() as u64,
        };
        let mut unseen_syscalls: Vec<String> = unseen_nodes
            .iter()
            .filter_map(|&l| self.node_names.get(l as usize).cloned())
            .collect();
        for &l in &extra.unseen_extra {
            if let Some((_, name)) = self.extra_nodes.values().find(|(x, _)| *x == l) {
                unseen_syscalls.push(name.clone());
            }
        }
        let t0 = self.t0.unwrap_or(0);
        let start = (t0 + k * self.settings.window_ns) as i64;
        let top = chids_core::ssg::EXPLAIN_TOP;
        let more_unseen_syscalls = unseen_syscalls.len().saturating_sub(top) as u64;
        unseen_syscalls.truncate(top);
        let mut unseen_args = extra.detail;
        let more_unseen_args = unseen_args.len().saturating_sub(top) as u64;
        unseen_args.truncate(top);
        emit(WindowFeatures {
            index: k,
            start_ns: start.wrapping_add(self.epoch_offset_ns) as u64,
            run_length: 1,
            events: events as usize,
            vector: summary.vector(self.baseline.max_freq),
            unseen_syscalls,
            more_unseen_syscalls,
            unseen_args,
            more_unseen_args,
            capped: false,
        });
        self.windows_since_sweep += 1;
        if self.windows_since_sweep >= 8 {
            self.windows_since_sweep = 0;
            self.sweep_threads(capture, k);
        }
        Ok(())
    }

    /// Forgets the threads of this watch whose last event is eight
    /// windows old: their next event starts a new window anyway. (Not
    /// younger ones: the kernel may update an entry between this read and
    /// the delete; a thread silent for eight windows that wakes in exactly
    /// that microsecond is the only one that can lose an edge.)
    fn sweep_threads(&self, capture: &mut Capture, done: u64) {
        let Some(done) = done.checked_sub(8) else {
            return;
        };
        let map = &capture.skel().maps.agg_threads;
        let stale: Vec<Vec<u8>> = map
            .keys()
            .filter(|key| {
                map.lookup(key, MapFlags::ANY)
                    .ok()
                    .flatten()
                    .and_then(|v| abi::read::<chids_agg_thread>(&v))
                    .is_some_and(|t| t.slot == self.slot && t.window <= done)
            })
            .collect();
        for key in stale {
            let _ = map.delete(&key);
        }
    }

    fn take_records(&mut self, capture: &mut Capture) {
        let mut batch = std::mem::take(&mut self.batch);
        capture.take_agg_records(&mut batch);
        for r in super::capture::records(&batch) {
            self.record(capture, r);
        }
        self.batch = batch;
        self.flush_seen_args(capture);
    }

    /// Adds the argument hashes resolved as seen to the kernel's set, in
    /// one system call per poll (one per argument was most of this side's
    /// CPU on a workload that names many new files, like `find`).
    fn flush_seen_args(&mut self, capture: &mut Capture) {
        let count = self.seen_args.len() / 8;
        if count == 0 || self.args_full {
            self.seen_args.clear();
            return;
        }
        let values = vec![1u8; count];
        if capture
            .skel()
            .maps
            .agg_args
            .update_batch(
                &self.seen_args,
                &values,
                count as u32,
                MapFlags::ANY,
                MapFlags::ANY,
            )
            .is_err()
        {
            // Full (or partly added): stop adding, as before.
            self.args_full = true;
        }
        self.seen_args.clear();
    }

    /// One record of `agg_ring` (undecodable ones are counted as such).
    fn record(&mut self, capture: &mut Capture, r: &[u8]) {
        let rec = match agg_record::decode(r) {
            Ok(rec) => rec,
            Err(_) => return capture.count_undecodable(),
        };
        let (watch, window) = match rec {
            AggRecord::Miss(m) => (m.watch, m.window),
            AggRecord::Succ { watch, window, .. } => (watch, window),
        };
        if watch != self.watch {
            return;
        }
        if window < self.next {
            self.late += 1; // its window is already out
            return;
        }
        match rec {
            AggRecord::Succ { seq, next, .. } => {
                let Some(&(_, label)) = self.pending.get(&seq) else {
                    return; // its MISS record was lost
                };
                self.extras.entry(window).or_default().edge(label, next);
            }
            AggRecord::Miss(m) => {
                let label = self.resolve(&m);
                self.pending.insert(m.seq, (window, label));
                let prev = match m.prev {
                    LBL_NONE => None,
                    p if p & LBL_PENDING != 0 => self.pending.get(&(p & SEQ_MASK)).map(|&(_, l)| l),
                    p => Some(p),
                };
                let extra = self.extras.entry(window).or_default();
                extra.nodes.insert(label);
                if let Some(p) = prev {
                    extra.edge(p, label);
                }
            }
        }
    }

    /// The label of a MISS record's event, recording what an unseen
    /// argument or node contributes to its window.
    fn resolve(&mut self, m: &Miss<'_>) -> u32 {
        let syscall = syscalls::name(m.nr)
            .map(str::to_string)
            .unwrap_or_else(|| format!("syscall_{}", m.nr));
        let node_name = self.settings.mode.node_name(&syscall).to_string();
        // A node of the kernel's table (an io_uring operation is named as
        // its syscall's family), else one named here.
        let (node, in_table) = match self.node_names.iter().position(|n| *n == node_name) {
            Some(node) => (node as u32, true),
            None => {
                let next = EXTRA_LABELS + self.extra_nodes.len() as u32;
                let (label, _) = self
                    .extra_nodes
                    .entry(m.nr)
                    .or_insert_with(|| (next, node_name.clone()));
                (*label, false)
            }
        };
        if !self.baseline.seen_syscalls.contains(&node_name) {
            let extra = self.extras.entry(m.window).or_default();
            if in_table {
                extra.unseen_nodes.insert(node);
            } else {
                extra.unseen_extra.insert(node);
            }
            return USN;
        }
        // The raw argument, as the per-event path would see it.
        let raw: &[u8] = match m.class {
            // A path counts its NUL.
            chids_arg_class::ARG_PATH | chids_arg_class::ARG_EXEC => {
                &m.arg[..m.arg.len().saturating_sub(1)]
            }
            chids_arg_class::ARG_SOCK => m.arg,
            chids_arg_class::ARG_COMM => {
                let comm = &m.arg[..m.arg.len().min(abi::COMM_LEN)];
                &comm[..comm.iter().position(|&c| c == 0).unwrap_or(comm.len())]
            }
            _ => return node,
        };
        // Cache key: the class, then the raw bytes (built in a reused buffer).
        self.key_scratch.clear();
        self.key_scratch.push(m.class.0 as u8);
        self.key_scratch.extend_from_slice(raw);
        let resolution = match self.resolved.get(self.key_scratch.as_slice()) {
            Some(res) => res.clone(),
            None => {
                let res = self.normalise(m, raw, &syscall, &node_name);
                if res.is_none() && !self.args_full {
                    // Seen (or no argument): the kernel decides it next
                    // time (added with this poll's others, flush_seen_args).
                    self.seen_args.extend_from_slice(&m.arg_hash.to_ne_bytes());
                }
                self.resolved
                    .insert(self.key_scratch.as_slice().into(), res.clone());
                res
            }
        };
        let Some(arg) = resolution else {
            return node;
        };
        let mut process = String::new();
        chids_core::escape::push_escaped(&mut process, m.comm);
        let extra = self.extras.entry(m.window).or_default();
        extra.unseen_arg_calls.insert(node);
        if !extra
            .detail
            .iter()
            .any(|d| d.arg == arg && d.syscall == node_name)
        {
            extra.detail.push(UnseenArg {
                arg: arg.clone(),
                syscall: node_name,
                process,
            });
        }
        extra.unseen_args.insert(arg);
        UAN
    }

    /// The normalised argument if it is unseen; `None` if seen or absent.
    fn normalise(
        &mut self,
        m: &Miss<'_>,
        raw: &[u8],
        syscall: &str,
        node_name: &str,
    ) -> Resolution {
        let mut path = String::new();
        let mut unix = String::new();
        let mut process = String::new();
        chids_core::escape::push_escaped(&mut process, m.comm);
        let mut params = Params::default();
        match m.class {
            chids_arg_class::ARG_SOCK => params.endpoint = parse_sockaddr(raw, &mut unix),
            _ => {
                chids_core::escape::push_escaped(&mut path, raw);
                params.path = Some(&path);
            }
        }
        let event = Event {
            ts_ns: 0,
            tid: 0,
            pid: 0,
            process: &process,
            dir: m.dir,
            syscall,
            info: "",
            params,
        };
        let mode = self.settings.mode;
        let mut out = std::mem::take(&mut self.scratch);
        let has = normalized_arg(mode, node_name, &event, &mut out);
        let unseen = has
            && mode.arg_kind(node_name).is_some_and(|kind| {
                matches!(label_arg(&self.baseline, kind, &out), ArgLabel::Unseen)
            });
        let res = unseen.then(|| out.clone());
        self.scratch = out;
        res
    }
}

/// True when no CPU runs an aggregating program whose event time is
/// before `end` (`agg_inflight`; 1 = running, time not taken yet). A
/// program is preempted only rarely and briefly, so a few reads suffice;
/// if not, the caller tries again at its next poll.
fn quiescent(capture: &mut Capture, end: u64) -> bool {
    let key = 0u32.to_ne_bytes();
    for _ in 0..64 {
        let busy = capture
            .skel()
            .maps
            .agg_inflight
            .lookup_percpu(&key, MapFlags::ANY)
            .ok()
            .flatten()
            .is_some_and(|cpus| {
                cpus.iter()
                    .filter_map(|v| abi::read::<chids_agg_flight>(v))
                    .any(|f| f.entry.iter().any(|&e| e != 0 && e < end))
            });
        if !busy {
            return true;
        }
        std::thread::yield_now();
    }
    false
}

/// CLOCK_MONOTONIC now, the clock of `bpf_ktime_get_ns`.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
