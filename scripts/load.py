#!/usr/bin/env python3
"""Load test: bare axum vs lighttrace vs sentry-tower under wrk, on 127.0.0.1 only.

usage: scripts/load.py [--rounds 3] [--duration 10] [--connections 32] [--rate 1.0] [--rps N]

Needs `wrk` (Debian package) and the release examples (`cargo build --release --examples --features probe`).
Each round runs every variant once, interleaved, so slow drift on a noisy machine hits all
variants alike:
  bare            no middleware
  lighttrace      TrackingLayer, HttpSink to a healthy local collector
  sentry          sentry-tower + sentry's reqwest transport to a healthy local collector
  lighttrace-hung TrackingLayer, HttpSink to a collector that never answers
  lighttrace-nobp TrackingLayer with backpressure handling off (compare with lighttrace at
                  saturation: --duration 60 lets the default 10 s checks lower the rate)
Without --rps, wrk drives the server as fast as it can (saturation). With --rps N, every
connection waits between requests (a wrk Lua `delay`) so the offered load is about N requests/s:
the regime of a service that is busy but not overloaded.
The server runs on a tokio runtime with 1 worker. Reported per variant (median over rounds):
requests/s, p50 and p99 latency, server CPU per request (utime+stime of the whole server
process over the measured run, divided by its requests), peak RSS (VmHWM), and delivered
transactions / requests served (after the server flushed on SIGTERM), and where the other
transactions went, as the client reports that reached the collector say: dropped (queue full,
send errors, ...) or downsampled (left out by backpressure handling).
"""
import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "target", "release", "examples")
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listening on {port}")


def cpu_seconds(pid):
    # utime and stime of the process, all threads (fields 14 and 15 of /proc/PID/stat)
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def parse_wrk(out):
    def dur(text):
        m = re.match(r"([\d.]+)(us|ms|s)", text)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v  # in ms
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = dur(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = dur(re.search(r"\s99%\s+(\S+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return requests, rps, p50, p99, int(errors.group(1)) if errors else 0


def wrk(port, seconds, connections, pace_script=None):
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if pace_script:
        cmd += ["-s", pace_script]
    out = subprocess.run(cmd + [f"http://127.0.0.1:{port}/users/7"],
                         check=True, capture_output=True, text=True, timeout=seconds + 30).stdout
    return parse_wrk(out)


def pace_script(args):
    """A wrk script pacing each connection to reach about args.rps requests/s in all."""
    if not args.rps:
        return None
    delay_ms = max(1, round(args.connections * 1000 / args.rps))
    path = os.path.join(tempfile.gettempdir(), f"lighttrace-pace-{delay_ms}.lua")
    with open(path, "w") as f:
        f.write(f"function delay() return {delay_ms} end\n")
    return path


SAMPLE = os.path.join(tempfile.gettempdir(), f"lighttrace-sample-{os.getpid()}.envelope")


def run_wire(args):
    """The wire's own cost: wrk POSTing the sample envelope (one lighttrace sent, as it sent it)
    to the same collector at the same pace, on 4 keep-alive connections. CPU per POST is wrk's
    own (user + system, loopback included) over the measured run."""
    cport = free_port()
    collector = subprocess.Popen([os.path.join(EXAMPLES, "collector")], env=dict(os.environ, PORT=str(cport)),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(cport)
        body = open(SAMPLE, "rb").read()
        script = os.path.join(tempfile.gettempdir(), f"lighttrace-wire-{os.getpid()}.lua")
        lua_body = "".join(f"\\{b:03d}" for b in body)
        delay = f"function delay() return {max(1, round(4 * 1000 / args.rps))} end\n" if args.rps else ""
        with open(script, "w") as f:
            f.write('wrk.method = "POST"\n'
                    f'wrk.body = "{lua_body}"\n'
                    'wrk.headers["Content-Type"] = "application/x-sentry-envelope"\n'
                    'wrk.headers["X-Sentry-Auth"] = "Sentry sentry_version=7, sentry_key=0123456789abcdef0123456789abcdef"\n'
                    + delay)
        cmd = ["wrk", "-t1", "-c4", f"-d{args.duration}s", "--latency", "-s", script,
               f"http://127.0.0.1:{cport}/api/1/envelope/"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        out = proc.stdout.read()
        _, _, usage = os.wait4(proc.pid, 0)
        requests = parse_wrk(out)[0]
        return dict(posts=requests, bytes=len(body), cpu_us=(usage.ru_utime + usage.ru_stime) / requests * 1e6)
    finally:
        collector.kill()
        collector.wait()


def run_variant(variant, args):
    hung = variant == "lighttrace-hung"
    baseline = variant == "baseline"
    nobp = variant == "lighttrace-nobp"
    server_variant = "lighttrace" if hung or baseline or nobp else variant
    cport, sport = free_port(), free_port()
    collector = subprocess.Popen([os.path.join(EXAMPLES, "collector")],
                                 env=dict(os.environ, PORT=str(cport), HANG="1" if hung else "0", SAMPLE=SAMPLE),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(cport)
    env = dict(os.environ, VARIANT=server_variant, PORT=str(sport), RATE=str(args.rate),
               DSN=f"http://0123456789abcdef0123456789abcdef@127.0.0.1:{cport}/1")
    if args.compress_from is not None:
        env["COMPRESS_FROM"] = str(args.compress_from)
    if nobp:
        env["BACKPRESSURE"] = "0"
    if args.backpressure_secs is not None:
        env["BACKPRESSURE_SECS"] = str(args.backpressure_secs)
    env.pop("RUST_BACKTRACE", None)
    binary = args.baseline if baseline else os.path.join(EXAMPLES, "loadserver")
    server = subprocess.Popen([binary], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        wait_port(sport)
        pace = pace_script(args)
        warm = wrk(sport, 2, args.connections, pace)[0]
        cpu0 = cpu_seconds(server.pid)
        requests, rps, p50, p99, errors = wrk(sport, args.duration, args.connections, pace)
        cpu = cpu_seconds(server.pid) - cpu0
        rss = peak_rss_kib(server.pid)
        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=30)
        stats = json.load(urllib.request.urlopen(f"http://127.0.0.1:{cport}/stats", timeout=5))
    finally:
        if server.poll() is None:
            server.kill()
        collector.kill()
        collector.wait()
    served = warm + requests
    expect_tx = variant != "bare"
    discarded = stats.get("discarded", {})
    lost = lambda reasons: sum(n for k, n in discarded.items()
                               if k.endswith(":transaction") and k.split(":")[0] in reasons)
    downsampled = lost({"backpressure"})
    dropped = sum(n for k, n in discarded.items() if k.endswith(":transaction")) - downsampled \
        - lost({"sample_rate"})
    return dict(variant=variant, rps=rps, p50=p50, p99=p99, errors=errors,
                cpu_us=cpu / requests * 1e6, rss_mib=rss / 1024,
                delivered=(stats["transactions"] / served) if expect_tx else None,
                dropped=(dropped / served) if expect_tx else None,
                downsampled=(downsampled / served) if expect_tx else None,
                flushed="flushed true" in out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--rate", type=float, default=1.0)
    ap.add_argument("--rps", type=int, default=0, help="offered load in requests/s (0: as fast as possible)")
    ap.add_argument("--variants", default="bare,lighttrace,sentry,lighttrace-hung")
    ap.add_argument("--baseline", default=None,
                    help="a loadserver binary built from an earlier commit: runs as the 'baseline' "
                         "variant (lighttrace as it was), so a change is measured in the same run")
    ap.add_argument("--backpressure-secs", type=float, default=None,
                    help="lighttrace's backpressure_check_interval (default: the crate's, 10 s)")
    ap.add_argument("--compress-from", type=int, default=None,
                    help="lighttrace's HttpSinkOptions::compress_from (default: the sink's own)")
    ap.add_argument("--wire", action="store_true",
                    help="also measure a plain HTTP client POSTing lighttrace's envelope (needs the lighttrace variant)")
    ap.add_argument("--find-max", default=None, metavar="RATES",
                    help="comma-separated paced rates, ascending: find each variant's sustainable "
                         "traced throughput instead of the rounds (use --variants lighttrace,sentry)")
    args = ap.parse_args()
    if args.find_max:
        find_max(args)
        return
    variants = args.variants.split(",")
    results = {v: [] for v in variants}
    wires = []
    for r in range(args.rounds):
        for v in variants:
            res = run_variant(v, args)
            results[v].append(res)
            print(f"round {r + 1} {v:16} {res['rps']:9.0f} req/s  p50 {res['p50']:.3f} ms  p99 {res['p99']:.3f} ms"
                  f"  cpu {res['cpu_us']:.1f} us/req  rss {res['rss_mib']:.1f} MiB"
                  + (f"  delivered {res['delivered'] * 100:.1f}%  dropped {res['dropped'] * 100:.1f}%"
                     f"  downsampled {res['downsampled'] * 100:.1f}%" if res["delivered"] is not None else ""),
                  flush=True)
        if args.wire and os.path.exists(SAMPLE):
            w = run_wire(args)
            wires.append(w)
            print(f"round {r + 1} wire             {w['posts']} POSTs of {w['bytes']} bytes  cpu {w['cpu_us']:.1f} us/POST",
                  flush=True)
    med = lambda v, k: statistics.median(x[k] for x in results[v])
    print()
    print("| variant | req/s | p50 ms | p99 ms | server CPU µs/req | × bare CPU | peak RSS MiB | delivered "
          "| dropped | downsampled |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    bare_cpu = med("bare", "cpu_us") if "bare" in results else None

    def share(v, key):
        values = [x[key] for x in results[v] if x[key] is not None]
        return f"{statistics.median(values) * 100:.1f} %" if values else "–"

    for v in variants:
        ratio = f"{med(v, 'cpu_us') / bare_cpu:.2f}" if bare_cpu else "–"
        print(f"| {v} | {med(v, 'rps'):.0f} | {med(v, 'p50'):.3f} | {med(v, 'p99'):.3f} | {med(v, 'cpu_us'):.1f} "
              f"| {ratio} | {med(v, 'rss_mib'):.1f} | {share(v, 'delivered')} | {share(v, 'dropped')} "
              f"| {share(v, 'downsampled')} |")
    if wires and bare_cpu and "lighttrace" in results:
        wire = statistics.median(w["cpu_us"] for w in wires)
        delivery = med("lighttrace", "cpu_us") - bare_cpu
        print(f"\nwire: {wire:.1f} us of CPU per POST ({wires[0]['bytes']} bytes, wrk, 4 connections)")
        print(f"lighttrace over bare: {delivery:.1f} us per traced request = {delivery / wire:.2f}x the wire's cost")
        if "sentry" in results:
            s_delivery = med("sentry", "cpu_us") - bare_cpu
            print(f"sentry-tower over bare: {s_delivery:.1f} us per request = {s_delivery / wire:.2f}x the wire's cost")
        if "baseline" in results:
            b_delivery = med("baseline", "cpu_us") - bare_cpu
            print(f"baseline over bare: {b_delivery:.1f} us per request = {b_delivery / wire:.2f}x the wire's cost")


def find_max(args):
    """Sustainable traced throughput: every variant at each paced rate (ascending, one run
    each). A rate is sustained when the server serves at least 95 % of what bare axum serves at
    that rate (wrk's pacing itself falls short of the offered rate) and, for the SDKs, at least
    99 % of transactions are delivered. Include bare in --variants: it sets the yardstick."""
    rates = [int(r) for r in args.find_max.split(",")]
    variants = args.variants.split(",")
    best, failed = {}, set()
    for rate in rates:
        args.rps = rate
        bare_served = None
        for v in variants:
            if v in failed:
                continue
            res = run_variant(v, args)
            if v == "bare":
                bare_served = res["rps"]
            yardstick = bare_served if bare_served else 0.85 * rate
            ok = res["rps"] >= 0.95 * yardstick and (res["delivered"] is None or res["delivered"] >= 0.99)
            print(f"{v:12} offered {rate:6d}/s  served {res['rps']:7.0f}/s  cpu {res['cpu_us']:.1f} us/req"
                  + (f"  delivered {res['delivered'] * 100:.1f}%" if res["delivered"] is not None else "")
                  + ("" if ok else "  <- not sustained"), flush=True)
            if ok:
                best[v] = rate
            else:
                failed.add(v)
        if all(v in failed for v in variants if v != "bare"):
            break
    print()
    for v in variants:
        print(f"sustainable: {v:12} {best.get(v, 0)} req/s offered")
    if best.get("sentry"):
        for v in best:
            if v not in ("sentry", "bare"):
                print(f"{v} / sentry: {best[v] / best['sentry']:.2f}x")


if __name__ == "__main__":
    main()
