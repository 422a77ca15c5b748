#!/usr/bin/env python3
"""All-thread CPU per request of each cell of benches/instructions.rs, measured natively (not
under callgrind): each cell runs as its own process for a large and a small request count, in
rounds that interleave the cells, and the CPU the process used (user + system, every thread, as
the kernel accounts it) is differenced and divided by the extra requests, so start-up and
set-up cancel out. Medians over the rounds, with the overhead over bare and lighttrace's ratio
to sentry-tower. Interleaving makes a slow spell of the machine hit every cell alike, which the
criterion cells (`cargo bench --bench overhead -- cpu_`, one cell after another) cannot.

usage: python3 scripts/cpu-rounds.py [--path /fail] [--rounds 5] [--small 20000] [--large 200000]
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from callgrind import CELLS, build  # noqa: E402


def cpu_of(binary, cell, path, n):
    env = dict(os.environ)
    env.pop("RUST_BACKTRACE", None)
    # getrusage counts in microseconds (os.times in clock ticks of 10 ms).
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([binary, cell, path, str(n)], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--path", default="/users/7")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--small", type=int, default=20000)
    ap.add_argument("--large", type=int, default=200000)
    ap.add_argument("--cells", default=",".join(CELLS))
    args = ap.parse_args()
    binary = build()
    cells = args.cells.split(",")
    per = {cell: [] for cell in cells}
    for r in range(args.rounds):
        for cell in cells:
            large = cpu_of(binary, cell, args.path, args.large)
            small = cpu_of(binary, cell, args.path, args.small)
            per[cell].append((large - small) / (args.large - args.small) * 1e6)
        print(f"round {r + 1}: " + ", ".join(f"{c} {per[c][-1]:.3f}" for c in cells), flush=True)
    med = {cell: statistics.median(v) for cell, v in per.items()}
    for cell in cells:
        print(f"{cell:22} {med[cell]:8.3f} us/request (median of {args.rounds})")
    if "bare" in med:
        for rate in ("0.0", "1.0"):
            lt, st = f"lighttrace_{rate}", f"sentry_tower_{rate}"
            if lt in med and st in med:
                a, b = med[lt] - med["bare"], med[st] - med["bare"]
                print(f"traces {rate}: overhead sentry-tower {b:.3f} us, lighttrace {a:.3f} us, "
                      f"ratio {a / b:.3f}x")


if __name__ == "__main__":
    main()
