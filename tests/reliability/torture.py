#!/usr/bin/env python3
"""Protocol torture: malformed frames of many kinds, over many connections from several
processes, against a running costd; while a well-behaved client on the side measures its own
latency.

Every malformed frame must get the right JSON-RPC error or a close, the daemon must never
crash, and the polite client must keep its p99 under the bound.

    torture.py --socket PATH [--frames 100000] [--processes 6] [--p99-ms 10]

Exits non-zero (and says why) on any wrong answer, on a crash, or when the p99 is over.
Kinds (the daemon is expected to run with limits.max_string_bytes = 4096 and
limits.max_frame_bytes = 65536, see tests/reliability/conftest.py):
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import socket
import struct
import sys
import threading
import time

MAX_FRAME = 65536
MAX_STRING = 4096

# kind -> (what it is, expected outcome)
KINDS = {
    "length-over-cap": "a header announcing more than the cap: -32002, then close",
    "length-short": "a length shorter than its JSON: -32700 for the cut frame",
    "truncated-then-close": "half a frame, then the client shuts down: the daemon closes",
    "invalid-utf8": "bytes that are not UTF-8 inside a string: -32700",
    "too-deep": "arrays nested past the depth limit: -32002",
    "unknown-method": "a method that does not exist: -32601",
    "wrong-types": "params of the wrong type: -32602",
    "oversize-value": "a string over the string limit: -32002",
    "random-bytes": "random bytes in a frame of the right length: -32700",
    "garbage-batch": "a batch of things that are not requests: -32600 for each",
    "not-json-rpc": "valid JSON that is not a request: -32600",
}


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


class Session:
    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(path)
        self.buffer = b""

    def read_frame(self) -> dict | None:
        while len(self.buffer) < 4:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buffer += chunk
        (length,) = struct.unpack(">I", self.buffer[:4])
        while len(self.buffer) < 4 + length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError("closed in the middle of an answer")
            self.buffer += chunk
        body, self.buffer = self.buffer[4:4 + length], self.buffer[4 + length:]
        return json.loads(body)

    def expect_closed(self) -> None:
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return
                self.buffer += chunk
        except ConnectionResetError:
            return

    def close(self) -> None:
        self.sock.close()


def error_code(answer: dict | None) -> int | None:
    if not isinstance(answer, dict) or "error" not in answer:
        return None
    return answer["error"].get("code")


def worker(path: str, frames: int, seed: int, results: "multiprocessing.Queue") -> None:
    # The attackers run at a lower priority than the polite client and the daemon, so that the
    # polite client's latency measures the daemon's fairness between connections, not how the
    # kernel shares two cores among seven busy Python processes (and whatever else the machine
    # runs). The daemon still gets every frame they can send.
    os.nice(10)
    rng = random.Random(seed)
    sent = 0
    wrong: list[str] = []
    per_kind = {kind: 0 for kind in KINDS}
    kinds = list(KINDS)
    session: Session | None = None
    try:
        while sent < frames:
            if session is None:
                session = Session(path)
            kind = kinds[sent % len(kinds)] if sent < len(kinds) * 2 else rng.choice(kinds)
            per_kind[kind] += 1
            sent += 1
            s = session
            if kind == "length-over-cap":
                s.sock.sendall(struct.pack(">I", rng.randint(MAX_FRAME + 1, 2**32 - 1)))
                if error_code(s.read_frame()) != -32002:
                    wrong.append(kind)
                s.expect_closed()
                s.close()
                session = None
            elif kind == "length-short":
                body = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
                cut = rng.randint(1, len(body) - 1)
                # The cut frame, then the rest of the body padded into a frame of its own.
                rest = body[cut:]
                s.sock.sendall(struct.pack(">I", cut) + body[:cut] + frame(rest))
                first, second = s.read_frame(), s.read_frame()
                if error_code(first) != -32700 or error_code(second) != -32700:
                    wrong.append(f"{kind}: {first} {second}")
            elif kind == "truncated-then-close":
                body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "x" * 200}}).encode()
                s.sock.sendall(struct.pack(">I", len(body)) + body[: rng.randint(0, len(body) - 1)])
                s.sock.shutdown(socket.SHUT_WR)
                if s.read_frame() is not None:
                    wrong.append(kind + ": answered a half frame")
                s.close()
                session = None
            elif kind == "invalid-utf8":
                s.sock.sendall(frame(b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"\xc3\x28\xff"}}'))
                if error_code(s.read_frame()) != -32700:
                    wrong.append(kind)
            elif kind == "too-deep":
                depth = rng.randint(65, 2000)
                s.sock.sendall(frame(b"[" * depth + b"]" * depth))
                if error_code(s.read_frame()) != -32002:
                    wrong.append(kind)
            elif kind == "unknown-method":
                s.sock.sendall(frame(json.dumps({"jsonrpc": "2.0", "id": sent, "method": f"no_such_{rng.randint(0, 999)}"}).encode()))
                answer = s.read_frame()
                if error_code(answer) != -32601 or answer.get("id") != sent:
                    wrong.append(kind)
            elif kind == "wrong-types":
                params = rng.choice([
                    {"model": 5, "prompt": "p"},
                    {"model": "gpt-4o", "inputTokens": "ten", "outputTokens": 1},
                    {"model": "gpt-4o", "inputTokens": -5, "outputTokens": 1},
                    {"model": "gpt-4o", "inputTokens": 1.5, "outputTokens": 1},
                    {"model": ["x"], "inputTokens": 1, "outputTokens": 1},
                ])
                method = "cacheGet" if "prompt" in params else "record"
                s.sock.sendall(frame(json.dumps({"jsonrpc": "2.0", "id": sent, "method": method, "params": params}).encode()))
                if error_code(s.read_frame()) != -32602:
                    wrong.append(kind)
            elif kind == "oversize-value":
                s.sock.sendall(frame(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "cacheSet", "params": {"model": "m", "prompt": "p", "value": "v" * (MAX_STRING + rng.randint(1, 4000))}}).encode()))
                if error_code(s.read_frame()) != -32002:
                    wrong.append(kind)
            elif kind == "random-bytes":
                body = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300)))
                # Keep it from being valid JSON: a leading 0xFF byte can never start a document.
                body = b"\xff" + body
                s.sock.sendall(frame(body))
                if error_code(s.read_frame()) != -32700:
                    wrong.append(kind)
            elif kind == "garbage-batch":
                count = rng.randint(1, 20)
                batch = [rng.choice([1, "x", None, [], {}, {"jsonrpc": "2.0"}, {"method": 5}]) for _ in range(count)]
                s.sock.sendall(frame(json.dumps(batch).encode()))
                answer = s.read_frame()
                if not isinstance(answer, list) or len(answer) != count or any(error_code(a) != -32600 for a in answer):
                    wrong.append(f"{kind}: {answer}")
            elif kind == "not-json-rpc":
                s.sock.sendall(frame(json.dumps(rng.choice([42, "hello", {"id": 1}, {"jsonrpc": "1.0", "id": 1, "method": "ping"}])).encode()))
                if error_code(s.read_frame()) != -32600:
                    wrong.append(kind)
            # Now and then start over on a new connection (many connections in all).
            if session is not None and rng.random() < 0.02:
                session.close()
                session = None
    except Exception as error:  # noqa: BLE001 - reported to the parent
        wrong.append(f"exception after {sent} frames: {error!r}")
    results.put((sent, per_kind, wrong[:20], len(wrong)))


def polite_client(path: str, stop: threading.Event, latencies: list[float], failures: list[str]) -> None:
    s = Session(path)
    request = frame(b'{"jsonrpc":"2.0","id":7,"method":"cacheGet","params":{"model":"m","prompt":"polite"}}')
    while not stop.is_set():
        started = time.perf_counter()
        s.sock.sendall(request)
        answer = s.read_frame()
        latencies.append(time.perf_counter() - started)
        if not answer or answer.get("id") != 7 or "result" not in answer:
            failures.append(repr(answer))
        time.sleep(0.001)
    s.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--socket", required=True)
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--processes", type=int, default=6)
    parser.add_argument("--p99-ms", type=float, default=10.0)
    args = parser.parse_args()

    stop = threading.Event()
    latencies: list[float] = []
    failures: list[str] = []
    polite = threading.Thread(target=polite_client, args=(args.socket, stop, latencies, failures))
    polite.start()
    started = time.time()
    queue: multiprocessing.Queue = multiprocessing.Queue()
    share = args.frames // args.processes + 1
    processes = [multiprocessing.Process(target=worker, args=(args.socket, share, seed, queue)) for seed in range(args.processes)]
    for process in processes:
        process.start()
    results = [queue.get(timeout=600) for _ in processes]
    for process in processes:
        process.join()
    stop.set()
    polite.join()
    elapsed = time.time() - started

    total = sum(r[0] for r in results)
    wrong = sum(r[3] for r in results)
    kinds: dict[str, int] = {}
    for _, per_kind, _, _ in results:
        for kind, count in per_kind.items():
            kinds[kind] = kinds.get(kind, 0) + count
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else float("inf")
    p50 = latencies[len(latencies) // 2] * 1000 if latencies else float("inf")
    print(f"torture: {total} malformed frames of {len(kinds)} kinds in {elapsed:.1f} s from {args.processes} processes")
    for kind, count in sorted(kinds.items()):
        print(f"  {kind:22} {count:7}  ({KINDS[kind]})")
    print(f"  wrong answers: {wrong}")
    for _, _, examples, _ in results:
        for example in examples[:3]:
            print(f"    e.g. {example}")
    print(f"polite client: {len(latencies)} calls, p50 {p50:.2f} ms, p99 {p99:.2f} ms, {len(failures)} failures")
    ok = wrong == 0 and not failures and p99 <= args.p99_ms and total >= args.frames and len(kinds) >= 8
    if p99 > args.p99_ms:
        print(f"FAIL: the polite client's p99 {p99:.2f} ms is over {args.p99_ms} ms")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
