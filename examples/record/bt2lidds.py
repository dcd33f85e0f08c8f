#!/usr/bin/env python3
"""Convert the output of chids-record.bt into a LID-DS 2021 recording.

    bt2lidds.py --raw RAW --offset-ns N --name NAME --out DIR \
        --container-ready T --warmup-end T --recording-time S \
        [--exploit T --exploit-name NAME]

Writes DIR/NAME.zip holding NAME.sc and NAME.json, in the shape of the
public LID-DS 2021 files:

    .sc   one event a line: ts_ns uid pid proc tid syscall dir args...
          (dir '>' enter, '<' exit; every line ends with a space, as there)
    .json {"container": [...], "exploit": bool, "exploit_name": ...,
           "image": ..., "recording_time": ..., "time": {"container_ready":
           {...}, "exploit": [{"absolute", "name", "relative", "source"}],
           "warmup_end": {...}}}

RAW lines (TAB separated, see chids-record.bt):
    E ts uid pid tid nr arg0 comm path
    X ts uid pid tid nr ret  comm path [dirfd flags]
ts is CLOCK_MONOTONIC (bpftrace nsecs); --offset-ns (CLOCK_REALTIME minus
CLOCK_MONOTONIC, measured when the recording started) turns it into Unix
epoch nanoseconds. bpftrace prints per-CPU buffers, so events are sorted by
time (stable) before conversion. sys_exit reports syscall id -1 after
rt_sigreturn; such exits take the name of the thread's previous enter.

Prints one summary line (events, enter/exit, lost) on stdout; exits 2 when
bpftrace reported lost events and --allow-lost is not given.
"""

import argparse
import errno
import json
import os
import re
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))

OPEN_FAMILY = {"open", "openat", "openat2"}
STAT_FAMILY = {"stat", "lstat", "newfstatat", "statx"}
EXEC_FAMILY = {"execve", "execveat"}
CLONE_FAMILY = {"clone", "clone3", "fork", "vfork"}
# enter events of these carry fd=<arg0>, as sysdig's do
FD_ENTER = {
    "read", "write", "close", "fstat", "lseek", "pread64", "pwrite64",
    "readv", "writev", "sendto", "recvfrom", "sendmsg", "recvmsg",
    "shutdown", "getsockname", "getpeername", "setsockopt", "getsockopt",
    "fcntl", "ioctl", "getdents64", "fsync", "fdatasync", "ftruncate",
    "fchdir", "fchmod", "fchown", "listen", "bind", "connect", "accept",
    "accept4", "epoll_wait", "epoll_pwait", "epoll_ctl", "dup", "dup2",
    "dup3", "flock", "fstatfs", "sendfile", "splice", "fadvise64",
}

OPEN_FLAGS = [  # (mask, name) after the access mode; Linux x86-64 values
    (0o100, "O_CREAT"), (0o200, "O_EXCL"), (0o400, "O_NOCTTY"),
    (0o1000, "O_TRUNC"), (0o2000, "O_APPEND"), (0o4000, "O_NONBLOCK"),
    (0o10000, "O_DSYNC"), (0o20000, "O_ASYNC"), (0o40000, "O_DIRECT"),
    (0o100000, "O_LARGEFILE"), (0o200000, "O_DIRECTORY"),
    (0o400000, "O_NOFOLLOW"), (0o1000000, "O_NOATIME"),
    (0o2000000, "O_CLOEXEC"), (0o10000000, "O_PATH"),
]
AT_FLAGS = [(0x100, "AT_SYMLINK_NOFOLLOW"), (0x800, "AT_NO_AUTOMOUNT"),
            (0x1000, "AT_EMPTY_PATH")]


def load_syscalls():
    table = {}
    with open(os.path.join(HERE, "syscalls_x86_64.tsv")) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            nr, name = line.split()
            table[int(nr)] = name
    return table


def s32(v):
    v = int(v) & 0xFFFFFFFF
    return v - (1 << 32) if v >= (1 << 31) else v


def res_str(ret):
    if -4095 <= ret < 0:
        name = errno.errorcode.get(-ret)
        if name:
            return "%d(%s)" % (ret, name)
    return str(ret)


def open_flags_str(flags):
    names = [("O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE")[flags & 3]]
    names += [n for m, n in OPEN_FLAGS if flags & m]
    return "%d(%s)" % (flags, "|".join(names))


def at_flags_str(flags):
    names = [n for m, n in AT_FLAGS if flags & m]
    return "%d(%s)" % (flags, "|".join(names)) if names else str(flags)


def dirfd_str(d):
    return "-100(AT_FDCWD)" if d == -100 else str(d)


def clean(s):
    """One token: sysdig keeps paths raw, but a comm with blanks would shift
    the fixed columns, so blanks become '_' there (paths here have none)."""
    return re.sub(r"\s", "_", s) if s else s


def convert_line(f, syscalls, last_enter):
    kind, ts, uid, pid, tid, nr, val, comm = f[:8]
    path = f[8] if len(f) > 8 else "-"
    if int(nr) < 0 and kind == "X":
        # sys_exit reports id -1 after rt_sigreturn (it resets orig_ax):
        # name it after the thread's last enter
        name = last_enter.get(tid, "rt_sigreturn")
    else:
        name = syscalls.get(int(nr), "syscall_%s" % nr)
    if kind == "E":
        last_enter[tid] = name
    comm = clean(comm) or "<NA>"
    args = []
    if kind == "E":
        d = ">"
        if name in EXEC_FAMILY:
            args.append("filename=" + path)
        elif name in FD_ENTER:
            args.append("fd=%d" % s32(val))
    else:
        d = "<"
        ret = int(val)
        if name in OPEN_FAMILY:
            dirfd, flags = int(f[9]), int(f[10])
            if ret >= 0:
                args.append("fd=%d(<f>%s)" % (ret, path))
            else:
                args.append("fd=" + res_str(ret))
            args.append("name=" + path)
            if name != "open":
                args.append("dirfd=" + dirfd_str(dirfd))
            if name != "openat2":
                args.append("flags=" + open_flags_str(flags))
        elif name in STAT_FAMILY:
            dirfd, flags = int(f[9]), int(f[10])
            args.append("res=" + res_str(ret))
            args.append("path=" + path)
            if name in ("newfstatat", "statx"):
                args.append("dirfd=" + dirfd_str(dirfd))
                args.append("flags=" + at_flags_str(flags))
        elif name in EXEC_FAMILY:
            args.append("res=" + res_str(ret))
            if ret == 0:
                args.append("exe=" + (path if path not in ("", "-") else comm))
            args.append("comm=" + comm)
        elif name in CLONE_FAMILY:
            args.append("res=" + res_str(ret))
            args.append("exe=" + (path if path not in ("", "-") else comm))
            args.append("tid=%s(%s)" % (tid, comm))
            args.append("pid=%s(%s)" % (pid, comm))
            args.append("comm=" + comm)
        else:
            args.append("res=" + res_str(ret))
    return int(ts), [uid, pid, comm, tid, name, d], args


def time_entry(absolute, warmup_end, source="CONTROL_SCRIPT", name=None):
    e = {"absolute": absolute, "relative": absolute - warmup_end,
         "source": source}
    if name is not None:
        e["name"] = name
    return e


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--raw", required=True)
    ap.add_argument("--offset-ns", type=int, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--container-ready", type=float, required=True)
    ap.add_argument("--warmup-end", type=float, required=True)
    ap.add_argument("--recording-time", type=int, required=True)
    ap.add_argument("--container-name", default="chids-example")
    ap.add_argument("--image", default="chids_example_python_http_server")
    ap.add_argument("--exploit", type=float)
    ap.add_argument("--exploit-name", default="default")
    ap.add_argument("--allow-lost", action="store_true")
    a = ap.parse_args()

    syscalls = load_syscalls()
    raw = []
    lost = 0
    bad = 0
    with open(a.raw, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            m = re.search(r"Lost (\d+) events", line)
            if m:
                lost += int(m.group(1))
                continue
            if not line or line[0] not in "EX" or line[1:2] != "\t":
                continue
            fields = line.split("\t")
            if len(fields) < 9 or not fields[1].isdigit():
                bad += 1
                continue
            raw.append(fields)
    # bpftrace prints per-CPU buffers: sort by time first (stable, so the
    # print order decides ties), then convert in time order
    raw.sort(key=lambda fl: int(fl[1]))
    events = []
    last_enter = {}
    for fields in raw:
        try:
            ts, head, args = convert_line(fields, syscalls, last_enter)
        except (ValueError, IndexError):
            bad += 1
            continue
        events.append((ts + a.offset_ns, head, args))
    if not events:
        sys.exit("bt2lidds: no events in %s" % a.raw)

    lines = []
    for ts, head, args in events:
        lines.append("%d %s %s" % (ts, " ".join(head),
                                   "".join(x + " " for x in args)))
    sc = "\n".join(lines) + "\n"

    meta = {
        "container": [{"ip": "127.0.0.1", "name": a.container_name,
                       "role": "victim"}],
        "exploit": a.exploit is not None,
        "exploit_name": a.exploit_name if a.exploit is not None else "no exploit",
        "image": a.image,
        "recording_time": a.recording_time,
        "time": {
            "container_ready": time_entry(a.container_ready, a.warmup_end),
            "exploit": ([time_entry(a.exploit, a.warmup_end, name="attack")]
                        if a.exploit is not None else []),
            "warmup_end": time_entry(a.warmup_end, a.warmup_end),
        },
    }
    os.makedirs(a.out, exist_ok=True)
    zpath = os.path.join(a.out, a.name + ".zip")
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED,
                         compresslevel=9) as z:
        z.writestr(a.name + ".json",
                   json.dumps(meta, indent=4, sort_keys=True) + "\n")
        z.writestr(a.name + ".sc", sc)
    n_enter = sum(1 for e in events if e[1][5] == ">")
    print("%s events=%d enter=%d exit=%d lost=%d unparsed=%d zip_bytes=%d"
          % (a.name, len(events), n_enter, len(events) - n_enter, lost, bad,
             os.path.getsize(zpath)))
    if lost and not a.allow_lost:
        sys.exit(2)


if __name__ == "__main__":
    main()
