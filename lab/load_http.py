#!/usr/bin/python3
"""Bounded HTTP client load for the lab: GETs random paths from a list
against 127.0.0.1:PORT until a deadline or a request count, pausing between
requests. Errors are counted, not fatal (the server stops at the end of the
recording)."""
import argparse
import http.client
import random
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--until", type=float, required=True, help="deadline, epoch seconds")
ap.add_argument("--max", type=int, default=1000, help="at most this many requests")
ap.add_argument("--pause", type=float, default=0.1, help="seconds between requests")
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("paths", nargs="+")
a = ap.parse_args()
rng = random.Random(a.seed)
ok = err = 0
for _ in range(a.max):
    if time.time() >= a.until:
        break
    path = rng.choice(a.paths)
    try:
        c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=2)
        c.request("GET", path)
        c.getresponse().read()
        c.close()
        ok += 1
    except OSError:
        err += 1
    time.sleep(a.pause * rng.uniform(0.5, 1.5))
print(f"load: {ok} requests, {err} errors", file=sys.stderr)
