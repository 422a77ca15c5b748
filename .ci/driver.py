"""Helpers shared by the CI scripts that drive the examples: ports, requests, start and stop, and
reading the envelope files they write."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request


def fail(who, msg):
    print(f"{who}: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def call(base, method, path, headers=None):
    """(status, body) of a request; HTTP errors are answers too."""
    data = b"" if method == "POST" else None
    req = urllib.request.Request(base + path, method=method, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def start(binary, env, who):
    """Starts the quickstart binary and waits until /health answers; returns (process, base URL)."""
    port = free_port()
    env = dict(env, PORT=str(port))
    env.pop("RUST_BACKTRACE", None)
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while True:
        try:
            if call(base, "GET", "/health")[0] == 200:
                return proc, base
        except OSError:
            pass
        if time.time() > deadline or proc.poll() is not None:
            proc.kill()
            fail(who, "the quickstart did not come up")
        time.sleep(0.1)


def stop(proc, who, timeout=30):
    """SIGTERM (graceful shutdown and flush), then the output; fails on a hang or a bad exit."""
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        fail(who, f"the quickstart did not shut down within {timeout} s")
    output = out.decode(errors="replace")
    print(output)
    if proc.returncode != 0:
        fail(who, f"exit code {proc.returncode}")
    return output


def parse_envelope(raw):
    """(envelope header, [(item header, payload)]) of one envelope's bytes."""
    lines = raw.split(b"\n")
    header = json.loads(lines[0])
    items, pos = [], len(lines[0]) + 1
    while pos < len(raw):
        nl = raw.find(b"\n", pos)
        if nl < 0:
            break
        ih = json.loads(raw[pos:nl])
        pos = nl + 1
        n = ih["length"]
        items.append((ih, json.loads(raw[pos:pos + n])))
        pos += n + 1
    return header, items


def envelope_items(envdir):
    """(item type, payload) of every item of every envelope file in envdir, in file order."""
    for name in sorted(os.listdir(envdir)):
        with open(os.path.join(envdir, name), "rb") as f:
            for ih, payload in parse_envelope(f.read())[1]:
                yield ih["type"], payload
