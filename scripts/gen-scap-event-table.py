#!/usr/bin/env python3
"""Writes crates/chids-core/src/source/scap/events_gen.rs: the scap event table the native
reader decodes captures with, generated from the facts of a
falcosecurity/libs checkout.

Usage: [LIBS_COMMIT=sha] scripts/gen-scap-event-table.py LIBS_DRIVER_DIR [OUT.rs]

LIBS_DRIVER_DIR is the `driver/` folder of falcosecurity/libs; the script
reads three files there:
  - ppm_events_public.h: the event ids (enum ppm_event_code), the category
    and flag bits, and the syscall codes (PPM_SC_X list) that generic events
    carry;
  - event_table.c: per event id its name, category, flags (which events are
    EF_LARGE_PAYLOAD), and its parameters (name, type, print format, flag
    table or the dirfd a relative path is resolved against);
  - flags_table.c: the symbolic names of flag and enum values (PPM
    encodings), for the tables the event table names.

Only these facts are kept, in our own Rust form; the libs sources are not
committed. Enter and exit events pair up by id: even ids enter, odd exit.
Rerun when libs adds events (the output goes through rustfmt), then
`cargo test --release --lib scap::` checks it.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

# libs parameter type -> our PType variant.
PTYPES = {
    "PT_NONE": "ByteBuf",
    "PT_INT8": "I8",
    "PT_INT16": "I16",
    "PT_INT32": "I32",
    "PT_INT64": "I64",
    "PT_UINT8": "U8",
    "PT_UINT16": "U16",
    "PT_UINT32": "U32",
    "PT_UINT64": "U64",
    "PT_CHARBUF": "CharBuf",
    "PT_BYTEBUF": "ByteBuf",
    "PT_ERRNO": "Errno",
    "PT_SOCKADDR": "SockAddr",
    "PT_SOCKTUPLE": "SockTuple",
    "PT_FD": "Fd",
    "PT_FD32": "Fd",
    "PT_PID": "Pid",
    "PT_PID32": "Pid",
    "PT_FDLIST": "FdList",
    "PT_FSPATH": "FsPath",
    "PT_SYSCALLID": "SyscallId",
    "PT_SIGTYPE": "SigType",
    "PT_RELTIME": "RelTime",
    "PT_ABSTIME": "AbsTime",
    "PT_PORT": "U16",
    "PT_L4PROTO": "U8",
    "PT_SOCKFAMILY": "U8",
    "PT_BOOL": "U32",
    "PT_IPV4ADDR": "Ipv4Addr",
    "PT_DYN": "Dyn",
    "PT_FLAGS8": "Flags8",
    "PT_FLAGS16": "Flags16",
    "PT_FLAGS32": "Flags32",
    "PT_ENUMFLAGS8": "EnumFlags8",
    "PT_ENUMFLAGS16": "EnumFlags16",
    "PT_ENUMFLAGS32": "EnumFlags32",
    "PT_UID": "Uid",
    "PT_GID": "Gid",
    "PT_DOUBLE": "U64",
    "PT_SIGSET": "SigSet",
    "PT_CHARBUFARRAY": "CharBufArray",
    "PT_CHARBUF_PAIR_ARRAY": "CharBufPairArray",
    "PT_IPV4NET": "ByteBuf",
    "PT_IPV6ADDR": "Ipv6Addr",
    "PT_IPV6NET": "ByteBuf",
    "PT_IPADDR": "ByteBuf",
    "PT_IPNET": "ByteBuf",
    "PT_MODE": "Mode",
}

# Syscall codes whose PPM_SC_X identifier is not the name sysdig 0.29 printed.
PRINTED_NAMES = {283: "newselect", 292: "llseek", 298: "sigreturn"}

# libs print format -> our PFmt variant (the padded / id / dir formats print
# as decimal).
PFMTS = {"PF_DEC": "Dec", "PF_HEX": "Hex", "PF_OCT": "Oct", "PF_NA": "Na"}


def die(msg):
    sys.exit(f"gen-scap-event-table: {msg}")


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def event_ids(header):
    body = re.search(r"enum\s*{([^}]*)}\s*ppm_event_code\s*;", header, re.S)
    if not body:
        die("no ppm_event_code enum in ppm_events_public.h")
    ids = {}
    for name, val in re.findall(r"(PPME_\w+|PPM_EVENT_MAX)\s*=\s*(\d+)", body.group(1)):
        ids[name] = int(val)
    if "PPM_EVENT_MAX" not in ids:
        die("no PPM_EVENT_MAX")
    return ids


def enum_bits(header, enum):
    body = re.search(r"enum " + enum + r"\s*{(.*?)}", header, re.S)
    if not body:
        die(f"no enum {enum}")
    bits = {}
    for name, expr in re.findall(r"(E[CF]_\w+)\s*=\s*([^,\n]+)", body.group(1)):
        bits[name] = int(eval(expr.replace("/*", "#")))  # "(1 << 8)" or "34"
    return bits


def syscall_names(header):
    codes = {int(v): n.lower() for n, v in re.findall(r"PPM_SC_X\((\w+),\s*(\d+)\)", header)}
    if not codes:
        die("no PPM_SC_X list")
    top = max(codes)
    if sorted(codes) != list(range(top + 1)):
        die("PPM_SC_X codes are not contiguous")
    # Code 0 is printed as sysdig prints an unknown syscall.
    codes[0] = "<unknown>"
    # libs renamed a few codes after sysdig 0.29, which made the reference
    # dumps the parity tests compare with (tests/scap_parity.rs); the code is
    # the same call, so keep the name that sysdig printed for it.
    for code, old in PRINTED_NAMES.items():
        if codes.get(code) != old:
            codes[code] = old
    return [codes[i] for i in range(top + 1)]


def defines(header):
    """Evaluates the numeric macros and enum constants of the header."""
    text = strip_comments(header.replace("\\\n", " "))
    raw = dict(re.findall(r"^[ \t]*#define\s+([A-Z]\w+)[ \t]+([^\n]+)$", text, re.M))
    for name, expr in re.findall(r"^\s*([A-Z][A-Z0-9_]+)\s*=\s*([^,\n]+),", text, re.M):
        raw.setdefault(name, expr)
    values = {}

    def value(name, depth=0):
        if name in values:
            return values[name]
        if name not in raw or depth > 20:
            return None
        expr = re.sub(r"\b(0x[0-9a-fA-F]+|\d+)[uUlL]+\b", r"\1", raw[name].strip())
        expr = re.sub(r"\b0([0-7]+)\b", r"0o\1", expr)  # C octal
        for ref in set(re.findall(r"\b[A-Z][A-Z0-9_]+\b", expr)):
            v = value(ref, depth + 1)
            if v is None:
                return None
            expr = re.sub(r"\b" + ref + r"\b", str(v), expr)
        if not re.fullmatch(r"[\s0-9a-fA-FxXo()<>|&~+\-*]+", expr):
            return None
        try:
            values[name] = int(eval(expr))
        except Exception:
            return None
        return values[name]

    return value


def flag_tables(flags_c, value):
    """Every `ppm_name_value` table of flags_table.c whose values fit u32."""
    tables = {}
    text = strip_comments(flags_c)
    for name, body in re.findall(r"ppm_name_value\s+(\w+)\[\]\s*=\s*{(.*?)};", text, re.S):
        entries, ok = [], True
        for label, expr in re.findall(r'{\s*"([^"]*)"\s*,\s*([^}]+?)\s*}', body):
            v = value(expr)
            if v is None:
                try:
                    v = int(expr, 0)
                except ValueError:
                    ok = False
                    break
            if not 0 <= v <= 0xFFFF_FFFF:
                ok = False
                break
            entries.append((label, v))
        if ok and entries:
            tables[name] = entries
    return tables


def split_top(s, sep=","):
    """Splits on `sep` outside braces, parentheses and strings."""
    out, depth, cur, in_str = [], 0, [], False
    for ch in s:
        if in_str:
            cur.append(ch)
            if ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch in "{(":
            depth += 1
        elif ch in "})":
            depth -= 1
        if ch == sep and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return out


def entries(table_c):
    """Yields (enum name, body text) for every `[PPME_X] = {...}` entry."""
    text = strip_comments(table_c)
    start = text.find("g_event_info[]")
    if start < 0:
        die("no g_event_info[] in event_table.c")
    pos = start
    pat = re.compile(r"\[(PPME_\w+)\]\s*=\s*{")
    while True:
        m = pat.search(text, pos)
        if not m:
            return
        i, depth = m.end(), 1
        while depth:
            if i >= len(text):
                die(f"unbalanced braces in {m.group(1)}")
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        yield m.group(1), text[m.end() : i - 1]
        pos = i


def bits_of(expr, bits, what):
    total = 0
    for tok in re.split(r"\s*\|\s*", expr.strip()):
        if tok not in bits:
            die(f"unknown {what} {tok!r}")
        total |= bits[tok]
    return total


def parse_param(spec, event):
    fields = split_top(spec.strip()[1:-1])
    if len(fields) < 3 or not fields[0].startswith('"'):
        die(f"{event}: cannot read parameter {spec!r}")
    name, ptype, pfmt = fields[0].strip('"'), fields[1], fields[2]
    info = fields[3] if len(fields) > 3 else None
    if ptype not in PTYPES:
        die(f"{event}: unknown parameter type {ptype}")
    rust_ty = PTYPES[ptype]
    table = None
    if ptype == "PT_FSRELPATH":
        m = re.fullmatch(r"DIRFD_PARAM\((\d+)\)", info or "")
        if not m:
            die(f"{event}: relative path {name} without DIRFD_PARAM")
        rust_ty = f"FsRelPath({m.group(1)})"
    elif info and ptype in (
        "PT_FLAGS8", "PT_FLAGS16", "PT_FLAGS32",
        "PT_ENUMFLAGS8", "PT_ENUMFLAGS16", "PT_ENUMFLAGS32", "PT_MODE",
    ):
        table = info
    return name, rust_ty, PFMTS.get(pfmt, "Dec"), table


PTYPES["PT_FSRELPATH"] = "FsRelPath"


def main():
    if len(sys.argv) not in (2, 3):
        die("usage: gen-scap-event-table.py LIBS_DRIVER_DIR [OUT.rs]")
    driver = Path(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) == 3 else (
        Path(__file__).resolve().parent.parent / "crates/chids-core/src/source/scap/events_gen.rs"
    )
    for name in ("ppm_events_public.h", "event_table.c", "flags_table.c"):
        if not (driver / name).is_file():
            die(f"{driver / name}: not found (give the driver/ folder of falcosecurity/libs)")
    header = (driver / "ppm_events_public.h").read_text()
    table_c = (driver / "event_table.c").read_text()
    tables = flag_tables((driver / "flags_table.c").read_text(), defines(header))
    ids = event_ids(header)
    cats = enum_bits(header, "ppm_event_category")
    flags = enum_bits(header, "ppm_event_flags")
    count = ids.pop("PPM_EVENT_MAX")
    events = [None] * count
    for enum, body in entries(table_c):
        if enum not in ids:
            die(f"event {enum} has no id")
        f = split_top(body)
        if len(f) < 4:
            die(f"{enum}: short entry")
        name = f[0].strip('"')
        cat = bits_of(f[1], cats, "category")
        fl = bits_of(f[2], flags, "flag")
        n = int(f[3])
        params = [parse_param(p, enum) for p in split_top(f[4][1:-1])] if len(f) > 4 else []
        if len(params) != n:
            die(f"{enum}: says {n} parameters, lists {len(params)}")
        events[ids[enum]] = (enum, name, cat, fl, params)
    missing = [i for i, e in enumerate(events) if e is None]
    if missing:
        die(f"no table entry for ids {missing}")
    sc = syscall_names(header)

    w = []
    commit = os.environ.get("LIBS_COMMIT", "").strip()
    w.append("// @generated by scripts/gen-scap-event-table.py from falcosecurity/libs")
    w.append("// driver/event_table.c, flags_table.c and ppm_events_public.h")
    if commit:
        w.append(f"// (libs commit {commit}).")
    w.append("// Do not edit: rerun the script instead.")
    w.append("")
    w.append("use super::event_table::{EventInfo, PFmt, PType, ParamInfo};")
    w.append("")
    w.append("/// Category bits (`ppm_event_category`) the reader looks at.")
    for c in ("EC_INTERNAL", "EC_SYSCALL", "EC_PLUGIN", "EC_METAEVENT", "EC_ITER"):
        w.append(f"pub(crate) const {c}: u32 = {cats[c]:#x};")
    w.append("")
    w.append("const fn p(name: &'static str, ty: PType, fmt: PFmt, table: Option<&'static str>) -> ParamInfo {")
    w.append("    ParamInfo {")
    w.append("        name,")
    w.append("        ty,")
    w.append("        fmt,")
    w.append("        table,")
    w.append("    }")
    w.append("}")
    w.append("")
    w.append("/// Every event type, indexed by its id.")
    w.append(f"pub(crate) static EVENTS: [EventInfo; {count}] = [")
    for i, (enum, name, cat, fl, params) in enumerate(events):
        w.append(f"    // {i}: {enum}")
        w.append("    EventInfo {")
        w.append(f"        name: {rust_str(name)},")
        w.append(f"        category: {cat:#x},")
        w.append(f"        flags: {fl:#x},")
        w.append(f"        large: {'true' if fl & flags['EF_LARGE_PAYLOAD'] else 'false'},")
        if not params:
            w.append("        params: &[],")
        else:
            w.append("        params: &[")
            for pname, ty, fmt, table in params:
                t = f"Some({rust_str(table)})" if table else "None"
                w.append(f"            p({rust_str(pname)}, PType::{ty}, PFmt::{fmt}, {t}),")
            w.append("        ],")
        w.append("    },")
    w.append("];")
    w.append("")
    used = sorted({t for e in events for (_, _, _, t) in e[4] if t and t in tables})
    w.append("/// The flag tables of libs `flags_table.c` the event table names, in")
    w.append("/// libs' order (`(name, PPM value)`), by table name.")
    w.append("pub(crate) fn flag_table(name: &str) -> Option<&'static [(&'static str, u32)]> {")
    w.append("    Some(match name {")
    for t in used:
        w.append(f"        {rust_str(t)} => &[")
        for label, v in tables[t]:
            w.append(f"            ({rust_str(label)}, {v:#x}),")
        w.append("        ],")
    w.append("        _ => return None,")
    w.append("    })")
    w.append("}")
    w.append("")
    w.append("/// Syscall names by PPM syscall code, for generic events (`PT_SYSCALLID`).")
    w.append(f"pub(crate) static SYSCALLS: [&str; {len(sc)}] = [")
    for s in sc:
        w.append(f"    {rust_str(s)},")
    w.append("];")
    out.write_text("\n".join(w) + "\n")
    # Formatted as `cargo fmt` would, so CI's format check passes as written.
    subprocess.run(["rustfmt", "--edition", "2021", str(out)], check=True)
    print(f"wrote {out}: {count} event types, {len(used)} flag tables, {len(sc)} syscall codes")


def rust_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


if __name__ == "__main__":
    main()
