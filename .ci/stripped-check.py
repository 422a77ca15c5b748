#!/usr/bin/env python3
"""A stripped release build's panic can be symbolicated server-side.

usage: stripped-check.py BINARY ENVELOPE_DIR

BINARY is examples/stripped.rs built in release and stripped of its symbols (as `strip = true`
does). The check reads the binary's GNU build id and its section names (no symbol table: really
stripped), runs it (it answers one request with a panic and flushes the event to ENVELOPE_DIR),
and asserts that the event's frames all carry instruction addresses and that
`debug_meta.images` holds the executable with that build id as its code id and the Breakpad
debug id derived from it, and a load address the frame addresses fall in. Exits non-zero with a reason on any failure.
"""
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import driver  # noqa: E402


def fail(msg):
    print(f"stripped-check: FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def elf_sections(path):
    """{name: (offset, size)} of a 64-bit little-endian ELF file's sections."""
    data = open(path, "rb").read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        fail(f"{path} is not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names_off = headers[shstrndx][4]
    sections = {}
    for h in headers:
        end = data.index(b"\0", names_off + h[0])
        sections[data[names_off + h[0]:end].decode()] = (h[4], h[5])
    return data, sections


def build_id(data, sections):
    off, size = sections.get(".note.gnu.build-id", (None, None))
    if off is None:
        fail("the binary has no .note.gnu.build-id")
    namesz, descsz, kind = struct.unpack_from("<III", data, off)
    if kind != 3:
        fail(f"unexpected note type {kind}")
    desc = off + 12 + ((namesz + 3) & ~3)
    return data[desc:desc + descsz]


def breakpad_debug_id(bid):
    g = bytearray(bid[:16].ljust(16, b"\0"))
    g[0:4] = g[0:4][::-1]
    g[4:6] = g[4:6][::-1]
    g[6:8] = g[6:8][::-1]
    h = g.hex()
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def main():
    binary, envdir = sys.argv[1], sys.argv[2]
    data, sections = elf_sections(binary)
    if ".symtab" in sections or ".debug_info" in sections:
        fail("the binary is not stripped (it has .symtab or .debug_info)")
    bid = build_id(data, sections).hex()
    os.makedirs(envdir, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "RUST_BACKTRACE"}
    env["LIGHTTRACE_ENVELOPE_DIR"] = envdir
    run = subprocess.run([binary], env=env, capture_output=True, text=True, timeout=60)
    if run.returncode != 0 or "answered 500" not in run.stdout:
        fail(f"the example did not answer its panic with a 500:\n{run.stdout}\n{run.stderr}")
    events = [p for t, p in driver.envelope_items(envdir) if t == "event"]
    if len(events) != 1:
        fail(f"expected one event, got {len(events)}")
    event = events[0]
    frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
    if not frames or any("instruction_addr" not in f for f in frames):
        fail(f"frames without instruction addresses: {frames}")
    images = event.get("debug_meta", {}).get("images", [])
    main_image = [i for i in images if i.get("code_id") == bid]
    if not main_image:
        fail(f"no image with the binary's build id {bid}: {images}")
    image = main_image[0]
    # `id` is the protocol's older name of `debug_id` (sentry-types writes it).
    debug_id = image.get("debug_id", image.get("id"))
    if debug_id != breakpad_debug_id(bytes.fromhex(bid)):
        fail(f"debug id {debug_id} does not match build id {bid}")
    start = int(image["image_addr"], 16)
    end = start + image["image_size"]
    inside = [f for f in frames if start <= int(f["instruction_addr"], 16) < end]
    if not inside:
        fail("no frame address falls in the executable's image")
    named = [f for f in frames if f.get("function")]
    print(f"stripped-check: OK: build id {bid}, {len(frames)} frames with addresses "
          f"({len(inside)} in the executable, {len(named)} named in-process), "
          f"{len(images)} images, image at {image['image_addr']}")


if __name__ == "__main__":
    main()
