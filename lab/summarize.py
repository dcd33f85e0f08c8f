#!/usr/bin/python3
"""Markdown tables from lab/evaluate-all.sh's results: per scenario and
detector, detection rate (DR) and false-alarm rate (FAR) at theta 1.0, and
the theta with the best DR among those with FAR <= 0.02."""
import json
import os
import sys

out, scenarios = sys.argv[1], sys.argv[2:]
res = os.path.join(out, "results")


def count(d):
    return sum(1 for _, _, fs in os.walk(d) for f in fs if f.endswith(".zip"))


def fmt(r):
    return f"{r['detection_rate']:.3f} ({r['detected']}/{r['attacks']})", \
        f"{r['false_alarm_rate']:.3f} ({r['false_alarms']}/{r['normals']})"


for s in scenarios:
    base = os.path.join(out, s)
    print(f"### {s}\n")
    print(f"training {count(os.path.join(base, 'training'))}, "
          f"normal test {count(os.path.join(base, 'test', 'normal'))}, "
          f"attack test {count(os.path.join(base, 'test', 'normal_and_attack'))} recordings\n")
    print("| detector | DR @ θ=1.0 | FAR @ θ=1.0 | best θ with FAR ≤ 0.02 | DR there | FAR there |")
    print("|---|---|---|---|---|---|")
    for det in ("modern", "compat", "stide"):
        p = os.path.join(res, s, det + ".json")
        if not os.path.exists(p):
            continue
        rows = json.load(open(p))["rows"]
        at1 = [r for r in rows if abs(r.get("theta", 1.0) - 1.0) < 1e-9]
        dr1, far1 = fmt(at1[0]) if at1 else ("-", "-")
        ok = [r for r in rows if r["false_alarm_rate"] <= 0.02]
        if ok:
            best = max(ok, key=lambda r: (r["detection_rate"], -r.get("theta", 0)))
            dr, far = fmt(best)
            th = f"{best['theta']:.1f}" if "theta" in best else "-"
        else:
            th, dr, far = "none", "-", "-"
        name = {"modern": "chids modern", "compat": "chids --compat", "stide": "STIDE"}[det]
        print(f"| {name} | {dr1} | {far1} | {th} | {dr} | {far} |")
    print()
