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

// What sys_enter saves for sys_exit: the user pointer of the path (read at
// exit, when the kernel has already faulted the page in) and the flags.
//
// execve/execveat are different: their enter event is deferred. After a
// successful exec the old address space (and the user pointer) is gone, and
// reading at enter fails when the page is not resident. So sys_enter keeps
// the enter event's facts here, and the enter event is emitted either by
// sched_process_exec (success: the path comes from bprm->filename, kernel
// memory, always readable) or by sys_exit (failure: the old memory is still
// there and the kernel has just read the string).
// Kept in the calling task's storage (struct task_state), not in a hash map
// keyed by thread id: the task is at hand in every program, so saving and
// taking it back costs no hashing, no LRU bookkeeping and no copy of the
// key (measured: the LRU map's update, lookup and delete were ~10 % of
// `find`'s time under monitor). It also survives an exec by a non-leader
// thread, which changes the thread id but not the task.
struct pending {
	__u64 ptr;     // path, or the struct sockaddr of a socket call
	__u64 flags;   // open flags; socket calls: the address length, or for
	               // accept/recvfrom the user pointer to it
	__u64 ts;      // execve: time of the enter
	__u32 tid;     // execve: thread at enter (exec can change it)
	__s32 nr;      // the call it belongs to; NR_NONE when taken
	char comm[COMM_LEN]; // execve: name before exec
};

#define NR_NONE (-1)

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024);
} events SEC(".maps");

// One event_path per program and CPU (EV_SCR_*): a program can be
// preempted by another one on its CPU, but does not nest with itself.
#define EV_SCR_ENTER 0
#define EV_SCR_EXIT 1
#define EV_SCR_EXEC 2
#define EV_SCR_IOU 3
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
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
	struct pending pending;
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

// Takes the call `nr`'s pending facts out of the task's state: 1 if they
// were there (a call that entered before the capture has none).
static __always_inline int take_pending(long nr, struct pending *out)
{
	struct task_state *st = current_state();
	if (!st || st->pending.nr != nr)
		return 0;
	*out = st->pending;
	st->pending.nr = NR_NONE;
	return 1;
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
static __noinline int emit_small(const struct chids_watch *w, long nr, __u8 dir, long ret, __u64 ts)
{
	if (!(w->flags & W_EMIT))
		return 0;
	struct chids_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(CNT_DROPPED);
		return 0;
	}
	fill(e, w->id, nr, dir, ret, ts);
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

// BTF-enabled raw tracepoints on raw_syscalls:sys_enter / sys_exit. The
// classic `tracepoint/raw_syscalls/...` form first copies every event into a
// perf trace buffer for every task on the machine; measured here, that
// alone doubled the system time of `find /usr` outside any watched cgroup.
static __always_inline int sys_enter(const struct chids_watch *w, struct task_state *st, struct pt_regs *regs, long id, __u64 ts)
{
	int ia32 = in_ia32_syscall();
	long nr = ia32 ? ia32_nr(id) : id;
	if (is_socket_family(nr)) {
		// The address is read at exit: accept and recvfrom only fill it
		// in then, and for the others the kernel has faulted it in.
		__u64 addr = 0, len = 0;
		switch (nr) {
		case NR_connect: case NR_bind:
			addr = SYSCALL_ARG1(regs);
			len = SYSCALL_ARG2(regs);
			break;
		case NR_accept: case NR_accept4:
			addr = SYSCALL_ARG1(regs);
			len = SYSCALL_ARG2(regs); // int *addrlen
			break;
		case NR_sendto: case NR_recvfrom:
			addr = SYSCALL_ARG4(regs);
			len = SYSCALL_ARG5(regs); // recvfrom: int *addrlen
			break;
		}
		if (addr && st) {
			st->pending.ptr = addr;
			st->pending.flags = len;
			st->pending.nr = (__s32)nr;
		}
		agg_plain(w, ts, nr, DIR_ENTER, SCR_ENTER);
		return emit_small(w, nr, DIR_ENTER, 0, ts);
	}
	if (!is_path_family(nr)) {
		agg_plain(w, ts, nr, DIR_ENTER, SCR_ENTER);
		return emit_small(w, nr, DIR_ENTER, 0, ts);
	}

	// Read once into locals (the verifier also rejects a variable index
	// into an args array).
	__u64 a0 = SYSCALL_ARG0(regs);
	__u64 a1 = SYSCALL_ARG1(regs);
	__u64 a2 = SYSCALL_ARG2(regs);
#if HAVE_IA32
	// ia32 passes them in ebx, ecx, edx.
	if (ia32) {
		a0 = (__u32)BPF_CORE_READ(regs, bx);
		a1 = (__u32)BPF_CORE_READ(regs, cx);
		a2 = (__u32)BPF_CORE_READ(regs, dx);
	}
#endif
	__u64 ptr = 0, flags = 0;
	switch (nr) {
	case NR_open: ptr = a0; flags = a1; break;
	case NR_openat: ptr = a1; flags = a2; break;
	case NR_openat2: {
		ptr = a1;
		// struct open_how { __u64 flags; ... } lives in user memory.
		bpf_probe_read_user(&flags, sizeof(flags), (const void *)a2);
		break;
	}
	case NR_stat: case NR_lstat: case NR_execve: ptr = a0; break;
	case NR_newfstatat: case NR_statx: case NR_execveat: ptr = a1; break;
	}

	if (st) {
		st->pending.ptr = ptr;
		st->pending.flags = flags;
		st->pending.nr = (__s32)nr;
	}
	if (nr == NR_execve || nr == NR_execveat) {
		// Deferred: see struct pending. (Without a task state there is
		// nothing to emit it from; chids_exec counts it as unmatched.)
		if (st) {
			st->pending.ts = ts;
			st->pending.tid = (__u32)bpf_get_current_pid_tgid();
			bpf_get_current_comm(st->pending.comm, sizeof(st->pending.comm));
		}
		return 0;
	}
	agg_plain(w, ts, nr, DIR_ENTER, SCR_ENTER);
	return emit_small(w, nr, DIR_ENTER, 0, ts);
}

SEC("tp_btf/sys_enter")
int BPF_PROG(chids_sys_enter, struct pt_regs *regs, long id)
{
	if ((bpf_get_current_pid_tgid() >> 32) == self_tgid)
		return 0;
	struct chids_watch w;
	if (!watched_cgroup(&w))
		return 0;
	struct task_state *st = remember_watch(w.id);
	__u64 ts;
	__u32 depth;
	struct chids_agg_flight *f = agg_enter(&w, &ts, &depth);
	sys_enter(&w, st, regs, id, ts);
	agg_exit(f, depth);
	return 0;
}

// The deferred execve enter event, with the facts saved at enter.
static __always_inline struct event_path *exec_enter_event(struct pending *p, __u64 watch, __u32 scr)
{
	struct event_path *e = path_event(scr, watch, p->nr, DIR_ENTER, 0, p->ts);
	if (!e)
		return 0;
	e->h.tid = p->tid;
	__builtin_memcpy(e->h.comm, p->comm, COMM_LEN);
	return e;
}

// The deferred execve enter, aggregated: `fn` is the path (kernel memory
// when `kernel`, else the caller's memory).
static __always_inline void agg_exec_enter(const struct chids_watch *w, struct pending *p, const void *fn, int kernel, __u32 scr)
{
	if (!(w->flags & W_AGG))
		return;
	struct chids_agg_rec *r = agg_arg_begin(w->slot, ARG_EXEC, scr);
	if (!r)
		return;
	long n = kernel ? bpf_probe_read_kernel_str(r->key.bytes, sizeof(r->key.bytes), fn)
			: bpf_probe_read_user_str(r->key.bytes, sizeof(r->key.bytes), fn);
	if (n <= 0) {
		r->key.bytes[0] = 0;
		n = 0;
	}
	r->key.len = (__u16)n;
	__u64 pt = bpf_get_current_pid_tgid();
	agg_account(w, p->tid, pt >> 32, p->ts, p->nr, DIR_ENTER, r, p->comm, scr);
}

// A successful exec: emit its enter event with the kernel's copy of the path.
SEC("tp_btf/sched_process_exec")
int BPF_PROG(chids_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	__u64 pt = bpf_get_current_pid_tgid();
	if ((pt >> 32) == self_tgid)
		return 0;
	// The task that called execve (its thread id may have changed: a
	// non-leader takes over the leader's).
	struct pending taken;
	struct pending *p = &taken;
	if (!take_pending(NR_execve, p) && !take_pending(NR_execveat, p)) {
		struct chids_watch w;
		if (watched_cgroup(&w))
			count(CNT_EXEC_UNMATCHED);
		return 0;
	}
	struct chids_watch w;
	if (watched_cgroup(&w)) {
		__u64 watch = w.id;
		__u64 ts;
		__u32 depth;
		struct chids_agg_flight *f = agg_enter(&w, &ts, &depth);
		if (f)
			f->entry[depth & 3] = p->ts; // the event's time is the enter's
		const char *fn = BPF_CORE_READ(bprm, filename);
		struct event_path *e = (w.flags & W_EMIT) ? exec_enter_event(p, watch, EV_SCR_EXEC) : 0;
		if (e) {
			long n = bpf_probe_read_kernel_str(e->path, sizeof(e->path), fn);
			e->h.evflags |= F_HAS_PATH;
			if (n <= 0) {
				e->path[0] = 0;
				e->h.evflags |= F_PATH_FAULT;
				count(CNT_PATH_FAULT);
			} else {
				e->h.path_len = (__u16)n;
			}
			emit_path(e);
		}
		agg_exec_enter(&w, p, fn, 1, SCR_EXEC);
		agg_exit(f, depth);
	}
	return 0;
}

// A socket call's exit, with the address it named when there was one.
static __always_inline int socket_exit(const struct chids_watch *w, long nr, long ret, __u64 ts)
{
	__u64 key = bpf_get_current_pid_tgid();
	struct pending p;
	if (!take_pending(nr, &p)) {
		agg_plain(w, ts, nr, DIR_EXIT, SCR_EXIT);
		return emit_small(w, nr, DIR_EXIT, ret, ts);
	}
	__u64 ptr = p.ptr, len = p.flags;
	if (nr == NR_accept || nr == NR_accept4 || nr == NR_recvfrom) {
		// Filled in by the kernel only on success; the length is in user memory.
		int n = 0;
		if (ret < 0 || !len || bpf_probe_read_user(&n, sizeof(n), (const void *)len)) {
			agg_plain(w, ts, nr, DIR_EXIT, SCR_EXIT);
			return emit_small(w, nr, DIR_EXIT, ret, ts);
		}
		len = n < 0 ? 0 : (__u64)n;
	}
	if (len > SOCKADDR_LEN)
		len = SOCKADDR_LEN;
	if (len < 2) {
		agg_plain(w, ts, nr, DIR_EXIT, SCR_EXIT);
		return emit_small(w, nr, DIR_EXIT, ret, ts);
	}

	if (w->flags & W_AGG) {
		struct chids_agg_rec *r = agg_arg_begin(w->slot, ARG_SOCK, SCR_EXIT);
		if (r) {
			if (bpf_probe_read_user(r->key.bytes, len & (SOCKADDR_LEN * 2 - 1), (const void *)ptr)) {
				// Unreadable: the event has no address, as in a record.
				r = 0;
			} else {
				r->key.len = (__u16)len;
			}
			agg_account(w, (__u32)key, key >> 32, ts, nr, DIR_EXIT, r, 0, SCR_EXIT);
		}
	}
	if (!(w->flags & W_EMIT))
		return 0;
	struct event_path *e = path_event(EV_SCR_EXIT, w->id, nr, DIR_EXIT, ret, ts);
	if (!e)
		return 0;
	e->h.evflags |= F_HAS_SOCKADDR;
	if (bpf_probe_read_user(e->path, len & (SOCKADDR_LEN * 2 - 1), (const void *)ptr)) {
		e->h.evflags |= F_PATH_FAULT;
		count(CNT_PATH_FAULT);
	} else {
		e->h.path_len = (__u16)len;
	}
	emit_path(e);
	return 0;
}

// The clone family's exit: user space names the new task by its comm.
static __always_inline int is_clone_family(long nr)
{
	return nr == NR_clone || nr == NR_fork || nr == NR_vfork || nr == NR_clone3;
}

static __always_inline int sys_exit(const struct chids_watch *w, struct pt_regs *regs, long ret, __u64 ts)
{
	long nr = SYSCALL_NR(regs);
	if (in_ia32_syscall()) {
		nr = ia32_nr(nr);
		ret = (int)ret; // eax: sign-extend the 32-bit result
	}
	if (is_socket_family(nr))
		return socket_exit(w, nr, ret, ts);
	if (!is_path_family(nr)) {
		if ((w->flags & W_AGG) && is_clone_family(nr)) {
			struct chids_agg_rec *r = agg_arg_begin(w->slot, ARG_COMM, SCR_EXIT);
			if (r) {
				bpf_get_current_comm(r->key.bytes, COMM_LEN);
				r->key.len = COMM_LEN;
				__u64 pt = bpf_get_current_pid_tgid();
				agg_account(w, (__u32)pt, pt >> 32, ts, nr, DIR_EXIT, r, 0, SCR_EXIT);
			}
		} else {
			agg_plain(w, ts, nr, DIR_EXIT, SCR_EXIT);
		}
		return emit_small(w, nr, DIR_EXIT, ret, ts);
	}

	__u64 key = bpf_get_current_pid_tgid();
	struct pending p;
	int have = take_pending(nr, &p);
	if (nr == NR_execve || nr == NR_execveat) {
		// Still pending: the exec failed (or succeeded before we attached).
		// Emit the deferred enter event now, path from the old memory the
		// kernel has just read, then the exit.
		if (have) {
			struct event_path *e = (w->flags & W_EMIT) ? exec_enter_event(&p, w->id, EV_SCR_EXIT) : 0;
			if (e) {
				read_path(e, p.ptr);
				emit_path(e);
			}
			agg_exec_enter(w, &p, (const void *)p.ptr, 0, SCR_EXIT);
		}
		agg_plain(w, ts, nr, DIR_EXIT, SCR_EXIT);
		return emit_small(w, nr, DIR_EXIT, ret, ts);
	}
	if (!have) {
		// Entered before we attached: no path.
		agg_plain(w, ts, nr, DIR_EXIT, SCR_EXIT);
		return emit_small(w, nr, DIR_EXIT, ret, ts);
	}
	__u64 ptr = p.ptr, flags = p.flags;

	if (w->flags & W_AGG) {
		struct chids_agg_rec *r = agg_arg_begin(w->slot, ARG_PATH, SCR_EXIT);
		if (r) {
			long n = bpf_probe_read_user_str(r->key.bytes, sizeof(r->key.bytes), (const void *)ptr);
			if (n <= 0) {
				r->key.bytes[0] = 0;
				n = 0;
			}
			r->key.len = (__u16)n;
			agg_account(w, (__u32)key, key >> 32, ts, nr, DIR_EXIT, r, 0, SCR_EXIT);
		}
	}
	if (!(w->flags & W_EMIT))
		return 0;
	struct event_path *e = path_event(EV_SCR_EXIT, w->id, nr, DIR_EXIT, ret, ts);
	if (!e)
		return 0;
	e->h.flags = (__u32)flags;
	read_path(e, ptr);
	emit_path(e);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(chids_sys_exit, struct pt_regs *regs, long ret)
{
	if ((bpf_get_current_pid_tgid() >> 32) == self_tgid)
		return 0;
	struct chids_watch w;
	if (!watched_cgroup(&w))
		return 0;
	__u64 ts;
	__u32 depth;
	struct chids_agg_flight *f = agg_enter(&w, &ts, &depth);
	sys_exit(&w, regs, ret, ts);
	agg_exit(f, depth);
	return 0;
}

#include "iouring.bpf.h"
