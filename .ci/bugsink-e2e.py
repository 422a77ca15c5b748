#!/usr/bin/env python3
"""End-to-end against a real Bugsink (a third-party Sentry-protocol server, from PyPI).

usage: bugsink-e2e.py QUICKSTART_BINARY RELAY_PYTHON

Starts Bugsink on a free 127.0.0.1 port (.ci/bugsink/start-bugsink.sh), runs the quickstart with
SENTRY_DSN pointing at it, hits /panic twice and /fail once, shuts the quickstart down (graceful
shutdown + flush), then asserts on what Bugsink stored:
  * one issue for the panic with 2 events, one for the failure with 1;
  * after Bugsink's first `X-Sentry-Rate-Limits: 86400:transaction;span:organization` answer no
    further transaction was sent, and the dropped ones were reported as ratelimit_backoff;
  * every envelope Bugsink kept passes relay-validate.py --from-bugsink with 0 problems.
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
    driver.fail("bugsink-e2e", msg)


def main():
    binary, relay_python = sys.argv[1], sys.argv[2]
    env = dict(os.environ)
    env["BUGSINK_HOME"] = os.path.join(HERE, "work", "bugsink")
    env["PORT"] = str(driver.free_port())
    start = os.path.join(HERE, "bugsink", "start-bugsink.sh")
    subprocess.run([start, "reset"], env=env, check=False, stdout=subprocess.DEVNULL)
    t0 = time.time()
    dsn = subprocess.run([start], env=env, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    datadir = subprocess.run([start, "datadir"], env=env, check=True, capture_output=True, text=True).stdout.strip()
    print(f"bugsink up in {time.time() - t0:.1f}s, DSN host {dsn.split('@')[-1]}")
    try:
        run_quickstart(binary, dsn)
        check(datadir, relay_python)
    finally:
        subprocess.run([start, "stop"], env=env, check=False)


def run_quickstart(binary, dsn):
    env = {k: v for k, v in os.environ.items() if k != "LIGHTTRACE_DSN"}
    env.update(SENTRY_DSN=dsn)
    proc, base = driver.start(binary, env, "bugsink-e2e")
    try:
        # The first transaction's answer carries Bugsink's rate limit; let it come back.
        time.sleep(1.5)
        for path, status in [("/users/7", 200), ("/panic", 500), ("/panic", 500), ("/fail", 500), ("/health", 200)]:
            got = driver.call(base, "GET", path, {"X-User-ID": "42"})[0]
            if got != status:
                fail(f"GET {path}: expected {status}, got {got}")
        time.sleep(0.5)
    finally:
        driver.stop(proc, "bugsink-e2e")


def check(datadir, relay_python):
    query = os.path.join(HERE, "bugsink", "bugsink-query.py")
    data = json.loads(subprocess.run([sys.executable, query, datadir, "--json", "--envelopes", "--full"],
                                     check=True, capture_output=True, text=True).stdout)
    issues = {i["title"]: i["event_count"] for i in data["issues"]}
    print("issues:", json.dumps(issues, indent=1))
    panic = [n for t, n in issues.items() if t.startswith("panic: index out of bounds")]
    failure = [n for t, n in issues.items() if t.startswith("PaymentError: charging the card failed")]
    if panic != [2]:
        fail(f"expected one panic issue with 2 events, got {panic}")
    if failure != [1]:
        fail(f"expected one PaymentError issue with 1 event, got {failure}")
    if len(issues) != 2:
        fail(f"unexpected issues: {issues}")
    envelopes = data["envelopes"]
    types = [[it["headers"].get("type") for it in e.get("items", [])] for e in envelopes]
    print("envelopes received:", types)
    tx = sum(t.count("transaction") for t in types)
    if tx != 1:
        fail(f"{tx} transactions reached Bugsink; after its first rate-limit answer there must be none")
    backoff = 0
    for e in envelopes:
        for it in e.get("items", []):
            if it["headers"].get("type") == "client_report":
                for d in it.get("payload", {}).get("discarded_events", []):
                    if d["reason"] == "ratelimit_backoff" and d["category"] == "transaction":
                        backoff += d["quantity"]
    if backoff < 5:
        fail(f"expected the 5 dropped transactions reported as ratelimit_backoff, got {backoff}")
    r = subprocess.run([relay_python, os.path.join(HERE, "tools", "relay-validate.py"), "-q", "--from-bugsink", datadir])
    if r.returncode != 0:
        fail("relay-validate found problems in what Bugsink kept")
    print("bugsink-e2e: OK")


if __name__ == "__main__":
    main()
