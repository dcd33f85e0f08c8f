//! Symbolic names sysdig prints beside numbers: flag tables (in the order
//! sysdig walks them, which decides the printed order), errno and signal
//! names. Values are the public PPM encodings (falcosecurity/libs
//! `ppm_events_public.h`, `flags_table.c`), written down in our own form.

pub type Flags = &'static [(&'static str, u32)];

pub fn flag_table(name: &str) -> Option<Flags> {
    Some(match name {
        "file" => FILE,
        "af" => AF,
        "clone" => CLONE,
        "futex" => FUTEX,
        "prot" => PROT,
        "mmap" => MMAP,
        "access" => ACCESS,
        "shutdown" => SHUTDOWN,
        "whence" => WHENCE,
        "rlimit" => RLIMIT,
        "fcntl" => FCNTL,
        "soklevel" => SOKLEVEL,
        "sokopt" => SOKOPT,
        "flock" => FLOCK,
        "splice" => SPLICE,
        "semop" => SEMOP,
        "semget" => SEMGET,
        "mount" => MOUNT,
        "umount" => UMOUNT,
        "unlinkat" => UNLINKAT,
        "linkat" => LINKAT,
        "chmod" => CHMOD,
        "execve" => EXECVE,
        _ => return None,
    })
}

const FILE: Flags = &[
    ("O_LARGEFILE", 1 << 11),
    ("O_DIRECTORY", 1 << 10),
    ("O_DIRECT", 1 << 9),
    ("O_TRUNC", 1 << 8),
    ("O_SYNC", 1 << 7),
    ("O_NONBLOCK", 1 << 6),
    ("O_EXCL", 1 << 5),
    ("O_DSYNC", 1 << 4),
    ("O_APPEND", 1 << 3),
    ("O_CREAT", 1 << 2),
    ("O_RDWR", 3),
    ("O_WRONLY", 2),
    ("O_RDONLY", 1),
    ("O_CLOEXEC", 1 << 12),
    ("O_NONE", 0),
    ("O_TMPFILE", 1 << 13),
    ("O_F_CREATED", 1 << 14),
];

const AF: Flags = &[
    ("AF_NFC", 39),
    ("AF_ALG", 38),
    ("AF_CAIF", 37),
    ("AF_IEEE802154", 36),
    ("AF_PHONET", 35),
    ("AF_ISDN", 34),
    ("AF_RXRPC", 33),
    ("AF_IUCV", 32),
    ("AF_BLUETOOTH", 31),
    ("AF_TIPC", 30),
    ("AF_CAN", 29),
    ("AF_LLC", 26),
    ("AF_WANPIPE", 25),
    ("AF_PPPOX", 24),
    ("AF_IRDA", 23),
    ("AF_SNA", 22),
    ("AF_RDS", 21),
    ("AF_ATMSVC", 20),
    ("AF_ECONET", 19),
    ("AF_ASH", 18),
    ("AF_PACKET", 17),
    ("AF_ROUTE", 16),
    ("AF_NETLINK", 16),
    ("AF_KEY", 15),
    ("AF_SECURITY", 14),
    ("AF_NETBEUI", 13),
    ("AF_DECnet", 12),
    ("AF_ROSE", 11),
    ("AF_INET6", 10),
    ("AF_X25", 9),
    ("AF_ATMPVC", 8),
    ("AF_BRIDGE", 7),
    ("AF_NETROM", 6),
    ("AF_APPLETALK", 5),
    ("AF_IPX", 4),
    ("AF_AX25", 3),
    ("AF_INET", 2),
    ("AF_LOCAL", 1),
    ("AF_UNIX", 1),
    ("AF_UNSPEC", 0),
];

const CLONE: Flags = &[
    ("CLONE_FILES", 1 << 0),
    ("CLONE_FS", 1 << 1),
    ("CLONE_IO", 1 << 2),
    ("CLONE_NEWIPC", 1 << 3),
    ("CLONE_NEWNET", 1 << 4),
    ("CLONE_NEWNS", 1 << 5),
    ("CLONE_NEWPID", 1 << 6),
    ("CLONE_NEWUTS", 1 << 7),
    ("CLONE_PARENT", 1 << 8),
    ("CLONE_PARENT_SETTID", 1 << 9),
    ("CLONE_PTRACE", 1 << 10),
    ("CLONE_SIGHAND", 1 << 11),
    ("CLONE_SYSVSEM", 1 << 12),
    ("CLONE_THREAD", 1 << 13),
    ("CLONE_UNTRACED", 1 << 14),
    ("CLONE_VM", 1 << 15),
    ("CLONE_INVERTED", 1 << 16),
    ("NAME_CHANGED", 1 << 17),
    ("CLOSED", 1 << 18),
    ("CLONE_NEWUSER", 1 << 19),
    ("CLONE_CHILD_CLEARTID", 1 << 23),
    ("CLONE_CHILD_SETTID", 1 << 24),
    ("CLONE_SETTLS", 1 << 25),
    ("CLONE_STOPPED", 1 << 26),
    ("CLONE_VFORK", 1 << 27),
    ("CLONE_NEWCGROUP", 1 << 28),
];

const FUTEX: Flags = &[
    ("FUTEX_CLOCK_REALTIME", 256),
    ("FUTEX_PRIVATE_FLAG", 128),
    ("FUTEX_CMP_REQUEUE_PI", 12),
    ("FUTEX_WAIT_REQUEUE_PI", 11),
    ("FUTEX_WAKE_BITSET", 10),
    ("FUTEX_WAIT_BITSET", 9),
    ("FUTEX_TRYLOCK_PI", 8),
    ("FUTEX_UNLOCK_PI", 7),
    ("FUTEX_LOCK_PI", 6),
    ("FUTEX_WAKE_OP", 5),
    ("FUTEX_CMP_REQUEUE", 4),
    ("FUTEX_REQUEUE", 3),
    ("FUTEX_FD", 2),
    ("FUTEX_WAKE", 1),
    ("FUTEX_WAIT", 0),
];

const PROT: Flags = &[
    ("PROT_READ", 1),
    ("PROT_WRITE", 2),
    ("PROT_EXEC", 4),
    ("PROT_SEM", 8),
    ("PROT_GROWSDOWN", 16),
    ("PROT_GROWSUP", 32),
    ("PROT_SAO", 64),
    ("PROT_NONE", 0),
];

const MMAP: Flags = &[
    ("MAP_SHARED", 1),
    ("MAP_PRIVATE", 2),
    ("MAP_FIXED", 4),
    ("MAP_ANONYMOUS", 8),
    ("MAP_32BIT", 16),
    ("MAP_RENAME", 32),
    ("MAP_NORESERVE", 64),
    ("MAP_POPULATE", 128),
    ("MAP_NONBLOCK", 256),
    ("MAP_GROWSDOWN", 512),
    ("MAP_DENYWRITE", 1024),
    ("MAP_EXECUTABLE", 2048),
    ("MAP_INHERIT", 4096),
    ("MAP_FILE", 8192),
    ("MAP_LOCKED", 16384),
];

const ACCESS: Flags = &[("F_OK", 0), ("R_OK", 4), ("W_OK", 2), ("X_OK", 1)];
const SHUTDOWN: Flags = &[("SHUT_RDWR", 2), ("SHUT_WR", 1), ("SHUT_RD", 0)];
const WHENCE: Flags = &[("SEEK_END", 2), ("SEEK_CUR", 1), ("SEEK_SET", 0)];

const RLIMIT: Flags = &[
    ("RLIMIT_UNKNOWN", 255),
    ("RLIMIT_RTTIME", 15),
    ("RLIMIT_RTPRIO", 14),
    ("RLIMIT_NICE", 13),
    ("RLIMIT_MSGQUEUE", 12),
    ("RLIMIT_SIGPENDING", 11),
    ("RLIMIT_LOCKS", 10),
    ("RLIMIT_AS", 9),
    ("RLIMIT_MEMLOCK", 8),
    ("RLIMIT_NOFILE", 7),
    ("RLIMIT_NPROC", 6),
    ("RLIMIT_RSS", 5),
    ("RLIMIT_CORE", 4),
    ("RLIMIT_STACK", 3),
    ("RLIMIT_DATA", 2),
    ("RLIMIT_FSIZE", 1),
    ("RLIMIT_CPU", 0),
];

const FCNTL: Flags = &[
    ("F_GETPIPE_SZ", 29),
    ("F_SETPIPE_SZ", 28),
    ("F_NOTIFY", 27),
    ("F_DUPFD_CLOEXEC", 26),
    ("F_CANCELLK", 25),
    ("F_GETLEASE", 24),
    ("F_SETLEASE", 23),
    ("F_GETOWN_EX", 22),
    ("F_SETOWN_EX", 21),
    ("F_GETSIG", 15),
    ("F_SETSIG", 13),
    ("F_GETOWN", 12),
    ("F_SETOWN", 10),
    ("F_SETLKW", 9),
    ("F_SETLK", 8),
    ("F_GETLK", 6),
    ("F_SETFL", 5),
    ("F_GETFL", 4),
    ("F_SETFD", 3),
    ("F_GETFD", 2),
    ("F_DUPFD", 1),
    ("F_OFD_GETLK", 30),
    ("F_OFD_SETLK", 31),
    ("F_OFD_SETLKW", 32),
    ("UNKNOWN", 0),
];

const SOKLEVEL: Flags = &[("SOL_SOCKET", 1), ("SOL_TCP", 2), ("UNKNOWN", 0)];

const SOKOPT: Flags = &[
    ("SO_COOKIE", 57),
    ("SO_MEMINFO", 55),
    ("SO_PEERGROUPS", 59),
    ("SO_ATTACH_BPF", 50),
    ("SO_INCOMING_CPU", 49),
    ("SO_BPF_EXTENSIONS", 48),
    ("SO_MAX_PACING_RATE", 47),
    ("SO_BUSY_POLL", 46),
    ("SO_SELECT_ERR_QUEUE", 45),
    ("SO_LOCK_FILTER", 44),
    ("SO_NOFCS", 43),
    ("SO_PEEK_OFF", 42),
    ("SO_WIFI_STATUS", 41),
    ("SO_RXQ_OVFL", 40),
    ("SO_DOMAIN", 39),
    ("SO_PROTOCOL", 38),
    ("SO_TIMESTAMPING", 37),
    ("SO_MARK", 36),
    ("SO_TIMESTAMPNS", 35),
    ("SO_PASSSEC", 34),
    ("SO_PEERSEC", 31),
    ("SO_ACCEPTCONN", 30),
    ("SO_TIMESTAMP", 29),
    ("SO_PEERNAME", 28),
    ("SO_DETACH_FILTER", 27),
    ("SO_ATTACH_FILTER", 26),
    ("SO_BINDTODEVICE", 25),
    ("SO_SECURITY_ENCRYPTION_NETWORK", 24),
    ("SO_SECURITY_ENCRYPTION_TRANSPORT", 23),
    ("SO_SECURITY_AUTHENTICATION", 22),
    ("SO_SNDTIMEO", 21),
    ("SO_RCVTIMEO", 20),
    ("SO_SNDLOWAT", 19),
    ("SO_RCVLOWAT", 18),
    ("SO_PEERCRED", 17),
    ("SO_PASSCRED", 16),
    ("SO_REUSEPORT", 15),
    ("SO_BSDCOMPAT", 14),
    ("SO_LINGER", 13),
    ("SO_PRIORITY", 12),
    ("SO_NO_CHECK", 11),
    ("SO_OOBINLINE", 10),
    ("SO_KEEPALIVE", 9),
    ("SO_RCVBUFFORCE", 33),
    ("SO_SNDBUFFORCE", 32),
    ("SO_RCVBUF", 8),
    ("SO_SNDBUF", 7),
    ("SO_BROADCAST", 6),
    ("SO_DONTROUTE", 5),
    ("SO_ERROR", 4),
    ("SO_TYPE", 3),
    ("SO_REUSEADDR", 2),
    ("SO_DEBUG", 1),
    ("UNKNOWN", 0),
];

const FLOCK: Flags = &[
    ("LOCK_SH", 1),
    ("LOCK_EX", 2),
    ("LOCK_NB", 4),
    ("LOCK_UN", 8),
    ("LOCK_NONE", 0),
];
const SPLICE: Flags = &[
    ("SPLICE_F_MOVE", 1),
    ("SPLICE_F_NONBLOCK", 2),
    ("SPLICE_F_MORE", 4),
    ("SPLICE_F_GIFT", 8),
];
const SEMOP: Flags = &[("IPC_NOWAIT", 1), ("SEM_UNDO", 2)];
const SEMGET: Flags = &[("IPC_EXCL", 1), ("IPC_CREAT", 2)];
const MOUNT: Flags = &[
    ("RDONLY", 1),
    ("NOSUID", 2),
    ("NODEV", 4),
    ("NOEXEC", 8),
    ("SYNCHRONOUS", 16),
    ("REMOUNT", 32),
    ("MANDLOCK", 64),
    ("DIRSYNC", 128),
    ("NOATIME", 1024),
    ("NODIRATIME", 2048),
    ("BIND", 4096),
    ("MOVE", 8192),
    ("REC", 16384),
    ("SILENT", 32768),
];
const UMOUNT: Flags = &[("FORCE", 1), ("DETACH", 2), ("EXPIRE", 4), ("NOFOLLOW", 8)];
const UNLINKAT: Flags = &[("AT_REMOVEDIR", 0x200)];
const LINKAT: Flags = &[("AT_SYMLINK_FOLLOW", 0x400), ("AT_EMPTY_PATH", 0x1000)];
const CHMOD: Flags = &[
    ("S_IXOTH", 1),
    ("S_IWOTH", 2),
    ("S_IROTH", 4),
    ("S_IXGRP", 8),
    ("S_IWGRP", 16),
    ("S_IRGRP", 32),
    ("S_IXUSR", 64),
    ("S_IWUSR", 128),
    ("S_IRUSR", 256),
    ("S_ISVTX", 512),
    ("S_ISGID", 1024),
    ("S_ISUID", 2048),
];
const EXECVE: Flags = &[
    ("EXE_WRITABLE", 1),
    ("EXE_UPPER_LAYER", 2),
    ("EXE_FROM_MEMFD", 4),
];

/// Renders `val` against `table` the way sysdig does: walk the table,
/// collect every entry whose bits are all set (consuming them, so `O_RDWR`
/// is not also printed as `O_WRONLY|O_RDONLY`), and stop at an exact match,
/// which is appended last. A zero entry matches only a zero value.
pub fn render_flags(table: Flags, val: u32, out: &mut String) {
    let mut rest = val;
    let mut first = true;
    let mut push = |name: &str, out: &mut String| {
        if !first {
            out.push('|');
        }
        first = false;
        out.push_str(name);
    };
    for &(name, fv) in table {
        if fv == val {
            push(name, out);
            return;
        }
        if fv != 0 && rest != 0 && rest & fv == fv {
            push(name, out);
            rest &= !fv;
        }
    }
}

pub fn errno_name(e: i64) -> Option<&'static str> {
    const NAMES: [&str; 134] = [
        "", "EPERM", "ENOENT", "ESRCH", "EINTR", "EIO", "ENXIO", "E2BIG", "ENOEXEC", "EBADF",
        "ECHILD", "EAGAIN", "ENOMEM", "EACCES", "EFAULT", "ENOTBLK", "EBUSY", "EEXIST", "EXDEV",
        "ENODEV", "ENOTDIR", "EISDIR", "EINVAL", "ENFILE", "EMFILE", "ENOTTY", "ETXTBSY",
        "EFBIG", "ENOSPC", "ESPIPE", "EROFS", "EMLINK", "EPIPE", "EDOM", "ERANGE", "EDEADLK",
        "ENAMETOOLONG", "ENOLCK", "ENOSYS", "ENOTEMPTY", "ELOOP", "", "ENOMSG", "EIDRM",
        "ECHRNG", "EL2NSYNC", "EL3HLT", "EL3RST", "ELNRNG", "EUNATCH", "ENOCSI", "EL2HLT",
        "EBADE", "EBADR", "EXFULL", "ENOANO", "EBADRQC", "EBADSLT", "", "EBFONT", "ENOSTR",
        "ENODATA", "ETIME", "ENOSR", "ENONET", "ENOPKG", "EREMOTE", "ENOLINK", "EADV", "ESRMNT",
        "ECOMM", "EPROTO", "EMULTIHOP", "EDOTDOT", "EBADMSG", "EOVERFLOW", "ENOTUNIQ", "EBADFD",
        "EREMCHG", "ELIBACC", "ELIBBAD", "ELIBSCN", "ELIBMAX", "ELIBEXEC", "EILSEQ", "ERESTART",
        "ESTRPIPE", "EUSERS", "ENOTSOCK", "EDESTADDRREQ", "EMSGSIZE", "EPROTOTYPE",
        "ENOPROTOOPT", "EPROTONOSUPPORT", "ESOCKTNOSUPPORT", "EOPNOTSUPP", "EPFNOSUPPORT",
        "EAFNOSUPPORT", "EADDRINUSE", "EADDRNOTAVAIL", "ENETDOWN", "ENETUNREACH", "ENETRESET",
        "ECONNABORTED", "ECONNRESET", "ENOBUFS", "EISCONN", "ENOTCONN", "ESHUTDOWN",
        "ETOOMANYREFS", "ETIMEDOUT", "ECONNREFUSED", "EHOSTDOWN", "EHOSTUNREACH", "EALREADY",
        "EINPROGRESS", "ESTALE", "EUCLEAN", "ENOTNAM", "ENAVAIL", "EISNAM", "EREMOTEIO",
        "EDQUOT", "ENOMEDIUM", "EMEDIUMTYPE", "ECANCELED", "ENOKEY", "EKEYEXPIRED",
        "EKEYREVOKED", "EKEYREJECTED", "EOWNERDEAD", "ENOTRECOVERABLE", "ERFKILL",
        "EHWPOISON",
    ];
    match e {
        512 => Some("ERESTARTSYS"),
        513 => Some("ERESTARTNOINTR"),
        514 => Some("ERESTARTNOHAND"),
        515 => Some("ENOIOCTLCMD"),
        516 => Some("ERESTART_RESTARTBLOCK"),
        1..=133 => Some(NAMES[e as usize]).filter(|s| !s.is_empty()),
        _ => None,
    }
}

pub fn signal_name(s: u64) -> Option<&'static str> {
    const NAMES: [&str; 32] = [
        "", "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE",
        "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT",
        "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU",
        "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS",
    ];
    NAMES.get(s as usize).copied().filter(|n| !n.is_empty())
}
