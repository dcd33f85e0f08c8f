#!/usr/bin/python3
"""Markdown tables from lab/evaluate-all.sh's results (chids evaluate
--json). Per scenario and detector, first the operating point (the
threshold set from training + validation recordings alone): detection rate
(DR), false-alarm rate (FAR) over normal recordings, alarm windows per
hour of normal activity, mean latency; then, for comparison with earlier
results, the same at theta 1.0 and the window-level ROC AUC."""
import json
import os
import sys

out, scenarios = sys.argv[1], sys.argv[2:]
res = os.path.join(out, "results")
NAMES = {"modern": "chids modern", "modern-stream": "chids modern, stream edges",
         "compat": "chids --compat", "stide": "STIDE"}


def count(d):
    return sum(1 for _, _, fs in os.walk(d) for f in fs if f.endswith(".zip"))


def rates(r):
    return (f"{r['detection_rate']:.2f} ({r['detected']}/{r['attacks']})",
            f"{r['false_alarm_rate']:.2f} ({r['false_alarms']}/{r['normals']})")


def near(rows, theta):
    return next((r for r in rows if abs(r.get("theta", -1) - theta) < 1e-9), None)


for s in scenarios:
    base = os.path.join(out, s)
    print(f"### {s}\n")
    print(f"training {count(os.path.join(base, 'training'))}, "
          f"validation {count(os.path.join(base, 'validation'))}, "
          f"normal test {count(os.path.join(base, 'test', 'normal'))}, "
          f"attack test {count(os.path.join(base, 'test', 'normal_and_attack'))} recordings\n")
    print("| detector | threshold (θ) | DR | FAR | alarm windows / h normal | latency | "
          "DR θ=1.0 | FAR θ=1.0 | ROC AUC |")
    print("|---|---|---|---|---|---|---|---|---|")
    for det in NAMES:
        p = os.path.join(res, s, det + ".json")
        if not os.path.exists(p):
            continue
        d = json.load(open(p))
        op = d["operating_point"]
        r1 = near(d["rows"], 1.0)
        theta = f" ({op['threshold'] / r1['threshold']:.2f})" if r1 and r1["threshold"] > 0 else ""
        dr, far = rates(op)
        per_h = (f"{op['false_alarms_per_hour']:.1f} ({op['false_alarm_windows']} in "
                 f"{op['normal_hours'] * 60:.1f} min)")
        lat = f"{op['mean_latency_s']:.2f} s" if op.get("mean_latency_s") is not None else "-"
        dr1, far1 = rates(r1) if r1 else ("-", "-")
        auc = f"{d['roc_auc']:.3f}" if d.get("roc_auc") is not None else "-"
        print(f"| {NAMES[det]} | {op['threshold']:.4g}{theta} | {dr} | {far} | {per_h} | {lat} | "
              f"{dr1} | {far1} | {auc} |")
    print()
