// SPDX-License-Identifier: GPL-2.0
//
// Window aggregation in the kernel, for `monitor` (src/aggregate.rs
// reads it). Instead of one ring-buffer record per syscall, each watched
// cgroup keeps, per window, what the anomaly vector needs (SPEC §5 with
// per-thread edges, feature version 2):
//   - the event count and the set of node labels seen;
//   - the unseen syscall nodes, relabelled USN here, from the model's seen
//     syscalls (a bitmap user space loads) and the syscall family table;
//   - the distinct predecessors and successors of USN, from each thread's
//     previous label (exact: a thread's calls are in program order).
// Per-CPU, in one of AGG_SLOTS slots by window index, merged by user space
// once the window is two windows old (as the per-event path closes it).
//
// Arguments: an event whose raw argument (path, socket address, clone's
// comm) user space has already resolved to "seen or none" hits `agg_args`
// (by a keyed hash of the argument, arg_hash) and costs a lookup. Any other one is a MISS record to user space, with
// the label before it in its thread; the label after it, when known here,
// follows as a SUCC record. User space normalises the argument, labels the
// event (its node, or UAN) and completes the edges, so unseen arguments
// still reach alerts with their names.
//
// Included by chids.bpf.c (one object, one skeleton).

// Constants and record layouts: chids_abi.h.

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, AGG_WATCHES);
	__type(key, __u32);
	__type(value, struct chids_agg_cfg);
} agg_cfgs SEC(".maps");

// Syscall number -> node label (the mode's family table).
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_TABLE);
	__type(key, __u32);
	__type(value, __u32);
} agg_nodes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, AGG_WATCHES * AGG_SLOTS);
	__type(key, __u32);
	__type(value, struct chids_agg_window);
} agg_windows SEC(".maps");

// Thread id (as recorded) -> its last label and window. Stale entries are
// swept by user space.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct chids_agg_thread);
} agg_threads SEC(".maps");

// Raw arguments user space found seen (or argument-less after parsing), by
// arg_hash. (Keyed by the whole 264-byte struct chids_arg_key, hashing and
// comparing it was ~8 % of `find`'s time under monitor.)
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u8);
} agg_args SEC(".maps");

// The key of arg_hash, random per load (set by user space before loading).
const volatile __u64 arg_key0 = 0;
const volatile __u64 arg_key1 = 0;

#define ROTL64(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIP_ROUND(v0, v1, v2, v3) do { \
	v0 += v1; v1 = ROTL64(v1, 13); v1 ^= v0; v0 = ROTL64(v0, 32); \
	v2 += v3; v3 = ROTL64(v3, 16); v3 ^= v2; \
	v0 += v3; v3 = ROTL64(v3, 21); v3 ^= v0; \
	v2 += v1; v1 = ROTL64(v1, 17); v1 ^= v2; v2 = ROTL64(v2, 32); \
} while (0)

// A keyed 64-bit hash of an argument: SipHash-1-3 over one word that holds
// slot, class and length, then the argument's bytes in 8-byte words (the
// last one zero-padded), so different arguments are different messages.
// Keyed with a secret because a hit hides the argument: an unkeyed hash
// (or one with seed-independent collisions, as Murmur-style hashes have)
// would let a workload pick a path that collides with a seen one. Written
// here by hand: BPF programs cannot call a library, and the kernel's own
// siphash is not a BPF helper.
static __always_inline __u64 arg_hash(const struct chids_arg_key *k)
{
	__u64 v0 = arg_key0 ^ 0x736f6d6570736575ULL;
	__u64 v1 = arg_key1 ^ 0x646f72616e646f6dULL;
	__u64 v2 = arg_key0 ^ 0x6c7967656e657261ULL;
	__u64 v3 = arg_key1 ^ 0x7465646279746573ULL;
	__u32 len = k->len;
	if (len > ARG_LEN)
		len = ARG_LEN;
	__u64 m = (__u64)k->slot | ((__u64)k->class << 32) | ((__u64)len << 48);
	v3 ^= m;
	SIP_ROUND(v0, v1, v2, v3);
	v0 ^= m;
	const __u64 *words = (const __u64 *)k->bytes;
	for (__u32 i = 0; i < ARG_LEN / 8; i++) {
		__u32 at = i * 8;
		if (at >= len)
			break;
		m = words[i];
		__u32 rest = len - at;
		if (rest < 8)
			m &= (1ULL << (rest * 8)) - 1;
		v3 ^= m;
		SIP_ROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	v2 ^= 0xff;
	SIP_ROUND(v0, v1, v2, v3);
	SIP_ROUND(v0, v1, v2, v3);
	SIP_ROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

// One scratch record per program and CPU: a program can be preempted and
// another one run on its CPU, but the same program does not nest there
// (the kernel skips a tracing program already active on a CPU).
#define SCR_TASK_EXIT 0
#define SCR_EXIT 1
#define SCR_EXEC 2
#define SCR_IOU 3
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct chids_agg_rec);
} agg_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} agg_ring SEC(".maps");

// Programs of aggregated watches running now, per CPU, with the time each
// took for its event (1 until it has one). A program can be preempted
// anywhere, so the clock alone does not tell that a window is complete:
// user space reads window k only when no program with a time before k's
// end is still running (then all its counts are in and its records are
// committed to the ring). Programs nest on a CPU only through preemption
// of one program by another: depth 4 is plenty.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct chids_agg_flight);
} agg_inflight SEC(".maps");

__u64 agg_seq = 0;

// Registers the program as running and returns the event's time in *ts.
static __always_inline struct chids_agg_flight *agg_enter(const struct chids_watch *w, __u64 *ts, __u32 *depth)
{
	struct chids_agg_flight *f = 0;
	__u32 d = 0;
	if (w->flags & W_AGG) {
		__u32 zero = 0;
		f = bpf_map_lookup_elem(&agg_inflight, &zero);
		if (f) {
			d = (__u32)__sync_fetch_and_add(&f->depth, 1) & 3;
			f->entry[d] = 1; // running, time not yet taken
		}
	}
	*ts = bpf_ktime_get_ns();
	if (f)
		f->entry[d] = *ts;
	*depth = d;
	return f;
}

static __always_inline void agg_exit(struct chids_agg_flight *f, __u32 depth)
{
	if (f) {
		f->entry[depth & 3] = 0;
		__sync_fetch_and_add(&f->depth, -1);
	}
}

static __always_inline struct chids_agg_rec *agg_scratch_rec(__u32 scr)
{
	return bpf_map_lookup_elem(&agg_scratch, &scr);
}

// The scratch record set up for an event with an argument: the caller
// reads the argument into key.bytes and sets key.len. (The bytes past
// key.len are not cleared: nothing reads them.)
static __always_inline struct chids_agg_rec *agg_arg_begin(__u32 slot, __u16 class, __u32 scr)
{
	struct chids_agg_rec *r = agg_scratch_rec(scr);
	if (!r)
		return 0;
	r->key.slot = slot;
	r->key.class = class;
	r->key.len = 0;
	return r;
}

// The word index is pinned in a register (barrier_var) so that the bound
// the verifier checks is the one used for the access.
static __always_inline int bit_test(const __u64 *words, __u32 label)
{
	__u32 i = label >> 6;
	barrier_var(i);
	if (i >= LBL_WORDS)
		return 0;
	return (words[i] >> (label & 63)) & 1;
}

static __always_inline void bit_set(__u64 *words, __u32 label)
{
	__u32 i = label >> 6;
	barrier_var(i);
	if (i >= LBL_WORDS)
		return;
	__u64 b = 1ULL << (label & 63);
	// Read first: most events repeat a label already there.
	if (!(words[i] & b))
		__sync_fetch_and_or(&words[i], b);
}

// Sends a record: the header only, or (`with_key`) the header and the
// argument's key up to its length.
static __always_inline int agg_send(struct chids_agg_rec *r, int with_key)
{
	__u64 len = __builtin_offsetof(struct chids_agg_rec, key);
	if (with_key) {
		__u32 n = r->key.len;
		len = n >= ARG_LEN ? sizeof(*r) : len + __builtin_offsetof(struct chids_arg_key, bytes) + (n & (ARG_LEN - 1));
	}
	long err = bpf_ringbuf_output(&agg_ring, r, len, submit_flags());
	if (err) {
		count(CNT_AGG_LOST);
		return -1;
	}
	return 0;
}

static __always_inline void count_n(__u32 slot, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &slot);
	if (v)
		*v += n;
}

// The window `n` events of watch `w` (config `c`) at time `ts` count in,
// with the events counted, and its index in *k; 0 when they are in none.
static __always_inline struct chids_agg_window *agg_window_of(const struct chids_watch *w, struct chids_agg_cfg *c,
							      __u64 ts, long nr, __u8 dir, __u32 n, __u64 *kout)
{
	__u64 t0 = c->t0;
	if (!t0) {
		// The same gate `record` applies: a command's stream starts at its exec.
		if (c->gated && !(nr == NR_execve && dir == DIR_ENTER))
			return 0;
		__sync_val_compare_and_swap(&c->t0, 0, ts);
		t0 = c->t0;
	}
	if (ts < t0)
		return 0; // before the stream's first event: in no window
	__u64 k = (ts - t0) / c->window_ns;
	if (k >= c->done + AGG_SLOTS) {
		// User space has not read the window this slot holds: losing
		// these events beats corrupting that window. Counted.
		count_n(CNT_AGG_LOST, n);
		return 0;
	}
	__u32 wi = w->slot * AGG_SLOTS + (__u32)(k & (AGG_SLOTS - 1));
	struct chids_agg_window *win = bpf_map_lookup_elem(&agg_windows, &wi);
	if (!win)
		return 0;
	if (win->window != k) {
		if (win->window > k && win->events) {
			win->late += n; // its slot holds a newer window: lost
			return 0;
		}
		__builtin_memset(win, 0, sizeof(*win));
		win->window = k;
	}
	__sync_fetch_and_add(&win->events, n);
	*kout = k;
	return win;
}

// The label of call `nr` from the family table (LBL_NONE: not in it).
static __always_inline __u32 agg_node_of(long nr)
{
	__u32 nrk = (__u32)nr;
	if (nr < 0 || nr >= NR_TABLE)
		return LBL_NONE;
	__u32 *node = bpf_map_lookup_elem(&agg_nodes, &nrk);
	return node && *node < LBL_USN ? *node : LBL_NONE;
}

// A decided `label` following `prev` in its thread (window `win`, index
// k): its node, and the edge, or a SUCC record when `prev` is pending.
static __always_inline void agg_link(const struct chids_watch *w, struct chids_agg_window *win, __u64 k, __u32 prev,
				     __u32 label, __u32 tid, __u32 pid, __u64 ts, long nr, __u8 dir, __u32 scr)
{
	bit_set(win->nodes, label);
	if (prev != LBL_NONE && (prev & LBL_PENDING)) {
		// The pending event before this one learns its successor.
		struct chids_agg_rec *s = agg_scratch_rec(scr);
		if (s) {
			s->watch = w->id;
			s->window = k;
			s->ts = ts;
			s->kind = AGG_SUCC;
			s->seq = prev & SEQ_MASK;
			s->prev = label;
			s->tid = tid;
			s->pid = pid;
			s->nr = (__s32)nr;
			s->dir = dir;
			agg_send(s, 0);
		}
	} else if (prev != LBL_NONE) {
		if (label == LBL_USN)
			bit_set(win->usn_pred, prev);
		if (prev == LBL_USN)
			bit_set(win->usn_succ, label);
	}
}

// The label before this event in thread `tid`, and its map entry (0 if none).
static __always_inline struct chids_agg_thread *agg_thread_of(__u32 tid, __u32 slot, __u64 k, __u32 *prev)
{
	struct chids_agg_thread *th = bpf_map_lookup_elem(&agg_threads, &tid);
	*prev = th && th->slot == slot && th->window == k ? th->label : LBL_NONE;
	return th;
}

static __always_inline void agg_thread_set(struct chids_agg_thread *th, __u32 tid, __u32 slot, __u64 k, __u32 label)
{
	if (th) {
		th->window = k;
		th->label = label;
		th->slot = slot;
	} else {
		struct chids_agg_thread t = { .window = k, .label = label, .slot = slot };
		bpf_map_update_elem(&agg_threads, &tid, &t, BPF_ANY);
	}
}

// Accounts one event of watch `w` at time `ts`. `r`: the scratch record
// with the raw argument in r->key (ARG_PATH/SOCK/COMM), or 0 for an event
// without one. `comm`: the name to report (0 = the current task's).
static __always_inline void agg_account(const struct chids_watch *w, __u32 tid, __u32 pid, __u64 ts,
					long nr, __u8 dir, struct chids_agg_rec *r, const char *comm, __u32 scr)
{
	__u32 slot = w->slot;
	struct chids_agg_cfg *c = bpf_map_lookup_elem(&agg_cfgs, &slot);
	if (!c || !c->window_ns)
		return;
	__u64 k = 0;
	struct chids_agg_window *win = agg_window_of(w, c, ts, nr, dir, 1, &k);
	if (!win)
		return;

	// The label, or pending for user space.
	__u32 label = agg_node_of(nr);
	if (label != LBL_NONE) {
		if (!bit_test(c->seen, label)) {
			bit_set(win->unseen, label);
			label = LBL_USN; // an unseen call's argument does not matter
		} else if (r) {
			r->arg_hash = arg_hash(&r->key);
			if (bpf_map_lookup_elem(&agg_args, &r->arg_hash))
				r = 0; // seen argument: the event is its node
		}
	}
	int pending = label == LBL_NONE || (r && label != LBL_USN);

	__u32 prev;
	struct chids_agg_thread *th = agg_thread_of(tid, slot, k, &prev);

	if (pending) {
		if (!r) {
			r = agg_arg_begin(slot, ARG_NR, scr);
			if (!r)
				return;
		}
		__u32 seq = (__u32)__sync_fetch_and_add(&agg_seq, 1) & SEQ_MASK;
		label = LBL_PENDING | seq;
		r->watch = w->id;
		r->window = k;
		r->ts = ts;
		r->kind = AGG_MISS;
		r->seq = seq;
		r->prev = prev;
		r->tid = tid;
		r->pid = pid;
		r->nr = (__s32)nr;
		r->dir = dir;
		if (comm)
			__builtin_memcpy(r->comm, comm, COMM_LEN);
		else
			bpf_get_current_comm(r->comm, sizeof(r->comm));
		agg_send(r, 1);
	} else {
		agg_link(w, win, k, prev, label, tid, pid, ts, nr, dir, scr);
	}
	agg_thread_set(th, tid, slot, k, label);
}

// An event without an argument, now, on the current thread.
// Not inlined: called from many places, and one copy keeps the programs
// (run on every watched call) small in the instruction cache.
static __noinline void agg_plain(const struct chids_watch *w, __u64 ts, long nr, __u8 dir, __u32 scr)
{
	if (!(w->flags & W_AGG))
		return;
	__u64 pt = bpf_get_current_pid_tgid();
	agg_account(w, (__u32)pt, pt >> 32, ts, nr, dir, 0, 0, scr);
}

// A call's enter and exit, neither with an argument, on the current thread
// at time `ts` (the common case of sys_exit): one window, one label and one
// thread-map round trip for both, where two agg_plain calls do each twice.
// The same as agg_plain(enter) then agg_plain(exit): the enter links to the
// thread's previous label, the exit to the enter (a self-edge).
static __noinline void agg_plain_pair(const struct chids_watch *w, __u64 ts, long nr, __u32 scr)
{
	if (!(w->flags & W_AGG))
		return;
	__u32 label = agg_node_of(nr);
	if (label == LBL_NONE) {
		// Outside the table: each event is a MISS record of its own.
		agg_plain(w, ts, nr, DIR_ENTER, scr);
		agg_plain(w, ts, nr, DIR_EXIT, scr);
		return;
	}
	__u32 slot = w->slot;
	struct chids_agg_cfg *c = bpf_map_lookup_elem(&agg_cfgs, &slot);
	if (!c || !c->window_ns)
		return;
	__u64 k = 0;
	struct chids_agg_window *win = agg_window_of(w, c, ts, nr, DIR_ENTER, 2, &k);
	if (!win)
		return;
	if (!bit_test(c->seen, label)) {
		bit_set(win->unseen, label);
		label = LBL_USN;
	}
	__u64 pt = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pt, prev;
	struct chids_agg_thread *th = agg_thread_of(tid, slot, k, &prev);
	agg_link(w, win, k, prev, label, tid, pt >> 32, ts, nr, DIR_ENTER, scr);
	if (label == LBL_USN) {
		// The exit's edge from its enter: USN -> USN.
		bit_set(win->usn_pred, LBL_USN);
		bit_set(win->usn_succ, LBL_USN);
	}
	agg_thread_set(th, tid, slot, k, label);
}
