"""Reconnecting after the daemon restarts, and the retry rules that keep records exact."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import struct
import tempfile
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

import costd


def test_client_survives_a_restart(daemon) -> None:
    with costd.Client(daemon.socket) as c:
        c.record("gpt-4o", 1000, 500, record_id="before-restart")
        first_uptime = c.ping()["uptimeSeconds"]
        daemon.restart()  # SIGTERM, then a new process on the same socket and state dir
        pong = c.ping()
        assert pong["pong"] is True and pong["uptimeSeconds"] < first_uptime + 5
        assert c.connections_opened == 2
        # The ledger survived, and so did the recordId window: no double count.
        assert c.report()["totalCostUsd"] == 0.0075
        again = c.record("gpt-4o", 1000, 500, record_id="before-restart")
        assert again.get("duplicate") is True
        assert c.report()["requests"] == 1
        # A record (with its generated recordId) right after another restart.
        daemon.restart()
        assert c.record("gpt-4o", 1000, 500)["day"]["spentUsd"] == 0.015
        assert c.connections_opened == 3


def test_client_raises_while_down_and_recovers(daemon) -> None:
    with costd.Client(daemon.socket) as c:
        assert c.ping()["pong"] is True
        daemon.stop()
        with pytest.raises(costd.DaemonUnavailable):
            c.ping()
        with pytest.raises(costd.DaemonUnavailable):
            c.record("gpt-4o", 1, 1)
        daemon.start()
        assert c.ping()["pong"] is True
        assert c.report()["requests"] == 0  # the failed record was not counted


def test_async_client_survives_a_restart(daemon) -> None:
    async def run() -> None:
        async with costd.AsyncClient(daemon.socket) as a:
            assert (await a.ping())["pong"] is True
            daemon.restart()
            results = await asyncio.gather(*(a.ping() for _ in range(20)))
            assert all(r["pong"] for r in results)
            assert a.connections_opened == 2
            await a.record("gpt-4o", 1000, 500)
            assert (await a.report())["requests"] == 1

    asyncio.run(run())


# --------------------------------------------------------------------------------------------
# A scripted server, to break a connection at exactly the wrong moment.


class ScriptedServer:
    """Answers like costd, except that it drops its first connection right after reading
    ``drop_after`` requests, without answering them (as a daemon that died mid-call)."""

    def __init__(self, drop_after: int = 1) -> None:
        self.root = tempfile.mkdtemp(prefix="costd-py-")
        self.path = os.path.join(self.root, "fake.sock")
        self.drop_after = drop_after
        self.requests: List[Dict[str, Any]] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.path)
        self._server.listen(16)
        self._stop = threading.Event()
        self._threads: List[threading.Thread] = []
        self._accept = threading.Thread(target=self._serve, daemon=True)
        self._accept.start()

    def _serve(self) -> None:
        self._server.settimeout(0.05)
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                continue
            with self._lock:
                self.connections += 1
                number = self.connections
            thread = threading.Thread(target=self._handle, args=(conn, number), daemon=True)
            thread.start()
            self._threads.append(thread)

    @staticmethod
    def _read(conn: socket.socket, size: int) -> Optional[bytes]:
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def _handle(self, conn: socket.socket, number: int) -> None:
        seen = 0
        conn.settimeout(5)
        try:
            while True:
                header = self._read(conn, 4)
                if header is None:
                    return
                body = self._read(conn, struct.unpack(">I", header)[0])
                if body is None:
                    return
                request = json.loads(body)
                with self._lock:
                    self.requests.append(request)
                seen += 1
                if number == 1 and seen >= self.drop_after:
                    return  # drop the connection without answering
                result: Any = {"pong": True} if request["method"] == "ping" else {"echo": request.get("params")}
                answer = json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}).encode()
                conn.sendall(struct.pack(">I", len(answer)) + answer)
        except OSError:
            return
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._accept.join()
        self._server.close()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedServer]]:
    servers: List[ScriptedServer] = []

    def make(**kwargs: Any) -> ScriptedServer:
        server = ScriptedServer(**kwargs)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def test_lost_record_answer_is_retried_with_the_same_record_id(scripted) -> None:
    server = scripted()
    with costd.Client(server.path, timeout=5) as c:
        result = c.record("gpt-4o", input_tokens=10, output_tokens=1)
    sent = [r for r in server.requests if r["method"] == "record"]
    assert len(sent) == 2 and server.connections == 2
    # Both sends carry the same generated recordId: the daemon counts the call once.
    assert sent[0]["params"] == sent[1]["params"]
    assert isinstance(sent[0]["params"]["recordId"], str)
    assert result["echo"]["recordId"] == sent[0]["params"]["recordId"]


def test_lost_answer_of_an_unknown_method_is_not_retried(scripted) -> None:
    server = scripted()
    with costd.Client(server.path, timeout=5) as c:
        with pytest.raises(costd.DaemonUnavailable):
            c.call("reserve", {"model": "gpt-4o", "inputTokens": 10})
        assert len(server.requests) == 1  # it may have been executed: never sent twice
        # ... unless the caller says it is safe.
        assert c.call("reserve", {"model": "gpt-4o"}, idempotent=True)["echo"] == {"model": "gpt-4o"}
        assert c.call("ping")["pong"] is True


def test_async_lost_answers_are_retried_once(scripted) -> None:
    server = scripted(drop_after=5)

    async def run() -> None:
        async with costd.AsyncClient(server.path, timeout=5) as a:
            results = await asyncio.gather(*(a.record("gpt-4o", i, 1) for i in range(10)))
            assert [r["echo"]["inputTokens"] for r in results] == list(range(10))
            assert a.connections_opened == 2

    asyncio.run(run())
    by_id: Dict[str, List[Dict[str, Any]]] = {}
    for request in server.requests:
        by_id.setdefault(request["params"]["recordId"], []).append(request["params"])
    assert len(by_id) == 10
    for sends in by_id.values():
        assert 1 <= len(sends) <= 2 and all(s == sends[0] for s in sends)
