// SPDX-License-Identifier: GPL-2.0
//
// io_uring operations as events. A program can open, read, connect and
// more without one system call per operation (io_uring_enter submits a
// batch; with SQPOLL it needs none), so watching system calls alone shows
// only io_uring_setup / io_uring_enter, never the path or the peer.
//
// Hook: the io_uring_submit_req tracepoint, hit once per submitted request
// after its preparation, in the submitting context: the io_uring_enter
// caller, or the ring's SQPOLL thread (a thread of the same process, so in
// the same cgroup). Preparation has already copied what the request names
// into the kernel (struct filename for paths), so the path is read from
// kernel memory; whether the kernel then completes the request inline or on
// an io-wq worker does not matter, as the event is taken at submission.
//
// An operation is event NR_IOURING_BASE + its opcode, direction enter (a
// submission: its result comes later, on the completion queue), with the
// payload its syscall twin has: a path for openat/openat2/statx (also
// unlinkat, renameat, mkdirat, symlinkat, linkat), a socket address for
// connect and bind. User space names it io_uring_<op> (src/syscalls.rs).
//
// Included by chids.bpf.c after aggregate.bpf.h.

// Opcodes (enum io_uring_op, include/uapi/linux/io_uring.h): uapi, stable;
// spelled out because older vmlinux.h headers lack the newer ones.
#define IOU_OP_ACCEPT 13
#define IOU_OP_CONNECT 16
#define IOU_OP_OPENAT 18
#define IOU_OP_STATX 21
#define IOU_OP_OPENAT2 28
#define IOU_OP_RENAMEAT 35
#define IOU_OP_UNLINKAT 36
#define IOU_OP_MKDIRAT 37
#define IOU_OP_SYMLINKAT 38
#define IOU_OP_LINKAT 39
#define IOU_OP_BIND 56

// Kernels before 6.11 have no IORING_OP_BIND; CO-RE flavours of what it
// reads, so the program builds and loads without them.
struct io_bind___chids {
	int addr_len;
} __attribute__((preserve_access_index));

// The kernel copy of the address a connect or bind request names.
struct io_async_msghdr___chids {
	struct {
		char bytes[SOCKADDR_LEN];
	} addr;
} __attribute__((preserve_access_index));

// What a request names, found from its prepared command.
struct iou_arg {
	const char *path;  // kernel string (struct filename's name), or 0
	const void *addr;  // socket address, or 0
	__u32 addr_len;
	__u32 addr_kernel; // addr is kernel memory (else the submitter's)
	__u32 agg_class;   // ARG_PATH / ARG_SOCK when the model reads it, else ARG_NONE
	__u64 flags;       // open flags
};

static __always_inline const char *filename_of(struct filename *fn)
{
	return fn ? BPF_CORE_READ(fn, name) : 0;
}

// Finds the path or address request `req` (opcode `op`) names.
static __always_inline void iou_arg_of(struct io_kiocb *req, __u8 op, struct iou_arg *a)
{
	void *cmd = (void *)__builtin_preserve_access_index(&req->cmd);
	switch (op) {
	case IOU_OP_OPENAT: case IOU_OP_OPENAT2: {
		struct io_open *o = cmd;
		a->path = filename_of(BPF_CORE_READ(o, filename));
		a->flags = BPF_CORE_READ(o, how.flags);
		a->agg_class = ARG_PATH;
		break;
	}
	case IOU_OP_STATX:
		a->path = filename_of(BPF_CORE_READ((struct io_statx *)cmd, filename));
		a->agg_class = ARG_PATH;
		break;
	case IOU_OP_UNLINKAT:
		a->path = filename_of(BPF_CORE_READ((struct io_unlink *)cmd, filename));
		break;
	case IOU_OP_MKDIRAT:
		a->path = filename_of(BPF_CORE_READ((struct io_mkdir *)cmd, filename));
		break;
	case IOU_OP_RENAMEAT:
		a->path = filename_of(BPF_CORE_READ((struct io_rename *)cmd, oldpath));
		break;
	case IOU_OP_LINKAT:
		a->path = filename_of(BPF_CORE_READ((struct io_link *)cmd, oldpath));
		break;
	case IOU_OP_SYMLINKAT: // oldpath is the link's text; newpath the link made
		a->path = filename_of(BPF_CORE_READ((struct io_link *)cmd, newpath));
		break;
	case IOU_OP_CONNECT: {
		struct io_connect *c = cmd;
		a->addr = BPF_CORE_READ(c, addr);
		a->addr_len = BPF_CORE_READ(c, addr_len);
		a->agg_class = ARG_SOCK;
		break;
	}
	case IOU_OP_BIND:
		if (bpf_core_type_exists(struct io_bind___chids)) {
			struct io_async_msghdr___chids *m = BPF_CORE_READ(req, async_data);
			a->addr_len = BPF_CORE_READ((struct io_bind___chids *)cmd, addr_len);
			a->addr = m ? (const void *)__builtin_preserve_access_index(&m->addr) : 0;
			a->addr_kernel = 1;
			a->agg_class = ARG_SOCK;
		}
		break;
	}
	if (a->addr_len > SOCKADDR_LEN)
		a->addr_len = SOCKADDR_LEN;
	if (a->addr && a->addr_len < 2)
		a->addr = 0;
}

// Reads the address into `dst` (SOCKADDR_LEN * 2 bytes): 0 on success.
static __always_inline long iou_read_addr(void *dst, const struct iou_arg *a)
{
	__u32 n = a->addr_len & (SOCKADDR_LEN * 2 - 1);
	return a->addr_kernel ? bpf_probe_read_kernel(dst, n, a->addr)
			      : bpf_probe_read_user(dst, n, a->addr);
}

// The kernel-window side of one operation.
static __always_inline void iou_aggregate(const struct chids_watch *w, const struct iou_arg *a, long nr, __u64 ts)
{
	if (!(w->flags & W_AGG))
		return;
	if (a->agg_class == ARG_NONE || (!a->path && !a->addr)) {
		agg_plain(w, ts, nr, DIR_ENTER, SCR_IOU);
		return;
	}
	struct chids_agg_rec *r = agg_arg_begin(w->slot, a->agg_class, SCR_IOU);
	if (!r)
		return;
	if (a->path) {
		long n = bpf_probe_read_kernel_str(r->key.bytes, sizeof(r->key.bytes), a->path);
		r->key.len = n > 0 ? (__u16)n : 0;
	} else if (iou_read_addr(r->key.bytes, a)) {
		r = 0; // unreadable: the event has no address, as in a record
	} else {
		r->key.len = (__u16)a->addr_len;
	}
	__u64 pt = bpf_get_current_pid_tgid();
	agg_account(w, (__u32)pt, pt >> 32, ts, nr, DIR_ENTER, r, 0, SCR_IOU);
}

// The per-event side of one operation.
static __always_inline void iou_emit(const struct chids_watch *w, const struct iou_arg *a, long nr, __u64 ts)
{
	if (!(w->flags & W_EMIT))
		return;
	if (!a->path && !a->addr) {
		emit_small(w, nr, EMIT_HOW(DIR_ENTER, 0), 0, ts);
		return;
	}
	struct event_path *e = path_event(EV_SCR_IOU, w->id, nr, DIR_ENTER, 0, ts);
	if (!e)
		return;
	if (a->path) {
		e->h.flags = (__u32)a->flags;
		long n = bpf_probe_read_kernel_str(e->path, sizeof(e->path), a->path);
		e->h.evflags |= F_HAS_PATH;
		if (n <= 0) {
			e->path[0] = 0;
			e->h.evflags |= F_PATH_FAULT;
			count(CNT_PATH_FAULT);
		} else {
			e->h.path_len = (__u16)n;
		}
	} else {
		e->h.evflags |= F_HAS_SOCKADDR;
		if (iou_read_addr(e->path, a)) {
			e->h.evflags |= F_PATH_FAULT;
			count(CNT_PATH_FAULT);
		} else {
			e->h.path_len = (__u16)a->addr_len;
		}
	}
	emit_path(e);
}

SEC("tp_btf/io_uring_submit_req")
int BPF_PROG(chids_iouring_submit, struct io_kiocb *req)
{
	if ((bpf_get_current_pid_tgid() >> 32) == self_tgid)
		return 0;
	struct chids_watch w;
	if (!watched_cgroup(&w))
		return 0;
	remember_watch(w.id);
	__u8 op = BPF_CORE_READ(req, opcode);
	long nr = NR_IOURING_BASE + op;
	struct iou_arg a = {};
	iou_arg_of(req, op, &a);
	__u64 ts;
	__u32 depth;
	struct chids_agg_flight *f = agg_enter(&w, &ts, &depth);
	iou_aggregate(&w, &a, nr, ts);
	iou_emit(&w, &a, nr, ts);
	agg_exit(f, depth);
	return 0;
}
