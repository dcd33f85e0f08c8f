// SPDX-License-Identifier: GPL-2.0
//
// System calls, one program run each: the BTF raw tracepoint
// raw_syscalls:sys_exit emits the call's enter event and its exit event
// (see chids.bpf.c for the calls that need more than their exit). Both
// carry the one clock read of the run.
//
// Attached as `tp_btf`, not the classic `tracepoint/raw_syscalls/...`: the
// classic form first copies every event into a perf trace buffer for every
// task on the machine; measured here, that alone doubled the system time of
// `find /usr` outside any watched cgroup.
//
// Included by chids.bpf.c.

// The call's arguments as it entered, from the saved user registers
// (x86-64: di, si, dx, r10, r8, r9; ia32: bx, cx, dx, si, di, bp; see
// arch.bpf.h). The kernel reads them from there and does not write them
// back, except for the calls that replace the registers (a successful
// exec, rt_sigreturn), which are handled apart. Read once into locals: the
// verifier also rejects a variable index into an array of arguments.
struct call_args {
	__u64 a0, a1, a2, a4, a5;
};

static __always_inline void call_args_of(struct pt_regs *regs, int ia32, struct call_args *a)
{
	a->a0 = SYSCALL_ARG0(regs);
	a->a1 = SYSCALL_ARG1(regs);
	a->a2 = SYSCALL_ARG2(regs);
	a->a4 = SYSCALL_ARG4(regs);
	a->a5 = SYSCALL_ARG5(regs);
#if HAVE_IA32
	if (ia32) {
		a->a0 = (__u32)BPF_CORE_READ(regs, bx);
		a->a1 = (__u32)BPF_CORE_READ(regs, cx);
		a->a2 = (__u32)BPF_CORE_READ(regs, dx);
		a->a4 = (__u32)BPF_CORE_READ(regs, di);
		a->a5 = (__u32)BPF_CORE_READ(regs, bp);
	}
#endif
}

// The clone family's exit: user space names the new task by its comm.
static __always_inline int is_clone_family(long nr)
{
	return nr == NR_clone || nr == NR_fork || nr == NR_vfork || nr == NR_clone3;
}

// An event without payload, in both window paths. `enter`: F_WITH_ENTER
// when the record also stands for the call's enter (its aggregation is
// the caller's), else 0.
static __always_inline void plain_event(const struct chids_watch *w, long nr, __u8 dir, long ret, __u64 ts, __u8 enter)
{
	agg_plain(w, ts, nr, dir, SCR_EXIT);
	emit_small(w, nr, EMIT_HOW(dir, enter), ret, ts);
}

// A socket call's exit, with the address it named when there was one.
static __always_inline void socket_exit(const struct chids_watch *w, const struct call_args *a, long nr, long ret, __u64 ts,
					__u8 enter)
{
	__u64 ptr = 0, len = 0;
	switch (nr) {
	case NR_connect: case NR_bind:
		ptr = a->a1;
		len = a->a2;
		break;
	case NR_accept: case NR_accept4:
		ptr = a->a1;
		len = a->a2; // int *addrlen
		break;
	case NR_sendto: case NR_recvfrom:
		ptr = a->a4;
		len = a->a5; // recvfrom: int *addrlen
		break;
	}
	if (!ptr) {
		plain_event(w, nr, DIR_EXIT, ret, ts, enter);
		return;
	}
	if (nr == NR_accept || nr == NR_accept4 || nr == NR_recvfrom) {
		// Filled in by the kernel only on success; the length is in user memory.
		int n = 0;
		if (ret < 0 || !len || bpf_probe_read_user(&n, sizeof(n), (const void *)len)) {
			plain_event(w, nr, DIR_EXIT, ret, ts, enter);
			return;
		}
		len = n < 0 ? 0 : (__u64)n;
	}
	if (len > SOCKADDR_LEN)
		len = SOCKADDR_LEN;
	if (len < 2) {
		plain_event(w, nr, DIR_EXIT, ret, ts, enter);
		return;
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
			__u64 pt = bpf_get_current_pid_tgid();
			agg_account(w, (__u32)pt, pt >> 32, ts, nr, DIR_EXIT, r, 0, SCR_EXIT);
		}
	}
	if (!(w->flags & W_EMIT))
		return;
	struct event_path *e = path_event(EV_SCR_EXIT, w->id, nr, DIR_EXIT, ret, ts);
	if (!e)
		return;
	e->h.evflags |= F_HAS_SOCKADDR | enter;
	if (bpf_probe_read_user(e->path, len & (SOCKADDR_LEN * 2 - 1), (const void *)ptr)) {
		e->h.evflags |= F_PATH_FAULT;
		count(CNT_PATH_FAULT);
	} else {
		e->h.path_len = (__u16)len;
	}
	emit_path(e);
}

// A path call's exit (open and stat families), with its path and open
// flags, read now from the user memory the kernel has just read.
static __always_inline void path_exit(const struct chids_watch *w, const struct call_args *a, long nr, long ret, __u64 ts,
				      __u8 enter)
{
	__u64 ptr = 0, flags = 0;
	switch (nr) {
	case NR_open: ptr = a->a0; flags = a->a1; break;
	case NR_openat: ptr = a->a1; flags = a->a2; break;
	case NR_openat2:
		ptr = a->a1;
		// struct open_how { __u64 flags; ... } lives in user memory.
		bpf_probe_read_user(&flags, sizeof(flags), (const void *)a->a2);
		break;
	case NR_stat: case NR_lstat: ptr = a->a0; break;
	case NR_newfstatat: case NR_statx: ptr = a->a1; break;
	}

	if (w->flags & W_AGG) {
		struct chids_agg_rec *r = agg_arg_begin(w->slot, ARG_PATH, SCR_EXIT);
		if (r) {
			long n = bpf_probe_read_user_str(r->key.bytes, sizeof(r->key.bytes), (const void *)ptr);
			if (n <= 0) {
				r->key.bytes[0] = 0;
				n = 0;
			}
			r->key.len = (__u16)n;
			__u64 pt = bpf_get_current_pid_tgid();
			agg_account(w, (__u32)pt, pt >> 32, ts, nr, DIR_EXIT, r, 0, SCR_EXIT);
		}
	}
	if (!(w->flags & W_EMIT))
		return;
	struct event_path *e = path_event(EV_SCR_EXIT, w->id, nr, DIR_EXIT, ret, ts);
	if (!e)
		return;
	e->h.flags = (__u32)flags;
	e->h.evflags |= enter;
	read_path(e, ptr);
	emit_path(e);
}

// The clone family's exit, in the parent and in the new task.
static __always_inline void clone_exit(const struct chids_watch *w, long nr, long ret, __u64 ts, __u8 enter)
{
	if (w->flags & W_AGG) {
		struct chids_agg_rec *r = agg_arg_begin(w->slot, ARG_COMM, SCR_EXIT);
		if (r) {
			bpf_get_current_comm(r->key.bytes, COMM_LEN);
			r->key.len = COMM_LEN;
			__u64 pt = bpf_get_current_pid_tgid();
			agg_account(w, (__u32)pt, pt >> 32, ts, nr, DIR_EXIT, r, 0, SCR_EXIT);
		}
	}
	emit_small(w, nr, EMIT_HOW(DIR_EXIT, enter), ret, ts);
}

// A failed exec returns with its registers and memory: its enter event is
// emitted here, path from the old memory the kernel has just read. (A
// successful one's was emitted by chids_exec.)
static __always_inline void failed_exec_enter(const struct chids_watch *w, const struct call_args *a, long nr, __u64 ts)
{
	struct exec_call c = { .nr = (__s32)nr, .tid = (__u32)bpf_get_current_pid_tgid() };
	bpf_get_current_comm(c.comm, sizeof(c.comm));
	const void *fn = (const void *)(nr == NR_execveat ? a->a1 : a->a0);
	struct event_path *e = (w->flags & W_EMIT) ? exec_enter_event(&c, w->id, ts, EV_SCR_EXIT) : 0;
	if (e) {
		read_path(e, (__u64)fn);
		emit_path(e);
	}
	agg_exec_enter(w, &c, ts, fn, 0, SCR_EXIT);
}

// Both events of the call that just returned `ret`.
static __always_inline void sys_exit(const struct chids_watch *w, struct task_state *st, struct pt_regs *regs,
				     long ret, __u64 ts)
{
	long nr = SYSCALL_NR(regs);
	int ia32 = in_ia32_syscall();
	// rt_sigreturn restores the interrupted registers and sets orig_ax to
	// -1 ("no call"): at exit its number is gone, so its enter is named
	// here; its exit keeps the number the kernel left.
	long enter_nr = nr == -1 ? NR_rt_sigreturn : nr;
	if (ia32) {
		ret = (int)ret; // eax: sign-extend the 32-bit result
		enter_nr = nr == -1 ? NR_IA32_BASE + IA32_NR_rt_sigreturn : ia32_nr(nr);
		nr = ia32_nr(nr);
	}
	struct call_args a;
	if (nr == NR_execve || nr == NR_execveat) {
		if (st)
			st->exec.nr = NR_NONE; // taken by chids_exec, or stale
		if (ret != 0) {
			call_args_of(regs, ia32, &a);
			failed_exec_enter(w, &a, nr, ts);
		}
		plain_event(w, nr, DIR_EXIT, ret, ts, 0);
		return;
	}
	int clone = is_clone_family(nr);
	int socket = is_socket_family(nr), path = is_path_family(nr);
	// The enter rides on the exit's record (F_WITH_ENTER): one ring record
	// per call. Not for the new task's return from a clone, which never
	// entered, and not when the enter's number is not the exit's.
	__u8 enter = clone && ret == 0 ? 0 : F_WITH_ENTER;
	if (enter && enter_nr != nr) {
		plain_event(w, enter_nr, DIR_ENTER, 0, ts, 0);
		enter = 0;
	}
	if (!clone && !socket && !path) {
		// Most calls: two events without payload.
		if (enter)
			agg_plain_pair(w, ts, nr, SCR_EXIT);
		else
			agg_plain(w, ts, nr, DIR_EXIT, SCR_EXIT);
		if (w->flags & W_EMIT)
			emit_small(w, nr, EMIT_HOW(DIR_EXIT, enter), ret, ts);
		return;
	}
	if (enter)
		agg_plain(w, ts, nr, DIR_ENTER, SCR_EXIT);
	if (clone) {
		clone_exit(w, nr, ret, ts, enter);
	} else if (socket) {
		call_args_of(regs, ia32, &a);
		socket_exit(w, &a, nr, ret, ts, enter);
	} else {
		call_args_of(regs, ia32, &a);
		path_exit(w, &a, nr, ret, ts, enter);
	}
}

SEC("tp_btf/sys_exit")
int BPF_PROG(chids_sys_exit, struct pt_regs *regs, long ret)
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
	sys_exit(&w, st, regs, ret, ts);
	agg_exit(f, depth);
	return 0;
}
