#!/usr/bin/env python3
"""Drive the quickstart example like a new user would, then check what it reported.

usage: quickstart-check.py QUICKSTART_BINARY ENVELOPE_DIR

Starts the binary on a free 127.0.0.1 port with no DSN (so the embedded file sink is used), hits
every route, stops it with SIGTERM (graceful shutdown + flush), and asserts on the envelope files.
Exits non-zero with a reason on any failure. Relay validation of the files is run by .ci/run.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import driver  # noqa: E402


def fail(msg):
    driver.fail("quickstart-check", msg)


def main():
    binary, envdir = sys.argv[1], sys.argv[2]
    env = {k: v for k, v in os.environ.items() if k not in ("LIGHTTRACE_DSN", "SENTRY_DSN")}
    env.update(LIGHTTRACE_ENVELOPE_DIR=envdir)
    proc, base = driver.start(binary, env, "quickstart-check")
    try:
        expected = [
            ("GET", "/health", {}, 200),
            ("POST", "/send-email?email=ann@example.com", {}, 200),
            ("POST", "/send-email", {}, 422),
            ("GET", "/users/7", {"X-User-ID": "42"}, 200),
            ("GET", "/users", {}, 200),
            ("GET", "/panic", {"X-User-ID": "42"}, 500),
            ("GET", "/health", {}, 200),  # still serving after the panic
            ("GET", "/fail", {"Authorization": "Bearer top-secret-token"}, 500),
            ("GET", "/no-such-route", {}, 404),
        ]
        for method, path, headers, status in expected:
            got = driver.call(base, method, path, headers)[0]
            if got != status:
                fail(f"{method} {path}: expected {status}, got {got}")
        time.sleep(0.5)  # the background notification fails after ~20 ms
        status, stats = driver.call(base, "GET", "/stats")
        stats = stats.decode()
        print(stats)
        if status != 200 or not any(l.startswith("GET /users/{user_id}") for l in stats.splitlines()):
            fail(f"/stats does not list GET /users/{{user_id}}:\n{stats}")
        status, metrics = driver.call(base, "GET", "/metrics")
        metrics = metrics.decode()
        want = 'http_server_request_duration_seconds_count{method="GET",route="/panic",status_class="5xx"} 1'
        if status != 200 or want not in metrics.splitlines():
            fail(f"/metrics lacks {want!r}:\n{metrics}")
        served = 1 + len(expected) + 2  # driver.start's /health, the routes, /stats and /metrics
    finally:
        output = driver.stop(proc, "quickstart-check", timeout=20)

    files = sorted(f for f in os.listdir(envdir) if f.endswith(".envelope"))
    events, txs, sessions = [], [], []
    for f in files:
        raw = open(os.path.join(envdir, f), "rb").read()
        if b"top-secret-token" in raw:
            fail(f"{f} contains the Authorization secret")
        header, items = driver.parse_envelope(raw)
        for ih, payload in items:
            {"event": events, "transaction": txs, "sessions": sessions}.get(ih["type"], []).append(payload)
    print(f"{len(files)} envelope files: {len(events)} events, {len(txs)} transactions, "
          f"{len(sessions)} sessions items")

    # Release health: every request served counted once, the panic as crashed, /fail as errored.
    totals = {k: sum(a.get(k, 0) for s in sessions for a in s["aggregates"]) for k in ("exited", "errored", "crashed")}
    if totals != {"exited": served - 2, "errored": 1, "crashed": 1}:
        fail(f"release health should count {served} requests (1 errored, 1 crashed), got {totals}")
    if any(s["attrs"].get("release", "").split("@")[0] != "quickstart" for s in sessions):
        fail(f"sessions without the quickstart's release: {sessions}")

    def exc(e):
        return e.get("exception", {}).get("values", [{}])[-1]

    panics = [e for e in events if exc(e).get("type") == "panic"]
    fails = [e for e in events if exc(e).get("type") == "PaymentError"]
    notes = [e for e in events if exc(e).get("type") == "NotificationError"]
    if len(panics) != 1 or panics[0].get("level") != "fatal":
        fail(f"expected one fatal panic event, got {panics}")
    if panics[0].get("user", {}).get("id") != "42":
        fail("the panic event lacks the user set by the middleware")
    if not any(c.get("message") == "GET /panic" for c in panics[0]["breadcrumbs"]["values"]):
        fail("the panic event lacks the middleware's breadcrumb")
    if len(fails) != 1 or [x["type"] for x in fails[0]["exception"]["values"]] != ["io::Error", "PaymentError"]:
        fail(f"expected the /fail error chain, got {fails}")
    if len(notes) != 1:
        fail(f"expected the background notification failure, got {notes}")
    if notes[0].get("tags", {}).get("task") != "notify_user" or notes[0].get("transaction") != "POST /send-email":
        fail(f"the background failure lacks its task name or request: {notes[0]}")
    names = sorted(t["transaction"] for t in txs)
    for name in ["GET /health", "POST /send-email", "GET /users/{user_id}", "GET /users", "GET /panic",
                 "GET /fail", "GET <unmatched>"]:
        if name not in names:
            fail(f"no transaction named {name!r} in {names}")
    # The two queries of /users/{user_id}, recorded from sqlx's own events (SQLite runs them on
    # its worker thread), each under the #[instrument]ed helper that ran it.
    users = [t for t in txs if t["transaction"] == "GET /users/{user_id}"][0]
    spans = {s["span_id"]: s for s in users["spans"]}
    db = [s for s in users["spans"] if s.get("op") == "db"]
    if len(db) < 2 or any(s.get("data", {}).get("db.system") != "sqlite" for s in db):
        fail(f"GET /users/{{user_id}} should have 2 db spans with db.system sqlite: {users['spans']}")
    for s in db:
        parent = spans.get(s.get("parent_span_id"))
        if not parent or not parent.get("op", "").endswith(("load_user", "load_posts")):
            fail(f"the db span {s.get('description')!r} is not under its helper's span: {users['spans']}")
        if not s["description"].startswith("SELECT"):
            fail(f"a db span without its statement: {s}")
    # The N+1 listing: one issue, titled after the repeated statement, linked to the trace.
    n1 = [e for e in events if e.get("tags", {}).get("performance_issue") == "n_plus_one_db_queries"]
    if len(n1) != 1:
        fail(f"expected one N+1 event for GET /users, got {len(n1)}: {[e.get('message') for e in n1]}")
    n1 = n1[0]
    if "SELECT COUNT(*) FROM posts WHERE user_id = ?" not in n1.get("message", "") or "GET /users" not in n1["message"]:
        fail(f"the N+1 event's title: {n1.get('message')!r}")
    listing = [t for t in txs if t["transaction"] == "GET /users"][0]
    if n1["contexts"]["trace"]["trace_id"] != listing["contexts"]["trace"]["trace_id"]:
        fail("the N+1 event is not linked to its request's trace")
    if n1.get("fingerprint", [None])[0] != "n_plus_one_db_queries":
        fail(f"the N+1 event's fingerprint: {n1.get('fingerprint')}")
    if "[lighttrace]" not in output:
        fail("no summary lines printed to stdout")
    print("quickstart-check: OK")


if __name__ == "__main__":
    main()
