// SPDX-License-Identifier: GPL-2.0
//
// What differs between the architectures chids' program is built for:
// syscall numbers of the families it reads arguments of, and where a
// syscall's arguments and number sit in the saved user registers. Built
// for x86-64 (run and tested) and arm64 (compiled in CI: tests/bpf_arch.rs;
// user space names syscalls from the x86-64 table only, so running on arm64
// needs that table too).
//
// Included by chids.bpf.c after vmlinux.h.

#if defined(__TARGET_ARCH_x86)

#define NR_open 2
#define NR_stat 4
#define NR_rt_sigreturn 15
#define NR_lstat 6
#define NR_connect 42
#define NR_accept 43
#define NR_sendto 44
#define NR_recvfrom 45
#define NR_bind 49
#define NR_clone 56
#define NR_fork 57
#define NR_vfork 58
#define NR_execve 59
#define NR_exit 60
#define NR_exit_group 231
#define NR_openat 257
#define NR_newfstatat 262
#define NR_accept4 288
#define NR_execveat 322
#define NR_statx 332
#define NR_clone3 435
#define NR_openat2 437

// Syscall arguments in the saved user registers (the syscall ABI: the
// fourth is r10, not rcx), read at exit, and the number, which survives in
// orig_ax (ax holds the return value at exit).
#define SYSCALL_ARG0(regs) BPF_CORE_READ(regs, di)
#define SYSCALL_ARG1(regs) BPF_CORE_READ(regs, si)
#define SYSCALL_ARG2(regs) BPF_CORE_READ(regs, dx)
#define SYSCALL_ARG4(regs) BPF_CORE_READ(regs, r8)
#define SYSCALL_ARG5(regs) BPF_CORE_READ(regs, r9)
#define SYSCALL_NR(regs) BPF_CORE_READ(regs, orig_ax)
// Inside a call (not returned yet): the entry stores -ENOSYS in ax until
// the call's result replaces it. (An interrupt leaves the user's ax there
// and an interrupt's vector in orig_ax, which can look like a call number.)
#define IN_SYSCALL(regs) ((long)BPF_CORE_READ(regs, ax) == -38)
#define HAVE_IA32 1
// ia32 numbers (arch/x86/entry/syscalls/syscall_32.tbl) read beside the
// x86-64 ones.
#define IA32_NR_exit 1
#define IA32_NR_exit_group 252
#define IA32_NR_rt_sigreturn 173

#elif defined(__TARGET_ARCH_arm64)

// The generic table (include/uapi/asm-generic/unistd.h). arm64 has no
// open, stat, lstat, fork or vfork: numbers no call has keep the
// switches below valid.
#define NR_open (-102)
#define NR_stat (-104)
#define NR_lstat (-106)
#define NR_fork (-157)
#define NR_vfork (-158)
#define NR_bind 200
#define NR_accept 202
#define NR_connect 203
#define NR_sendto 206
#define NR_recvfrom 207
#define NR_rt_sigreturn 139
#define NR_exit 93
#define NR_exit_group 94
#define NR_clone 220
#define NR_execve 221
#define NR_accept4 242
#define NR_newfstatat 79
#define NR_openat 56
#define NR_execveat 281
#define NR_statx 291
#define NR_clone3 435
#define NR_openat2 437

// x0 holds the result at exit; the first argument survives in orig_x0.
#define SYSCALL_ARG0(regs) BPF_CORE_READ(regs, orig_x0)
#define SYSCALL_ARG1(regs) BPF_CORE_READ(regs, regs[1])
#define SYSCALL_ARG2(regs) BPF_CORE_READ(regs, regs[2])
#define SYSCALL_ARG4(regs) BPF_CORE_READ(regs, regs[4])
#define SYSCALL_ARG5(regs) BPF_CORE_READ(regs, regs[5])
#define SYSCALL_NR(regs) BPF_CORE_READ(regs, syscallno)
// Every entry from user mode other than svc sets syscallno to NO_SYSCALL.
#define IN_SYSCALL(regs) 1
#define HAVE_IA32 0
#define IA32_NR_exit (-1)
#define IA32_NR_exit_group (-1)
#define IA32_NR_rt_sigreturn (-1)

#else
#error "chids' eBPF program is built for x86-64 and arm64 (define __TARGET_ARCH_x86 or __TARGET_ARCH_arm64)"
#endif
