#!/usr/bin/env python3
"""Check the example recordings: verify.py [DATA_DIR]   (default: ../data)

Per zip: it opens and holds <name>.sc and <name>.json; every .sc line has at
least 7 whitespace tokens, a numeric time, '>' or '<' as token 7; the share
of lines whose time is not below the previous one (monotonic) is reported;
open-family exits carry name=<non-empty path> as token 2. Attack markers
(any execve, or an open of /etc/shadow) must be absent from normal
recordings, and in attack recordings present, none before the exploit time,
which must lie at 30-60 % of the recording. Prints one line per recording;
exits 1 on any failure.
"""

import json
import os
import sys
import zipfile

OPENS = {"open", "openat", "openat2"}


def check(path, expect_attack):
    name = os.path.basename(path)[:-4]
    errs = []
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        for ext in (".sc", ".json"):
            if name + ext not in names:
                errs.append("missing " + name + ext)
        if errs:
            return errs, None
        meta = json.loads(z.read(name + ".json"))
        sc = z.read(name + ".sc").decode()
    lines = sc.splitlines()
    n = len(lines)
    mono = 0
    prev = None
    first = last = None
    markers = []
    empty_open = 0
    syscalls = set()
    for i, line in enumerate(lines):
        t = line.split()
        if len(t) < 7 or not t[0].isdigit() or t[6] not in "<>":
            errs.append("bad line %d: %r" % (i + 1, line[:80]))
            continue
        ts = int(t[0])
        if prev is None or ts >= prev:
            mono += 1
        prev = ts
        first = ts if first is None else min(first, ts)
        last = ts if last is None else max(last, ts)
        sc_name, d, args = t[5], t[6], t[7:]
        syscalls.add(sc_name)
        if sc_name in OPENS and d == "<":
            if len(args) < 2 or not args[1].startswith("name="):
                errs.append("open exit without name= at line %d" % (i + 1))
            elif args[1] == "name=":
                empty_open += 1
            if "name=/etc/shadow" in args[1:2]:
                markers.append((ts, "open /etc/shadow"))
        if sc_name in ("execve", "execveat") and d == ">":
            markers.append((ts, "%s %s" % (sc_name, args[0] if args else "")))
    info = {"events": n, "monotonic": mono / n if n else 0.0,
            "seconds": (last - first) / 1e9 if n else 0.0,
            "syscalls": len(syscalls), "empty_open_paths": empty_open,
            "exploit": None, "exploit_pct": None, "markers": markers}
    if meta.get("exploit") != expect_attack:
        errs.append("json exploit=%r, expected %r" % (meta.get("exploit"),
                                                     expect_attack))
    for k in ("container_ready", "warmup_end", "exploit"):
        if k not in meta.get("time", {}):
            errs.append("json time.%s missing" % k)
    if expect_attack:
        ex = meta["time"]["exploit"][0]["absolute"]
        info["exploit"] = ex
        info["exploit_pct"] = 100.0 * (ex * 1e9 - first) / (last - first)
        if not 30 <= info["exploit_pct"] <= 60:
            errs.append("exploit at %.1f %% of the recording"
                        % info["exploit_pct"])
        if not markers:
            errs.append("no attack syscalls found")
        early = [m for m in markers if m[0] < ex * 1e9]
        if early:
            errs.append("attack syscalls before the exploit time: %r"
                        % early[:3])
    elif markers:
        errs.append("attack markers in a normal recording: %r" % markers[:3])
    return errs, info


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    data = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..",
                                                              "data")
    failed = False
    total = 0
    for sub, attack in (("training", False), ("test/normal", False),
                        ("test/normal_and_attack", True)):
        d = os.path.join(data, sub)
        for f in sorted(os.listdir(d)):
            if not f.endswith(".zip"):
                continue
            p = os.path.join(d, f)
            errs, info = check(p, attack)
            total += os.path.getsize(p)
            if info:
                line = ("%-40s events=%6d span=%5.2fs syscalls=%3d "
                        "monotonic=%.4f empty_open=%d"
                        % (sub + "/" + f, info["events"], info["seconds"],
                           info["syscalls"], info["monotonic"],
                           info["empty_open_paths"]))
                if attack:
                    line += " exploit=%.6f (%.1f %%) markers=%s" % (
                        info["exploit"], info["exploit_pct"],
                        ",".join(sorted({m[1] for m in info["markers"]})))
                print(line)
            for e in errs:
                print("  FAIL: " + e)
                failed = True
    print("total zip bytes: %d" % total)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
