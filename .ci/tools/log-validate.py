#!/usr/bin/env python3
"""Validate the structured-log items of Sentry envelopes against the documented schema
(develop.sentry.dev: envelope item `log`, a container of logs). Relay's Python bindings do not
normalise logs, so this checks what Relay would reject or drop:

  * item header: type "log", content_type "application/vnd.sentry.items.log+json", integer
    item_count equal to the number of logs, at most 100 logs per item (Relay's limit)
  * payload: a JSON object whose "items" is a list
  * each log: numeric timestamp, trace_id of 32 lower-case hex digits, level one of
    trace|debug|info|warn|error|fatal, string body, optional severity_number 1..24, and
    attributes as {"value": v, "type": t} with t in string|integer|double|boolean and v of that type
  * an envelope whose logs belong to more than one trace carries no `trace` (DSC) header

usage: log-validate.py [-q] FILE...      (files without log items are counted and skipped)
Exit status 1 on any problem.
"""
import json
import re
import sys

LEVELS = {"trace", "debug", "info", "warn", "error", "fatal"}
TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "double": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}
HEX32 = re.compile(r"^[0-9a-f]{32}$")


def items(raw):
    """(header, payload) pairs; items without `length` end at the next newline."""
    nl = raw.find(b"\n")
    header = json.loads(raw[:nl] if nl >= 0 else raw)
    pos = len(raw) if nl < 0 else nl + 1
    out = []
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
        out.append((ih, payload))
    return header, out


def check_log(log, where):
    problems = []
    if not isinstance(log, dict):
        return [f"{where}: a log must be an object"]
    ts = log.get("timestamp")
    if not isinstance(ts, (int, float)) or isinstance(ts, bool) or ts <= 0:
        problems.append(f"{where}: timestamp must be a positive number, got {ts!r}")
    if not isinstance(log.get("trace_id"), str) or not HEX32.match(log["trace_id"]):
        problems.append(f"{where}: trace_id must be 32 lower-case hex digits, got {log.get('trace_id')!r}")
    if log.get("level") not in LEVELS:
        problems.append(f"{where}: level must be one of {sorted(LEVELS)}, got {log.get('level')!r}")
    if not isinstance(log.get("body"), str):
        problems.append(f"{where}: body must be a string")
    if "severity_number" in log:
        n = log["severity_number"]
        if not isinstance(n, int) or not 1 <= n <= 24:
            problems.append(f"{where}: severity_number must be 1..24, got {n!r}")
    attributes = log.get("attributes", {})
    if not isinstance(attributes, dict):
        problems.append(f"{where}: attributes must be an object")
        attributes = {}
    for key, attr in attributes.items():
        if not isinstance(attr, dict) or set(attr) != {"value", "type"}:
            problems.append(f"{where}: attribute {key!r} must be {{value, type}}, got {attr!r}")
            continue
        check = TYPES.get(attr["type"])
        if check is None:
            problems.append(f"{where}: attribute {key!r} has unknown type {attr['type']!r}")
        elif not check(attr["value"]):
            problems.append(f"{where}: attribute {key!r} of type {attr['type']} has value {attr['value']!r}")
    return problems


def check(path):
    raw = open(path, "rb").read()
    try:
        header, parts = items(raw)
    except (ValueError, KeyError) as e:
        return None, [f"{path}: not an envelope: {e}"]
    problems, count, traces = [], 0, set()
    for ih, payload in parts:
        if ih.get("type") != "log":
            continue
        where = f"{path}: log item"
        if ih.get("content_type") != "application/vnd.sentry.items.log+json":
            problems.append(f"{where}: content_type is {ih.get('content_type')!r}")
        try:
            body = json.loads(payload)
        except ValueError as e:
            problems.append(f"{where}: payload is not JSON: {e}")
            continue
        logs = body.get("items") if isinstance(body, dict) else None
        if not isinstance(logs, list):
            problems.append(f"{where}: payload needs an `items` list")
            continue
        if ih.get("item_count") != len(logs):
            problems.append(f"{where}: item_count {ih.get('item_count')!r} but {len(logs)} logs")
        if len(logs) > 100:
            problems.append(f"{where}: {len(logs)} logs in one item (at most 100)")
        for i, log in enumerate(logs):
            problems += check_log(log, f"{where} #{i}")
            if isinstance(log, dict):
                traces.add(log.get("trace_id"))
        count += len(logs)
    if len(traces) > 1 and "trace" in header:
        problems.append(f"{path}: logs of {len(traces)} traces under one `trace` header")
    return count, problems


def main():
    args = [a for a in sys.argv[1:] if a != "-q"]
    quiet = "-q" in sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    total_logs, files_with_logs, problems = 0, 0, []
    for path in args:
        count, found = check(path)
        problems += found
        if count:
            total_logs += count
            files_with_logs += 1
    for p in problems:
        print(p)
    if quiet and not problems and not total_logs:
        print("no logs found")
    print(f"{len(args)} file(s), {files_with_logs} with logs, {total_logs} log(s), {len(problems)} problem(s)")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
