// SPDX-License-Identifier: GPL-2.0
//
// The kernel/user interface of chids' eBPF program, defined once: every
// struct and constant both sides use. The BPF C includes it; the Rust side
// uses the same definitions through the skeleton libbpf-cargo generates from
// the object's BTF (`skel::types`), so neither side mirrors the other by hand.
// Sizes and offsets the Rust decoders rely on are asserted here
// (_Static_assert) and in src/abi.rs (const assertions).
//
// Constants are enums, not macros: enums reach the BTF (through
// `chids_abi_enums` in chids.bpf.c) and so the Rust types; macros do not.
#ifndef CHIDS_ABI_H
#define CHIDS_ABI_H

// Sizes and number spaces.
enum chids_limit {
	COMM_LEN = 16,
	// Longest path read (with its NUL).
	PATH_LEN = 256,
	// Largest socket address read (sizeof(struct sockaddr_storage)).
	SOCKADDR_LEN = 128,
	// Longest argument a kernel-window record carries.
	ARG_LEN = 256,
	// Cgroups with kernel windows at once.
	AGG_WATCHES = 32,
	// Windows k..k+7 live at once per watch (see aggregate.bpf.h).
	AGG_SLOTS = 8,
	// Syscall numbers the kernel's family table covers (labels 0..NR_TABLE-1).
	NR_TABLE = 512,
	// Label bitmaps: NR_TABLE syscall nodes, USN, room to spare.
	LBL_BITS = 576,
	LBL_WORDS = LBL_BITS / 64,
	// A 32-bit x86 program's call outside the argument-bearing families is
	// reported as NR_IA32_BASE + its ia32 number.
	NR_IA32_BASE = 0x10000,
	// An io_uring operation is reported as NR_IOURING_BASE + its opcode
	// (IORING_OP_*): it is an event of its own, not a system call.
	NR_IOURING_BASE = 0x20000,
};

// Event direction (struct chids_event.dir, struct chids_agg_rec.dir).
enum chids_dir {
	DIR_ENTER = 0,
	DIR_EXIT = 1,
};

// struct chids_event.evflags.
enum chids_event_flag {
	F_HAS_PATH = 1,
	F_PATH_FAULT = 2,
	// The payload is a struct sockaddr (path_len bytes of it), not a path.
	F_HAS_SOCKADDR = 4,
	// This exit record also stands for its call's enter event, which comes
	// first: the same time, thread and number, no payload, return value 0
	// (one ring record for both: sys_exit emits them together).
	F_WITH_ENTER = 8,
};

// Slots of the per-CPU `counters` array (its key type), summed by user space.
enum chids_counter {
	CNT_DROPPED = 0,
	CNT_PATH_FAULT = 1,
	CNT_SINCE_WAKEUP = 2,   // not a statistic: see submit_flags()
	CNT_MIGRATED = 3,       // watched tasks moved out of every watched cgroup
	CNT_EXEC_UNMATCHED = 4, // execs whose enter was not seen (entered before the capture)
	CNT_AGG_LOST = 5,       // kernel-window records or events lost (ring full, window unread)
	CNT_MAX = 6,
};

// What a watched cgroup gets (struct chids_watch.flags, a mask of these).
enum chids_watch_flag {
	W_EMIT = 1, // one ring-buffer record per event (record, per-event monitor)
	W_AGG = 2,  // window aggregation (aggregate.bpf.h)
};

// struct chids_agg_rec.kind.
enum chids_agg_kind {
	AGG_MISS = 1,
	AGG_SUCC = 2,
};

// struct chids_arg_key.class: what the argument bytes are.
enum chids_arg_class {
	ARG_NONE = 0,
	ARG_PATH = 1,
	ARG_SOCK = 2,
	ARG_COMM = 3,
	ARG_NR = 4, // no argument: a syscall number outside the node table
	// An exec's path: its own class, so that a path learned as seen for a
	// file access (where a path pattern may cover it) never hides running
	// a program from there (arg_hash covers the class).
	ARG_EXEC = 5,
};

// Node labels in kernel windows: syscall nodes 0..NR_TABLE-1, then USN.
// (UAN exists only in user space: every event that becomes UAN is a MISS
// record.) A pending label is LBL_PENDING | the MISS record's seq.
enum chids_label {
	LBL_USN = NR_TABLE,
	SEQ_MASK = 0x3fffffffu,
	LBL_PENDING = 0x80000000u,
	LBL_NONE = 0xffffffffu,
};

// A ring-buffer event (map `events`): this header, then path_len bytes of
// payload for path-bearing calls and socket calls naming an address. A
// record is as long as its event, not as the longest path.
struct chids_event {
	__u64 ts;       // bpf_ktime_get_ns (CLOCK_MONOTONIC)
	__u64 watch;    // the watched cgroup (ancestor or itself) that matched
	__s64 ret;      // return value (exit only)
	__u32 pid;      // thread group id
	__u32 tid;
	__u32 uid;
	__s32 nr;       // syscall number (or NR_IA32_BASE/NR_IOURING_BASE + n)
	__u8 dir;       // enum chids_dir
	__u8 evflags;   // enum chids_event_flag bits
	__u16 path_len; // bytes of payload (a path counts its NUL; 0 when absent)
	char comm[COMM_LEN];
	__u32 flags;    // open flags (open family exit), 0 otherwise
};

// A watched cgroup and how it is captured (map `watched`'s value).
struct chids_watch {
	__u64 id;    // the watched cgroup's id (the map's key)
	__u32 flags; // enum chids_watch_flag bits
	__u32 slot;  // aggregation slot (W_AGG)
};

// Per aggregated watch (map `agg_cfgs`): written by user space, t0 set here.
struct chids_agg_cfg {
	__u64 t0;        // bpf_ktime of window 0's start; 0 = not started
	__u64 window_ns;
	__u32 gated;     // start at the first execve enter (`-- CMD` targets)
	__u32 pad;
	__u64 done;      // windows before this one are read (user space)
	__u64 seen[LBL_WORDS]; // node labels the model saw
};

// One window of one watch on one CPU (map `agg_windows`).
struct chids_agg_window {
	__u64 window;
	__u64 events;
	__u64 late;
	__u64 nodes[LBL_WORDS];
	__u64 unseen[LBL_WORDS];
	__u64 usn_pred[LBL_WORDS];
	__u64 usn_succ[LBL_WORDS];
};

// A thread's last label (map `agg_threads`).
struct chids_agg_thread {
	__u64 window;
	__u32 label;
	__u32 slot;
};

struct chids_arg_key {
	__u32 slot;
	__u16 class;    // enum chids_arg_class
	__u16 len;
	__u8 bytes[ARG_LEN];
};

// A MISS (header, arg_hash and key up to its length) or SUCC (header only)
// record of map `agg_ring`.
struct chids_agg_rec {
	__u64 watch;
	__u64 window;
	__u64 ts;
	__u32 kind; // enum chids_agg_kind
	__u32 seq;
	__u32 prev; // MISS: the label before it in its thread; SUCC: the label after
	__u32 tid;
	__u32 pid;
	__s32 nr;
	__u8 dir;
	__u8 pad[7];
	char comm[COMM_LEN];
	__u64 arg_hash; // MISS with an argument: arg_hash(&key), agg_args' key
	struct chids_arg_key key;
};

// Aggregating programs running now on a CPU (map `agg_inflight`), with the
// time each took for its event (1 until it has one). See aggregate.bpf.h.
struct chids_agg_flight {
	__u64 depth;
	__u64 entry[4];
};

// What user space reads at fixed places; checked again in src/abi.rs.
_Static_assert(sizeof(struct chids_event) == 64, "struct chids_event: 64-byte header");
_Static_assert(__builtin_offsetof(struct chids_event, comm) == 44, "struct chids_event: comm");
_Static_assert(sizeof(struct chids_watch) == 16, "struct chids_watch");
_Static_assert(sizeof(struct chids_agg_cfg) == 32 + 8 * LBL_WORDS, "struct chids_agg_cfg");
_Static_assert(sizeof(struct chids_agg_window) == 24 + 4 * 8 * LBL_WORDS, "struct chids_agg_window");
_Static_assert(sizeof(struct chids_agg_thread) == 16, "struct chids_agg_thread");
_Static_assert(__builtin_offsetof(struct chids_agg_rec, arg_hash) == 72, "struct chids_agg_rec: arg_hash");
_Static_assert(__builtin_offsetof(struct chids_agg_rec, key) == 80, "struct chids_agg_rec: key");
_Static_assert(__builtin_offsetof(struct chids_arg_key, bytes) == 8, "struct chids_arg_key: bytes");
_Static_assert(sizeof(struct chids_agg_rec) == 80 + 8 + ARG_LEN, "struct chids_agg_rec");
_Static_assert(LBL_BITS >= NR_TABLE + 1, "label bitmaps hold every syscall node and USN");
_Static_assert(CNT_MAX == 6, "counters");

#endif
