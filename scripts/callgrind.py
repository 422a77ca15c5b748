#!/usr/bin/env python3
"""Instructions per request of each cell of benches/instructions.rs, counted by callgrind (all
threads, so lighttrace's worker is included), with the overhead over bare and lighttrace's ratio
to sentry-tower. Deterministic for a given binary: use it to compare request-path changes on a
noisy machine, where wall-clock cells move by 30 % between runs.

usage: python3 scripts/callgrind.py [--path /users/7] [--small 1000] [--large 6000] [--main-thread]

--main-thread counts the request thread alone (the benches' runtime runs on the main thread),
without the client's worker: what a request pays on its own thread.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CELLS = ["bare", "lighttrace_0.0", "lighttrace_1.0", "sentry_tower_0.0", "sentry_tower_1.0"]


def build():
    out = subprocess.run(
        ["cargo", "bench", "--bench", "instructions", "--no-run", "--message-format=json"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == "instructions" \
                and msg.get("executable"):
            return msg["executable"]
    sys.exit("could not find the instructions bench binary")


def count(binary, cell, path, n, main_thread=False):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        env = dict(os.environ)
        env.pop("RUST_BACKTRACE", None)
        threads = ["--separate-threads=yes"] if main_thread else []
        subprocess.run(["valgrind", "--tool=callgrind", *threads, f"--callgrind-out-file={out}", binary, cell, path,
                        str(n)], check=True, capture_output=True, env=env)
        # With threads separated, the main thread's file ends in -01.
        path_out = out + "-01" if main_thread else out
        for line in open(path_out):
            m = re.match(r"^(summary|totals):\s+(\d+)", line)
            if m:
                return int(m.group(2))
    sys.exit(f"no totals for {cell}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--path", default="/users/7")
    ap.add_argument("--small", type=int, default=1000)
    ap.add_argument("--large", type=int, default=6000)
    ap.add_argument("--cells", default=",".join(CELLS),
                    help="comma-separated; also lighttrace_0.0_latency_off, lighttrace_0.0_health")
    ap.add_argument("--main-thread", action="store_true", help="count the request thread only")
    args = ap.parse_args()
    binary = build()
    per = {}
    for cell in args.cells.split(","):
        a = count(binary, cell, args.path, args.small, args.main_thread)
        b = count(binary, cell, args.path, args.large, args.main_thread)
        per[cell] = (b - a) / (args.large - args.small)
        print(f"{cell:18} {per[cell]:10.0f} instructions/request", flush=True)
    bare = per.get("bare")
    for rate in ("0.0", "1.0"):
        if bare is None or f"sentry_tower_{rate}" not in per or f"lighttrace_{rate}" not in per:
            continue
        s, l = per[f"sentry_tower_{rate}"] - bare, per[f"lighttrace_{rate}"] - bare
        print(f"traces {rate}: overhead sentry-tower {s:.0f}, lighttrace {l:.0f}, ratio {l / s:.3f}x")
    if "lighttrace_0.0_latency_off" in per and "lighttrace_0.0" in per:
        d = per["lighttrace_0.0"] - per["lighttrace_0.0_latency_off"]
        print(f"per-route latency adds {d:.0f} instructions/request")
    if "lighttrace_0.0_health" in per and "lighttrace_0.0" in per:
        d = per["lighttrace_0.0_health"] - per["lighttrace_0.0"]
        print(f"release health adds {d:.0f} instructions/request")


if __name__ == "__main__":
    main()
