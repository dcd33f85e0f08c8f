// SPDX-License-Identifier: GPL-2.0
//
// The enter events sys_exit cannot emit (see chids.bpf.c): a successful
// exec's (its old registers and memory are gone at exit) and exit /
// exit_group's (they never return). Each is one more program run per exec
// or per task exit, not per system call.
//
// Included by chids.bpf.c, before syscall.bpf.h.

// The facts of an exec's enter event.
struct exec_call {
	__s32 nr;            // execve or execveat
	__u32 tid;           // the calling thread (an exec can change it)
	char comm[COMM_LEN]; // the name before the exec
};

// The exec's enter event in the scratch `scr`, at time `ts`.
static __always_inline struct event_path *exec_enter_event(const struct exec_call *c, __u64 watch, __u64 ts, __u32 scr)
{
	struct event_path *e = path_event(scr, watch, c->nr, DIR_ENTER, 0, ts);
	if (!e)
		return 0;
	e->h.tid = c->tid;
	__builtin_memcpy(e->h.comm, c->comm, COMM_LEN);
	return e;
}

// The exec's enter, aggregated: `fn` is the path (kernel memory when
// `kernel`, else the caller's memory).
static __always_inline void agg_exec_enter(const struct chids_watch *w, const struct exec_call *c, __u64 ts,
					   const void *fn, int kernel, __u32 scr)
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
	agg_account(w, c->tid, pt >> 32, ts, c->nr, DIR_ENTER, r, c->comm, scr);
}

// The call the current task is in (its saved orig_ax), as reported.
static __always_inline long current_call(struct pt_regs *regs)
{
	long nr = SYSCALL_NR(regs);
	return in_ia32_syscall() ? ia32_nr(nr) : nr;
}

// An exec renames its task (begin_new_exec) after the point of no return,
// while the old name is still in place and before the new program's
// registers replace the call's (a 64-bit program's set_personality even
// rewrites orig_ax to execve): the last moment both are known. Also hit by
// prctl(PR_SET_NAME) and writes to /proc/PID/comm, which are not execs.
SEC("tp_btf/task_rename")
int BPF_PROG(chids_rename, struct task_struct *task, const char *comm)
{
	__u64 pt = bpf_get_current_pid_tgid();
	if ((pt >> 32) == self_tgid || BPF_CORE_READ(task, pid) != (__u32)pt)
		return 0;
	struct chids_watch w;
	if (!watched_cgroup(&w))
		return 0;
	long nr = current_call((struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf()));
	if (nr != NR_execve && nr != NR_execveat)
		return 0;
	struct task_state *st = remember_watch(w.id);
	if (!st)
		return 0;
	st->exec.nr = (__s32)nr;
	bpf_get_current_comm(st->exec.comm, sizeof(st->exec.comm));
	return 0;
}

// A successful exec: its enter event, with the kernel's copy of the path.
SEC("tp_btf/sched_process_exec")
int BPF_PROG(chids_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	if ((bpf_get_current_pid_tgid() >> 32) == self_tgid)
		return 0;
	struct chids_watch w;
	if (!watched_cgroup(&w))
		return 0;
	struct task_state *st = remember_watch(w.id);
	// old_pid: the thread that called exec (a non-leader takes over the
	// leader's id).
	struct exec_call c = { .nr = NR_execve, .tid = (__u32)old_pid };
	if (st && (st->exec.nr == NR_execve || st->exec.nr == NR_execveat)) {
		c.nr = st->exec.nr;
		__builtin_memcpy(c.comm, st->exec.comm, COMM_LEN);
		st->exec.nr = NR_NONE;
	} else {
		// Not renamed since watched (the watch began mid-exec): the new name.
		count(CNT_EXEC_UNMATCHED);
		bpf_get_current_comm(c.comm, sizeof(c.comm));
	}
	__u64 ts;
	__u32 depth;
	struct chids_agg_flight *f = agg_enter(&w, &ts, &depth);
	const char *fn = BPF_CORE_READ(bprm, filename);
	struct event_path *e = (w.flags & W_EMIT) ? exec_enter_event(&c, w.id, ts, EV_SCR_EXEC) : 0;
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
	agg_exec_enter(&w, &c, ts, fn, 1, SCR_EXEC);
	agg_exit(f, depth);
	return 0;
}

// A task ends: if it is in exit or exit_group, that call's enter event (the
// call never returns to sys_exit). A task killed by a signal is in no call
// (or in one that has already returned -EINTR through sys_exit): nothing.
SEC("tp_btf/sched_process_exit")
int BPF_PROG(chids_task_exit, struct task_struct *task)
{
	if ((bpf_get_current_pid_tgid() >> 32) == self_tgid)
		return 0;
	struct chids_watch w;
	if (!watched_cgroup(&w))
		return 0;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	if (!IN_SYSCALL(regs))
		return 0;
	long nr = SYSCALL_NR(regs);
	if (in_ia32_syscall())
		nr = nr == IA32_NR_exit || nr == IA32_NR_exit_group ? NR_IA32_BASE + nr : -1;
	else if (nr != NR_exit && nr != NR_exit_group)
		nr = -1;
	if (nr == -1)
		return 0;
	__u64 ts;
	__u32 depth;
	struct chids_agg_flight *f = agg_enter(&w, &ts, &depth);
	agg_plain(&w, ts, nr, DIR_ENTER, SCR_TASK_EXIT);
	emit_small(&w, nr, EMIT_HOW(DIR_ENTER, 0), 0, ts);
	agg_exit(f, depth);
	return 0;
}
