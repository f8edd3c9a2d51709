#!/usr/bin/env python3
"""Resident memory of hexdash around a burst of concurrent signups.

Starts the given hexdash binary (default argon2id cost: 19 MiB, 2 passes) on
127.0.0.1 with a throw-away SQLite database, reads VmRSS from /proc, fires
N concurrent signups (all answered 201), and reads VmRSS right after and
after a quiet period; then stops the process it started (only that one).

    loadtest/scripts/signup_rss.py target/release/hexdash [--signups 32] [--quiet-s 15]

Prints one JSON line: rss_mib at start, after the burst, after the quiet
period, and the burst's duration. Uses only the Python standard library.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def post(url, body):
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("binary")
    ap.add_argument("--signups", type=int, default=32)
    ap.add_argument("--quiet-s", type=float, default=15.0)
    args = ap.parse_args()

    http, mqtt = free_port(), free_port()
    workdir = tempfile.mkdtemp(prefix="hexdash-signup-rss-")
    env = dict(
        os.environ,
        HEXDASH_DATABASE_URL=f"sqlite://{workdir}/hexdash.db",
        HEXDASH_JWT_SECRET="signup-rss",
        HEXDASH_LOG="warn",
        # Every signup comes from 127.0.0.1: no per-address signup limit.
        HEXDASH_API__SIGNUP_ATTEMPTS_PER_ADDRESS="0",
    )
    proc = subprocess.Popen(
        [args.binary, "serve", "--http-addr", f"127.0.0.1:{http}", "--mqtt-addr", f"127.0.0.1:{mqtt}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(os.path.join(workdir, "hexdash.log"), "w"),
    )
    try:
        base = f"http://127.0.0.1:{http}"
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/readyz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit(f"hexdash did not become ready; see {workdir}/hexdash.log")
        time.sleep(1)
        start_rss = rss_mib(proc.pid)

        statuses = []
        gate = threading.Barrier(args.signups)

        def signup(i):
            gate.wait()
            body = {"email": f"rss-{i}@example.com", "password": "correct horse battery", "name": f"rss {i}", "role": "customer"}
            statuses.append(post(base + "/v1/auth/signup", body))

        threads = [threading.Thread(target=signup, args=(i,)) for i in range(args.signups)]
        began = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        burst_s = time.monotonic() - began
        after_rss = rss_mib(proc.pid)
        if statuses.count(201) != args.signups:
            sys.exit(f"signups not all created: {sorted(statuses)}")
        time.sleep(args.quiet_s)
        quiet_rss = rss_mib(proc.pid)
        print(json.dumps({
            "binary": args.binary,
            "signups": args.signups,
            "rss_mib_start": round(start_rss, 1),
            "rss_mib_after_burst": round(after_rss, 1),
            "rss_mib_after_quiet": round(quiet_rss, 1),
            "quiet_s": args.quiet_s,
            "burst_s": round(burst_s, 2),
        }))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
