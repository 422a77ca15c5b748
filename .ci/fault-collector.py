#!/usr/bin/env python3
"""A Sentry-protocol collector that misbehaves on demand, for the transport fault suite.

usage: fault-collector.py PORT        (listens on 127.0.0.1:PORT)

Envelopes go to POST /api/<project>/envelope/. The mode is set with POST /mode/<name> and the
counts read with GET /stats (JSON); both on the same port, and answered in every mode but
`down` (the control port is then a second one: PORT+1 always answers).

Modes:
  healthy     200, the envelope is counted as received
  down        nothing listens on PORT: connections are refused
  slow        200 after 1 s
  hung        never answers
  429         429 with Retry-After: 1 (the items are counted as rate limited by the server)
  ratelimit   200 with X-Sentry-Rate-Limits: 2:transaction:organization (received)
  500         500 (the server failed: not received)
  reset       reads the request, then resets the connection
  garbage     reads the request, then answers bytes that are not HTTP
  flapping    healthy and hung, 2 s each

Counts (GET /stats): received events (by event id) and transactions (by event id), the items
the server rate limited, and the sums of the client reports received, by reason and category.
"""
import gzip
import json
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {"mode": "healthy", "since": time.time()}
STATS = {
    "events": set(),
    "transactions": set(),
    "duplicates": 0,
    "ratelimited": {"error": 0, "transaction": 0},
    "reports": {},
    "envelopes": 0,
}


def parse(raw):
    """(header, [(item header, payload)]) of an envelope."""
    nl = raw.find(b"\n")
    header = json.loads(raw[:nl] if nl >= 0 else raw)
    pos = len(raw) if nl < 0 else nl + 1
    items = []
    while pos < len(raw):
        nl = raw.find(b"\n", pos)
        line = raw[pos:] if nl < 0 else raw[pos:nl]
        pos = len(raw) if nl < 0 else nl + 1
        if not line.strip():
            continue
        ih = json.loads(line)
        if "length" in ih:
            payload = raw[pos:pos + ih["length"]]
            pos += ih["length"] + 1
        else:
            nl = raw.find(b"\n", pos)
            payload = raw[pos:] if nl < 0 else raw[pos:nl]
            pos = len(raw) if nl < 0 else nl + 1
        items.append((ih, payload))
    return header, items


def mode():
    with LOCK:
        m = STATE["mode"]
        if m == "flapping":
            phase = int((time.time() - STATE["since"]) / 2) % 2
            return "healthy" if phase == 0 else "hung"
        return m


def record(raw, accepted):
    header, items = parse(raw)
    with LOCK:
        for ih, payload in items:
            ty = ih.get("type")
            if ty in ("event", "transaction"):
                body = json.loads(payload)
                key = "events" if ty == "event" else "transactions"
                if not accepted:
                    STATS["ratelimited"]["error" if ty == "event" else "transaction"] += 1
                    continue
                if body.get("event_id") in STATS[key]:
                    STATS["duplicates"] += 1
                STATS[key].add(body.get("event_id"))
            elif ty == "client_report" and accepted:
                for d in json.loads(payload).get("discarded_events", []):
                    k = f'{d["reason"]}/{d["category"]}'
                    STATS["reports"][k] = STATS["reports"].get(k, 0) + d["quantity"]
        if accepted:
            STATS["envelopes"] += 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # Headers and body go out in two writes: without this, each answer waits for the
        # client's delayed ACK (40 ms), and the collector, not the SDK, sets the pace.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    def answer(self, status, body=b"{}", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/stats":
            with LOCK:
                out = {
                    "mode": STATE["mode"],
                    "events": len(STATS["events"]),
                    "transactions": len(STATS["transactions"]),
                    "duplicates": STATS["duplicates"],
                    "ratelimited": STATS["ratelimited"],
                    "reports": STATS["reports"],
                    "envelopes": STATS["envelopes"],
                }
            self.answer(200, json.dumps(out).encode())
        else:
            self.answer(404)

    def do_POST(self):
        if self.path.startswith("/mode/"):
            self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
            new = self.path[len("/mode/"):]
            with LOCK:
                STATE["mode"], STATE["since"] = new, time.time()
            LISTENER.set_down(new == "down")
            self.answer(200)
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
        if self.server is CONTROL:
            self.answer(404)
            return
        m = mode()
        if m == "down":
            # A connection kept alive from before the outage: it dies with it.
            self.close_connection = True
            return
        if m == "hung":
            time.sleep(3600)
            return
        if m == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        if m == "garbage":
            self.wfile.write(b"\x00\x01garbage\xff\r\n\r\nnot http at all")
            self.close_connection = True
            return
        if m == "slow":
            time.sleep(1)
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if m == "500":
            self.answer(500)
            return
        if m == "429":
            record(body, accepted=False)
            self.answer(429, headers=[("Retry-After", "1")])
            return
        record(body, accepted=True)
        limits = [("X-Sentry-Rate-Limits", "2:transaction:organization")] if m == "ratelimit" else []
        self.answer(200, b'{"id":"ok"}', limits)


class Listener:
    """The envelope port: stops listening in `down` mode (connections refused)."""

    def __init__(self, port):
        self.port = port
        self.server = None
        self.start()

    def start(self):
        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def set_down(self, down):
        if down and self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        elif not down and self.server is None:
            self.start()


if __name__ == "__main__":
    port = int(sys.argv[1])
    LISTENER = Listener(port)
    CONTROL = ThreadingHTTPServer(("127.0.0.1", port + 1), Handler)
    CONTROL.daemon_threads = True
    print(f"fault collector on {port}, control on {port + 1}", flush=True)
    CONTROL.serve_forever()
