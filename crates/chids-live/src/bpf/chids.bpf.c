// SPDX-License-Identifier: GPL-2.0
//
// chids live capture: every system call (enter and exit) of the processes in
// the watched cgroups, with the path argument of the families CHIDS uses and
// the socket address of the socket calls that name one.
//
// Filtering happens here, in the kernel, so the rest of the machine costs one
// hash lookup per syscall and nothing crosses to user space.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "chids_abi.h"

char LICENSE[] SEC("license") = "GPL";

// Deepest cgroup level we look for a watched ancestor at (root is level 0).
#define MAX_LEVELS 32

#include "arch.bpf.h"

// A 32-bit program's call (TS_COMPAT in thread_info.status) is reported as
// its x86-64 twin when it is one of the families above (its arguments read
// from the ia32 registers), else as NR_IA32_BASE + its ia32 number, so user
// space names it from the ia32 table (src/syscalls.rs): ia32 `open` is
// 5, which on x86-64 is `fstat`.
#define TS_COMPAT 0x0002

// An event with a payload, built in a per-CPU scratch (ev_scratch) and
// copied to the ring at its real length.
struct event_path {
	struct chids_event h;
	char path[PATH_LEN];
};

// One program run per system call: only the exit is hooked (sys_exit),
// and it emits both of the call's events, enter then exit, with one clock
// read. The arguments are still in the saved user registers at exit (the
// kernel reads them from there and does not write them back), and a path
// or address is read from user memory the kernel has just read itself.
//
// Three kinds of call need more than their exit:
//   - execve/execveat: after a successful exec the old address space and
//     registers are gone. The enter event is emitted by sched_process_exec
//     with the kernel's copy of the path (bprm->filename); the call and the
//     name before the exec are saved by task_rename, which the kernel hits
//     while the old name is still in place (struct exec_before). A failed
//     exec returns with its registers and memory intact: sys_exit emits both.
//   - exit/exit_group never return: their enter event comes from
//     sched_process_exit.
//   - the clone family returns twice: the new task's return (0) is the
//     exit event only, as the task never entered the call.
//
// What crosses an exec is kept in the calling task's storage (struct
// task_state), not in a hash map keyed by thread id: the task is at hand in
// every program, and it survives an exec by a non-leader thread, which
// changes the thread id but not the task.
struct exec_before {
	__s32 nr;            // execve or execveat; NR_NONE when taken
	__u32 pad;
	char comm[COMM_LEN]; // the name before the exec
};

#define NR_NONE (-1)

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024);
} events SEC(".maps");

// One event_path per program and CPU (EV_SCR_*): a program can be
// preempted by another one on its CPU, but does not nest with itself.
#define EV_SCR_EXIT 0
#define EV_SCR_EXEC 1
#define EV_SCR_IOU 2
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, struct event_path);
} ev_scratch SEC(".maps");

// Watched cgroup ids -> how they are captured: one lookup per event tells
// both whether and how.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct chids_watch);
} watched SEC(".maps");


struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_MAX);
	__type(key, __u32); // enum chids_counter (array keys must be plain ints)
	__type(value, __u64);
} counters SEC(".maps");

// Never read: puts the ABI's enums (chids_abi.h) into the object's BTF, and
// so into the Rust skeleton's types. (clang emits BTF only for types
// something in the object uses.)
const volatile struct {
	enum chids_limit limit;
	enum chids_dir dir;
	enum chids_event_flag event_flag;
	enum chids_counter counter;
	enum chids_watch_flag watch_flag;
	enum chids_agg_kind agg_kind;
	enum chids_arg_class arg_class;
	enum chids_label label;
} chids_abi_enums = {};

// Tasks (thread groups) that were moved out of every watched cgroup while
// watched, -> the watched cgroup they came from. They are followed: their
// events keep being captured, under that cgroup. A task cannot hide from
// chids by writing its pid into another cgroup's cgroup.procs.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} followed SEC(".maps");

// What a watched task carries between its programs.
struct task_state {
	// The watched cgroup it was last seen in (set at its first watched
	// syscall): after a move the task's cgroup is already the new one, so
	// this is how the move handler knows where it came from.
	__u64 watch;
	struct exec_before exec;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_state);
} task_states SEC(".maps");

// Set by user space before load.
const volatile __u32 self_tgid = 0;
// Bit i set: some watched cgroup sits at level i of the hierarchy, so an
// ancestor at that level may match. Updated at run time (it lives in .bss).
__u32 level_mask = 0;
// Set (by this program) once a task is followed, so that until then no
// unwatched task pays for the `followed` lookup.
__u32 following = 0;
// Bumped by user space after every change to `watched` (or level_mask).
__u64 watch_gen = 0;

// The last answer of watched_cgroup() on this CPU. Every system call on
// the machine asks it, and consecutive calls on a CPU mostly come from the
// same task: one array slot read replaces a hash lookup per level (and the
// answer is dropped when the task's cgroup or the watch set changes).
struct verdict {
	__u64 cgroup;
	__u64 gen;
	__u64 watched; // 0: not watched; else w is the answer
	struct chids_watch w;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct verdict);
} verdicts SEC(".maps");

// Waking the reader for every event costs the traced task a wakeup per
// syscall (measured: `find /usr` 5x slower). Instead each CPU wakes it once
// every WAKEUP_EVERY events; in between the reader polls on a short timeout.
// (Asking the ring how much is pending, bpf_ringbuf_query, reads the
// consumer position the reader keeps rewriting: a cache-line bounce per
// event, measured at ~300 ns. A per-CPU count costs nothing.)
#define WAKEUP_EVERY 2048

static __always_inline __u64 submit_flags(void)
{
	__u32 slot = CNT_SINCE_WAKEUP;
	__u64 *n = bpf_map_lookup_elem(&counters, &slot);
	if (n && ++*n >= WAKEUP_EVERY) {
		*n = 0;
		return BPF_RB_FORCE_WAKEUP;
	}
	return BPF_RB_NO_WAKEUP;
}

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &slot);
	if (v)
		*v += 1;
}

#include "aggregate.bpf.h"

// The watched cgroup this task belongs to (itself or any ancestor), 0 if none.
static __always_inline struct chids_watch *watched_cgroup_slow(__u64 cg)
{
	struct chids_watch *w = bpf_map_lookup_elem(&watched, &cg);
	if (w)
		return w;
	__u32 mask = level_mask;
	if (!mask)
		return 0;
	for (int i = 0; i < MAX_LEVELS; i++) {
		if (!(mask & (1u << i)))
			continue;
		__u64 anc = bpf_get_current_ancestor_cgroup_id(i);
		if (!anc)
			break; // deeper than the task's own cgroup
		w = bpf_map_lookup_elem(&watched, &anc);
		if (w)
			return w;
	}
	if (following) {
		__u32 tgid = bpf_get_current_pid_tgid() >> 32;
		__u64 *from = bpf_map_lookup_elem(&followed, &tgid);
		if (from)
			return bpf_map_lookup_elem(&watched, from);
	}
	return 0;
}

// Whether the current task is watched (1, and how in *out), through this
// CPU's verdict. (Not once a task is followed: that answer depends on the
// task, not its cgroup.)
static __always_inline int watched_cgroup(struct chids_watch *out)
{
	__u64 cg = bpf_get_current_cgroup_id();
	__u64 gen = watch_gen;
	__u32 zero = 0;
	struct verdict *v = following ? 0 : bpf_map_lookup_elem(&verdicts, &zero);
	if (v && v->cgroup == cg && v->gen == gen) {
		if (!v->watched)
			return 0;
		*out = v->w;
		return 1;
	}
	struct chids_watch *w = watched_cgroup_slow(cg);
	if (w)
		*out = *w;
	if (v) {
		v->cgroup = cg;
		v->gen = gen;
		v->watched = w != 0;
		if (w)
			v->w = *out;
	}
	return w != 0;
}

// struct cgroup's ancestors before and since Linux 6.2 (CO-RE flavours:
// the loader keeps the branch the running kernel has).
struct cgroup___ancestor_ids {
	__u64 ancestor_ids[0];
} __attribute__((preserve_access_index));
struct cgroup___ancestors {
	struct cgroup *ancestors[0];
} __attribute__((preserve_access_index));

// The id of `cg`'s ancestor at `level` (0: none).
static __always_inline __u64 ancestor_id(struct cgroup *cg, int level)
{
	struct cgroup___ancestors *now = (void *)cg;
	if (bpf_core_field_exists(now->ancestors)) {
		struct cgroup *anc = BPF_CORE_READ(now, ancestors[level]);
		return anc ? BPF_CORE_READ(anc, kn, id) : 0;
	}
	struct cgroup___ancestor_ids *old = (void *)cg;
	return BPF_CORE_READ(old, ancestor_ids[level]);
}

// The watched cgroup `cg` is (itself or an ancestor), 0 if none.
static __always_inline __u64 watched_of(struct cgroup *cg)
{
	if (!cg)
		return 0;
	__u64 id = BPF_CORE_READ(cg, kn, id);
	if (bpf_map_lookup_elem(&watched, &id))
		return id;
	int level = BPF_CORE_READ(cg, level);
	for (int i = 0; i < MAX_LEVELS; i++) {
		if (i >= level)
			break;
		id = ancestor_id(cg, i);
		if (!id)
			break;
		if (bpf_map_lookup_elem(&watched, &id))
			return id;
	}
	return 0;
}

// After a task (or its whole thread group) moved to another cgroup: if it
// came from a watched cgroup and left everything watched, follow it (and
// count it). (An fentry program on cgroup_attach_task would see the source
// cgroup directly, but needs BPF trampolines, which not every kernel has.)
SEC("tp_btf/cgroup_attach_task")
int BPF_PROG(chids_cgroup_attach, struct cgroup *dst, const char *path, struct task_struct *task, bool threadgroup)
{
	struct task_state *st = bpf_task_storage_get(&task_states, task, 0, 0);
	if (!st || !st->watch)
		return 0;
	if (watched_of(dst))
		return 0;
	__u32 tgid = BPF_CORE_READ(task, tgid);
	__u64 w = st->watch;
	bpf_map_update_elem(&followed, &tgid, &w, BPF_ANY);
	following = 1;
	count(CNT_MIGRATED);
	return 0;
}

// Children of a followed task are followed too.
SEC("tp_btf/sched_process_fork")
int BPF_PROG(chids_fork, struct task_struct *parent, struct task_struct *child)
{
	if (!following)
		return 0;
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	if (ptgid == ctgid)
		return 0;
	__u64 *w = bpf_map_lookup_elem(&followed, &ptgid);
	if (w) {
		__u64 from = *w;
		bpf_map_update_elem(&followed, &ctgid, &from, BPF_ANY);
	}
	return 0;
}

static __always_inline int is_path_family(long nr)
{
	switch (nr) {
	case NR_open: case NR_openat: case NR_openat2:
	case NR_stat: case NR_lstat: case NR_newfstatat: case NR_statx:
	case NR_execve: case NR_execveat:
		return 1;
	}
	return 0;
}

// The current task's state, made on its first watched call; notes which
// watched cgroup the task is in (see task_state).
static __always_inline struct task_state *remember_watch(__u64 watch)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct task_state *st = bpf_task_storage_get(&task_states, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (st && st->watch != watch)
		st->watch = watch;
	return st;
}

// The current task's state, if it has one.
static __always_inline struct task_state *current_state(void)
{
	return bpf_task_storage_get(&task_states, bpf_get_current_task_btf(), 0, 0);
}

static __always_inline int in_ia32_syscall(void)
{
#if HAVE_IA32
	struct task_struct *task = bpf_get_current_task_btf();
	return (task->thread_info.status & TS_COMPAT) != 0;
#else
	return 0;
#endif
}

// ia32 syscall numbers (arch/x86/entry/syscalls/syscall_32.tbl) to what
// this program reports.
static __always_inline long ia32_nr(long nr)
{
	switch (nr) {
	case 5: return NR_open;
	case 295: return NR_openat;
	case 437: return NR_openat2;
	case 106: case 195: return NR_stat;     // stat, stat64
	case 107: case 196: return NR_lstat;    // lstat, lstat64
	case 300: return NR_newfstatat;         // fstatat64
	case 383: return NR_statx;
	case 11: return NR_execve;
	case 358: return NR_execveat;
	case 120: return NR_clone;
	case 435: return NR_clone3;
	case 2: return NR_fork;
	case 190: return NR_vfork;
	}
	return NR_IA32_BASE + nr;
}

static __always_inline int is_socket_family(long nr)
{
	switch (nr) {
	case NR_connect: case NR_accept: case NR_accept4: case NR_bind:
	case NR_sendto: case NR_recvfrom:
		return 1;
	}
	return 0;
}

// `ts` is taken once per event and shared with the aggregation, so that a
// capture doing both (the equality test) puts the event in the same window.
static __always_inline void fill(struct chids_event *e, __u64 watch, long nr, __u8 dir, long ret, __u64 ts)
{
	__u64 pt = bpf_get_current_pid_tgid();
	e->ts = ts;
	e->watch = watch;
	e->ret = ret;
	e->flags = 0;
	e->pid = pt >> 32;
	e->tid = (__u32)pt;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->nr = (__s32)nr;
	e->dir = dir;
	e->evflags = 0;
	e->path_len = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
}

static __always_inline void read_path(struct event_path *e, __u64 ptr)
{
	long n = bpf_probe_read_user_str(e->path, sizeof(e->path), (const void *)ptr);
	if (n <= 0) {
		e->path[0] = 0;
		e->h.evflags |= F_PATH_FAULT;
		e->h.path_len = 0;
		count(CNT_PATH_FAULT);
	} else {
		e->h.path_len = (__u16)n;
	}
	e->h.evflags |= F_HAS_PATH;
}

// Not inlined, like agg_plain.
// `how`: the direction, and F_WITH_ENTER or 0 in the bits above it
// (EMIT_HOW; a BPF function takes at most five arguments).
#define EMIT_HOW(dir, evflags) ((__u32)(dir) | ((__u32)(evflags) << 8))
static __noinline int emit_small(const struct chids_watch *w, long nr, __u32 how, long ret, __u64 ts)
{
	if (!(w->flags & W_EMIT))
		return 0;
	struct chids_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(CNT_DROPPED);
		return 0;
	}
	fill(e, w->id, nr, (__u8)how, ret, ts);
	e->evflags = (__u8)(how >> 8);
	bpf_ringbuf_submit(e, submit_flags());
	return 0;
}

// The scratch event with a payload for program `scr`, filled like fill().
static __always_inline struct event_path *path_event(__u32 scr, __u64 watch, long nr, __u8 dir, long ret, __u64 ts)
{
	struct event_path *e = bpf_map_lookup_elem(&ev_scratch, &scr);
	if (e)
		fill(&e->h, watch, nr, dir, ret, ts);
	return e;
}

// Sends a scratch event: the header and path_len bytes of payload.
static __always_inline void emit_path(struct event_path *e)
{
	__u64 len = sizeof(e->h) + (e->h.path_len & (PATH_LEN - 1));
	if (e->h.path_len >= PATH_LEN)
		len = sizeof(*e);
	if (bpf_ringbuf_output(&events, e, len, submit_flags()))
		count(CNT_DROPPED);
}

#include "exec.bpf.h"
#include "syscall.bpf.h"
#include "iouring.bpf.h"
