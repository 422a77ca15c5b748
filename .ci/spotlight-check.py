#!/usr/bin/env python3
"""The quickstart with SENTRY_SPOTLIGHT set, watched through Spotlight's own sidecar.

usage: spotlight-check.py QUICKSTART_BINARY SPOTLIGHT_DIR WORK_DIR

SPOTLIGHT_DIR holds node_modules with @spotlightjs/spotlight (see .ci/spotlight/package.json).
Starts the sidecar on a free 127.0.0.1 port, tails it with `spotlight tail all -f json`, runs the
quickstart with SENTRY_SPOTLIGHT pointing at it (and no DSN: envelope files too), hits a few
routes, and asserts that the panic, the 5xx and the transactions arrived at Spotlight with their
route names and the trace ids of the envelopes the quickstart wrote, and that the panic's
culprit frame is the quickstart's own line.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import driver  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def fail(msg):
    driver.fail("spotlight-check", msg)


def node(spotlight_dir, *args, **kw):
    run_js = os.path.join(spotlight_dir, "node_modules", "@spotlightjs", "spotlight", "dist", "run.js")
    return subprocess.Popen(["node", "--require", os.path.join(HERE, "spotlight", "loopback.cjs"), run_js, *args], **kw)


def wait_for(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    fail(f"timed out waiting for {what}")


def main():
    binary, spotlight_dir, work = sys.argv[1], sys.argv[2], sys.argv[3]
    os.makedirs(work, exist_ok=True)
    port = driver.free_port()
    server_log = open(os.path.join(work, "sidecar.log"), "w")
    sidecar = node(spotlight_dir, "server", "-p", str(port), stdout=server_log, stderr=subprocess.STDOUT)
    tail_path = os.path.join(work, "tail.jsonl")
    tail_out = open(tail_path, "w")
    tail = None
    procs = [sidecar]
    try:
        wait_for(lambda: "listening on" in open(os.path.join(work, "sidecar.log")).read(), 60, "the sidecar")
        tail = node(spotlight_dir, "tail", "all", "-f", "json", "-p", str(port), stdout=tail_out, stderr=subprocess.DEVNULL)
        procs.append(tail)
        time.sleep(2)  # the tail connects to the sidecar's event stream
        envdir = os.path.join(work, "envelopes")
        env = {k: v for k, v in os.environ.items() if k not in ("LIGHTTRACE_DSN", "SENTRY_DSN")}
        env.update(LIGHTTRACE_ENVELOPE_DIR=envdir, SENTRY_SPOTLIGHT=f"http://127.0.0.1:{port}/stream")
        proc, base = driver.start(binary, env, "spotlight-check")
        try:
            for path, status in [("/users/7", 200), ("/panic", 500), ("/fail", 500)]:
                got = driver.call(base, "GET", path, {"X-User-ID": "42"})[0]
                if got != status:
                    fail(f"GET {path}: expected {status}, got {got}")
        finally:
            output = driver.stop(proc, "spotlight-check", timeout=20)
        if "Spotlight at" not in output:
            fail("the quickstart did not say it reports to Spotlight")

        written = list(driver.envelope_items(envdir))
        panic = [p for t, p in written if t == "event" and p["exception"]["values"][-1]["type"] == "panic"]
        failure = [p for t, p in written if t == "event" and p.get("transaction") == "GET /fail"]
        txs = {p["transaction"]: p["contexts"]["trace"]["trace_id"] for t, p in written if t == "transaction"}
        if len(panic) != 1 or len(failure) != 1:
            fail(f"the quickstart wrote {len(panic)} panic and {len(failure)} /fail events")

        def lines():
            out = []
            for line in open(tail_path):
                line = line.strip()
                if line.startswith("{"):
                    out.append(json.loads(line))
            return out

        def arrived():
            got = lines()
            errors = {e.get("event_id") for e in got if e.get("type") == "error"}
            traces = {e.get("transaction") for e in got if e.get("type") == "trace"}
            return {panic[0]["event_id"], failure[0]["event_id"]} <= errors and set(txs) <= traces

        wait_for(arrived, 30, "the events in `spotlight tail`")
        got = lines()
        by_id = {e["event_id"]: e for e in got if e.get("type") == "error"}
        seen_panic = by_id[panic[0]["event_id"]]
        if seen_panic.get("exception_type") != "panic" or seen_panic.get("transaction") != "GET /panic":
            fail(f"the panic as Spotlight shows it: {seen_panic}")
        if seen_panic.get("trace_id") != panic[0]["contexts"]["trace"]["trace_id"]:
            fail("the panic's trace id differs between Spotlight and the envelope")
        if not str(seen_panic.get("filename", "")).endswith("examples/quickstart.rs"):
            fail(f"Spotlight's culprit frame is not the quickstart's line: {seen_panic}")
        for name, trace_id in txs.items():
            seen = [e for e in got if e.get("type") == "trace" and e.get("transaction") == name]
            if trace_id not in {e.get("trace_id") for e in seen}:
                fail(f"{name}: trace id {trace_id} not in Spotlight's {seen}")
        print(f"spotlight-check: OK: {len(by_id)} errors and {len(txs)} transactions seen by Spotlight "
              f"(panic at {seen_panic['filename']}:{seen_panic.get('lineno')})")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
