#!/usr/bin/env python3
"""Reads `cargo bench --bench overhead` output (stdin or a file) and prints each group's cells
with their overhead over bare (or catch_panic for panics) and lighttrace's ratio to sentry-tower.

usage: cargo bench --bench overhead 2>&1 | tee bench.log; python3 scripts/bench-ratios.py bench.log
"""
import re
import sys

UNITS = {"ns": 1e-3, "µs": 1.0, "us": 1.0, "ms": 1e3, "s": 1e6}


def parse(text):
    cells = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"^(\S+/\S+)\s*(time:.*)?$", line.strip())
        if m and not line.startswith("Benchmarking") and "/" in m.group(1) and ":" not in m.group(1):
            current = m.group(1)
            line = m.group(2) or ""
        t = re.search(r"time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", line)
        if t and current:
            cells[current] = float(t.group(1)) * UNITS[t.group(2)]
            current = None
    return cells


def main():
    text = open(sys.argv[1]).read() if len(sys.argv) > 1 else sys.stdin.read()
    cells = parse(text)
    groups = {}
    for name, median in cells.items():
        group, cell = name.split("/", 1)
        groups.setdefault(group, {})[cell] = median
    for group, c in groups.items():
        base = c.get("bare", c.get("catch_panic"))
        print(f"{group}: " + ", ".join(f"{k} {v:.3f} µs" for k, v in c.items()))
        if base is None:
            continue
        for rate in ("0.0", "1.0"):
            s, l = c.get(f"sentry_tower_{rate}"), c.get(f"lighttrace_{rate}")
            if s is None or l is None:
                continue
            ratio = (l - base) / (s - base) if s > base else float("nan")
            print(f"  traces {rate}: sentry +{s - base:.3f} µs, lighttrace +{l - base:.3f} µs, ratio {ratio:.3f}x")


if __name__ == "__main__":
    main()
