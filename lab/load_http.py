#!/usr/bin/python3
"""Bounded HTTP client load for the lab: GETs random paths from a list
against 127.0.0.1:PORT until a deadline or a request count, pausing between
requests. A path written `POST:/upload` uploads a random file (1-64 KiB,
multipart/form-data field `file`) there instead. Errors are counted, not
fatal (the server stops at the end of the recording)."""
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
        if path.startswith("POST:"):
            boundary = "chidslab%016x" % rng.getrandbits(64)
            data = rng.randbytes(rng.randint(1024, 65536))
            body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                    f"filename=\"photo.jpg\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                    ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
            c.request("POST", path[5:], body,
                      {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        else:
            c.request("GET", path)
        c.getresponse().read()
        c.close()
        ok += 1
    except OSError:
        err += 1
    time.sleep(a.pause * rng.uniform(0.5, 1.5))
print(f"load: {ok} requests, {err} errors", file=sys.stderr)
