#!/usr/bin/python3
"""Bounded FTP client load: log in as the lab user, list, download, upload
and delete a small file; repeat until a deadline or a session count.
--guess makes it the fallback brute-forcer instead (when hydra is missing):
try each password of a word list once, stop at the first that works."""
import argparse
import ftplib
import io
import random
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--user", required=True)
ap.add_argument("--password", default="")
ap.add_argument("--until", type=float, required=True)
ap.add_argument("--max", type=int, default=200)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--guess", metavar="WORDLIST", help="brute-force mode")
a = ap.parse_args()
rng = random.Random(a.seed)


def session(i):
    with ftplib.FTP() as f:
        f.connect("127.0.0.1", a.port, timeout=3)
        f.login(a.user, a.password)
        f.pwd()
        f.nlst()
        name = rng.choice(["readme.txt", "report.csv", "notes.txt"])
        f.retrbinary("RETR " + name, lambda b: None)
        if i % 3 == 0:
            f.storbinary("STOR upload.txt", io.BytesIO(b"upload %d\n" % i))
            f.size("upload.txt")
            f.delete("upload.txt")
        f.quit()


if a.guess:
    words = [w.strip() for w in open(a.guess) if w.strip()]
    for w in words[: a.max]:
        if time.time() >= a.until:
            break
        try:
            with ftplib.FTP() as f:
                f.connect("127.0.0.1", a.port, timeout=3)
                f.login(a.user, w)
                print(f"found password: {w}")
                sys.exit(0)
        except ftplib.error_perm:
            print(f"wrong: {w}")
        except OSError as e:
            print(f"error: {e}")
    sys.exit(1)

ok = err = 0
for i in range(a.max):
    if time.time() >= a.until:
        break
    try:
        session(i)
        ok += 1
    except (OSError, ftplib.Error):
        err += 1
    time.sleep(rng.uniform(0.2, 0.5))
print(f"load: {ok} sessions, {err} errors", file=sys.stderr)
