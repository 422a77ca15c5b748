#!/usr/bin/env python3
"""Drive the gRPC example with another implementation's client (grpcio, gRPC's C core), then
check what it reported.

usage: grpc-check.py GRPC_EXAMPLE_BINARY ENVELOPE_DIR   (run with a Python that has grpcio)

Starts the binary on a free 127.0.0.1 port with no DSN (envelope files), makes every kind of
call (unary ok / NOT_FOUND / INTERNAL / panic / past its deadline, a server stream that fails
after three updates, one the client cancels, a client stream), asserts what the client saw,
stops the server with SIGTERM (graceful shutdown + flush) and asserts on the envelope files.
The messages are encoded by hand (two fields each), so no protoc and no generated code.
"""
import os
import signal
import subprocess
import sys
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import driver  # noqa: E402

WHO = "grpc-check"


def fail(msg):
    driver.fail(WHO, msg)


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def encode_order(order):
    item, quantity = order
    raw = item.encode()
    return b"\x0a" + varint(len(raw)) + raw + b"\x10" + varint(quantity)


def decode(raw):
    """{field number: value} of a message whose fields are strings (wire type 2) or varints."""
    fields, pos = {}, 0
    while pos < len(raw):
        key, pos = read_varint(raw, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            fields[number], pos = read_varint(raw, pos)
        elif wire == 2:
            length, pos = read_varint(raw, pos)
            fields[number] = raw[pos:pos + length].decode()
            pos += length
        else:
            fail(f"unexpected wire type {wire}")
    return fields


def read_varint(raw, pos):
    n, shift = 0, 0
    while True:
        b = raw[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, pos


def expect_error(call, code, who, also=None):
    """`also`: another (code, details) the client may see instead, when two timers race."""
    try:
        call()
    except grpc.RpcError as e:
        if e.code() != code and (e.code(), e.details()) != also:
            fail(f"{who}: expected {code}, got {e.code()} ({e.details()})")
        return e
    fail(f"{who}: expected {code}, got an answer")


def exercise(port):
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    grpc.channel_ready_future(channel).result(timeout=30)
    place = channel.unary_unary("/shop.Orders/Place", request_serializer=encode_order,
                                response_deserializer=decode)
    track = channel.unary_stream("/shop.Orders/Track", request_serializer=encode_order,
                                 response_deserializer=decode)
    basket = channel.stream_unary("/shop.Orders/Basket", request_serializer=encode_order,
                                  response_deserializer=decode)

    receipt = place(("book", 2), timeout=10,
                    metadata=(("x-tenant", "acme"), ("x-session-bin", b"\x00secret")))
    if receipt.get(1) != "order-book-2":
        fail(f"Place(book): {receipt}")
    expect_error(lambda: place(("unknown", 1), timeout=10), grpc.StatusCode.NOT_FOUND, "Place(unknown)")
    broken = expect_error(lambda: place(("broken", 1), timeout=10), grpc.StatusCode.INTERNAL, "Place(broken)")
    if broken.details() != "the order could not be stored":
        fail(f"Place(broken) details: {broken.details()!r}")
    expect_error(lambda: place(("panic", 1), timeout=10), grpc.StatusCode.INTERNAL, "Place(panic)")
    # The client's own deadline and tonic's server-side one (from grpc-timeout) expire together:
    # whichever fires first decides what the client reads (tonic answers CANCELLED "Timeout
    # expired"). The server's record of the call is DEADLINE_EXCEEDED either way (checked below).
    expect_error(lambda: place(("slow", 1), timeout=0.2), grpc.StatusCode.DEADLINE_EXCEEDED, "Place(slow)",
                 also=(grpc.StatusCode.CANCELLED, "Timeout expired"))

    steps = []

    def read_lost():
        for update in track(("lost", 1), timeout=10):
            steps.append(update.get(1))
    expect_error(read_lost, grpc.StatusCode.UNAVAILABLE, "Track(lost)")
    if steps != [1, 2, 3]:
        fail(f"Track(lost) updates: {steps}")

    endless = track(("endless", 1), timeout=10)
    if [next(endless).get(1), next(endless).get(1)] != [1, 2]:
        fail("Track(endless): the first updates")
    endless.cancel()

    total = basket(iter([("a", 1), ("b", 2), ("c", 3)]), timeout=10)
    if total.get(2) != 6:
        fail(f"Basket: {total}")
    channel.close()


def main():
    binary, envdir = sys.argv[1], sys.argv[2]
    port = driver.free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("LIGHTTRACE_DSN", "SENTRY_DSN", "RUST_BACKTRACE")}
    env.update(LIGHTTRACE_ENVELOPE_DIR=envdir, PORT=str(port))
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        exercise(port)
        time.sleep(0.2)  # the cancelled stream's end reaches the server
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            fail("the example did not shut down within 30 s")
        print(out.decode(errors="replace"))
    if proc.returncode != 0:
        fail(f"exit code {proc.returncode}")

    items = list(driver.envelope_items(envdir))
    txs = [p for t, p in items if t == "transaction"]
    events = [p for t, p in items if t == "event"]

    def statuses(name):
        return sorted(t["contexts"]["trace"].get("status") for t in txs if t.get("transaction") == name)

    expected = {
        "shop.Orders/Place": sorted(["ok", "not_found", "internal_error", "internal_error", "deadline_exceeded"]),
        "shop.Orders/Track": sorted(["unavailable", "cancelled"]),
        "shop.Orders/Basket": ["ok"],
    }
    for name, want in expected.items():
        if statuses(name) != want:
            fail(f"{name}: transaction statuses {statuses(name)}, expected {want}")
    for tx in txs:
        trace = tx["contexts"]["trace"]
        if trace.get("op") != "grpc.server" or trace["data"].get("rpc.system") != "grpc":
            fail(f"{tx.get('transaction')}: op {trace.get('op')}, data {trace.get('data')}")
    headers = next(t["request"]["headers"] for t in txs
                   if t["contexts"]["trace"].get("status") == "ok" and t["transaction"].endswith("Place"))
    if headers.get("X-Tenant") != "acme" or headers.get("X-Session-Bin") != "[Filtered]":
        fail(f"metadata as headers: {headers}")

    titles = sorted(e.get("message") or e["exception"]["values"][-1]["type"] for e in events)
    want = sorted(["gRPC INTERNAL on shop.Orders/Place", "panic",
                   "gRPC DEADLINE_EXCEEDED on shop.Orders/Place", "gRPC UNAVAILABLE on shop.Orders/Track"])
    if titles != want:
        fail(f"events {titles}, expected {want}")
    internal = next(e for e in events if e.get("message") == "gRPC INTERNAL on shop.Orders/Place")
    chain = [x.get("value") for x in internal.get("exception", {}).get("values", [])]
    if chain != ["the orders database refused the connection"]:
        fail(f"the INTERNAL event's source error: {chain}")
    print(f"{WHO}: OK: {len(txs)} transactions and {len(events)} events from a grpcio client")


if __name__ == "__main__":
    main()
