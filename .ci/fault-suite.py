#!/usr/bin/env python3
"""The transport fault suite: the loadserver example (lighttrace, every request traced) under a
paced load, reporting to .ci/fault-collector.py while it misbehaves in one way per run.

usage: fault-suite.py LOADSERVER_BINARY [--rps 150] [--fault-secs 4] [--outage-secs 30]

Each run: 1 s healthy, the fault for --fault-secs, 2 s healthy again, then the load stops and the
server gets SIGTERM (it flushes and closes its sink within FLUSH_SECS=2). Asserted per mode:
  * 0 failed requests (every answer is 200, or the 500 of /fail);
  * p99 latency within max(3 x, +25 ms) of the healthy run's;
  * peak RSS within 16 MiB of the healthy run's (the configured bounds: the client's queue
    MAX_QUEUE_BYTES=4 MiB, the sink's QUEUE=500 envelopes);
  * shutdown within FLUSH_SECS + 0.5 s;
  * exact accounting, per category (transactions, and errors): received by the collector +
    rate limited by the collector (429: the server's count) + counted in the client reports the
    collector received = requests served.
Then the disk buffer: the collector down for --outage-secs, the server restarted halfway with
the same spool directory; afterwards every event and transaction of both runs arrived, and the
spool directory is empty.
Prints a table (for BENCHMARKS.md) and exits 1 on any failed assertion.
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
MODES = ["down", "slow", "hung", "429", "ratelimit", "500", "reset", "garbage", "flapping"]
FLUSH_SECS = 2


def free_port(pair=False):
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if not pair:
            return port
        t = socket.socket()
        try:
            t.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
        finally:
            t.close()


def wait_port(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listening on {port}")


class Collector:
    def __init__(self):
        self.port = free_port(pair=True)
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "fault-collector.py"), str(self.port)],
                                     stdout=subprocess.DEVNULL)
        wait_port(self.port + 1)
        wait_port(self.port)

    def mode(self, name):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port + 1}/mode/{name}", data=b"", method="POST")
        urllib.request.urlopen(req, timeout=5).read()

    def stats(self):
        return json.loads(urllib.request.urlopen(f"http://127.0.0.1:{self.port + 1}/stats", timeout=5).read())

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class Server:
    def __init__(self, binary, dsn, spool=None):
        self.port = free_port()
        env = dict(os.environ, VARIANT="lighttrace", PORT=str(self.port), DSN=dsn, RATE="1.0",
                   FLUSH_SECS=str(FLUSH_SECS), QUEUE="500", MAX_QUEUE_BYTES=str(4 * 1024 * 1024))
        env.pop("RUST_BACKTRACE", None)
        if spool:
            env["DISK_BUFFER"] = spool
        self.proc = subprocess.Popen([binary], env=env, stdout=subprocess.PIPE, text=True)
        wait_port(self.port)

    def peak_rss_mib(self):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self):
        """SIGTERM; returns (seconds to exit, the `flushed` line)."""
        started = time.time()
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=FLUSH_SECS + 30)
        took = time.time() - started
        flushed = [l for l in out.splitlines() if l.startswith("flushed")]
        return took, (flushed[-1] if flushed else "no flushed line")


class Load:
    """Paced GETs on keep-alive connections: 1 in 10 to /fail (an error event), the rest 200s."""

    def __init__(self, port, rps, threads=4):
        self.port, self.rps, self.threads = port, rps, threads
        self.stop_at = None
        self.lock = threading.Lock()
        self.latencies, self.failures, self.ok, self.errors = [], 0, 0, 0
        self.running = []

    def worker(self, index):
        interval = self.threads / self.rps
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        n, next_at = index, time.time()
        while time.time() < self.stop_at:
            path = "/fail" if n % 10 == 0 else f"/users/{n}"
            n += self.threads
            started = time.time()
            try:
                conn.request("GET", path)
                res = conn.getresponse()
                res.read()
                status = res.status
            except OSError:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                status = None
            took = time.time() - started
            with self.lock:
                if status == 200 and path != "/fail":
                    self.ok += 1
                    self.latencies.append(took)
                elif status == 500 and path == "/fail":
                    self.errors += 1
                    self.latencies.append(took)
                else:
                    self.failures += 1
            next_at += interval
            pause = next_at - time.time()
            if pause > 0:
                time.sleep(pause)
        conn.close()

    def start(self, seconds):
        self.stop_at = time.time() + seconds
        self.running = [threading.Thread(target=self.worker, args=(i,)) for i in range(self.threads)]
        for t in self.running:
            t.start()

    def join(self):
        for t in self.running:
            t.join()

    def p99_ms(self):
        xs = sorted(self.latencies)
        return 1000 * xs[int(0.99 * (len(xs) - 1))] if xs else 0.0


def reported(stats, category):
    return sum(n for k, n in stats["reports"].items() if k.endswith("/" + category))


def run_mode(binary, mode, args):
    collector = Collector()
    server = Server(binary, f"http://0123456789abcdef0123456789abcdef@127.0.0.1:{collector.port}/1")
    fault = 0 if mode == "healthy" else args.fault_secs
    load = Load(server.port, args.rps)
    load.start(1 + fault + 2)
    time.sleep(1)
    if fault:
        collector.mode(mode)
        time.sleep(fault)
        collector.mode("healthy")
    load.join()
    rss = server.peak_rss_mib()
    shutdown, flushed = server.stop()
    stats = collector.stats()
    collector.stop()
    served_tx = load.ok + load.errors
    served_err = load.errors
    got_tx = stats["transactions"] + stats["ratelimited"]["transaction"] + reported(stats, "transaction")
    got_err = stats["events"] + stats["ratelimited"]["error"] + reported(stats, "error")
    return {
        "mode": mode, "served": served_tx, "errors": served_err, "failed": load.failures,
        "p99_ms": load.p99_ms(), "rss_mib": rss, "shutdown_s": shutdown, "flushed": flushed,
        "tx": (stats["transactions"], stats["ratelimited"]["transaction"], reported(stats, "transaction"), got_tx),
        "err": (stats["events"], stats["ratelimited"]["error"], reported(stats, "error"), got_err),
    }


def disk_buffer(binary, args):
    """A long outage with a restart in the middle: nothing lost, the spool empty after."""
    spool = tempfile.mkdtemp(prefix="lighttrace-spool-")
    collector = Collector()
    dsn = f"http://0123456789abcdef0123456789abcdef@127.0.0.1:{collector.port}/1"
    collector.mode("down")
    served_tx = served_err = failed = 0
    half = args.outage_secs / 2
    for _ in range(2):
        server = Server(binary, dsn, spool=spool)
        load = Load(server.port, args.rps / 2)
        load.start(half)
        load.join()
        server.stop()
        served_tx += load.ok + load.errors
        served_err += load.errors
        failed += load.failures
    collector.mode("healthy")
    # The server comes back, replays the spool, and is stopped once the spool is empty.
    server = Server(binary, dsn, spool=spool)
    deadline = time.time() + 60
    while time.time() < deadline and any(f.endswith(".spool") for f in os.listdir(spool)):
        time.sleep(0.2)
    left = [f for f in os.listdir(spool) if f.endswith(".spool")]
    server.stop()
    stats = collector.stats()
    collector.stop()
    shutil.rmtree(spool, ignore_errors=True)
    return {"served": served_tx, "errors": served_err, "failed": failed, "left": left,
            "events": stats["events"], "transactions": stats["transactions"],
            "duplicates": stats["duplicates"], "reports": stats["reports"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--rps", type=float, default=150)
    ap.add_argument("--fault-secs", type=float, default=4)
    ap.add_argument("--outage-secs", type=float, default=30)
    args = ap.parse_args()
    problems = []
    healthy = run_mode(args.binary, "healthy", args)
    rows = [healthy]
    for mode in MODES:
        rows.append(run_mode(args.binary, mode, args))
    p99_bound = max(3 * healthy["p99_ms"], healthy["p99_ms"] + 25)
    rss_bound = healthy["rss_mib"] + 16
    print("| mode | served (errors) | failed | p99 ms | peak RSS MiB | shutdown s "
          "| transactions: received + server-limited + reported = total | errors: same |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        tx, err = r["tx"], r["err"]
        print(f'| {r["mode"]} | {r["served"]} ({r["errors"]}) | {r["failed"]} | {r["p99_ms"]:.1f} '
              f'| {r["rss_mib"]:.1f} | {r["shutdown_s"]:.2f} '
              f'| {tx[0]} + {tx[1]} + {tx[2]} = {tx[3]} | {err[0]} + {err[1]} + {err[2]} = {err[3]} |')
        m = r["mode"]
        if r["failed"]:
            problems.append(f"{m}: {r['failed']} failed requests")
        if r["p99_ms"] > p99_bound:
            problems.append(f"{m}: p99 {r['p99_ms']:.1f} ms over {p99_bound:.1f} ms")
        if r["rss_mib"] > rss_bound:
            problems.append(f"{m}: peak RSS {r['rss_mib']:.1f} MiB over {rss_bound:.1f} MiB")
        if r["shutdown_s"] > FLUSH_SECS + 0.5:
            problems.append(f"{m}: shutdown took {r['shutdown_s']:.2f} s")
        if tx[3] != r["served"]:
            problems.append(f"{m}: transactions accounted {tx[3]} != served {r['served']}")
        if err[3] != r["errors"]:
            problems.append(f"{m}: errors accounted {err[3]} != served {r['errors']}")
    print(f"\nbounds: p99 <= {p99_bound:.1f} ms, peak RSS <= {rss_bound:.1f} MiB, "
          f"shutdown <= {FLUSH_SECS + 0.5} s")
    d = disk_buffer(args.binary, args)
    print(f"\ndisk buffer, {args.outage_secs:.0f} s outage with a restart halfway: served {d['served']} "
          f"transactions ({d['errors']} errors), failed {d['failed']}; received {d['transactions']} "
          f"transactions and {d['events']} events ({d['duplicates']} duplicates); "
          f"reported losses {d['reports'] or 'none'}; spool files left {len(d['left'])}")
    if d["failed"]:
        problems.append(f"disk buffer: {d['failed']} failed requests")
    if d["transactions"] != d["served"] or d["events"] != d["errors"]:
        problems.append("disk buffer: events or transactions lost")
    if d["left"]:
        problems.append(f"disk buffer: spool not empty: {d['left']}")
    for p in problems:
        print("FAULT SUITE:", p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
