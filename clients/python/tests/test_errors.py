"""Error answers become the right exception classes, with code, message and data."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import time
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

import costd
from costd import _wire

ALL = [
    (costd.ParseError, -32700),
    (costd.InvalidRequest, -32600),
    (costd.MethodNotFound, -32601),
    (costd.InvalidParams, -32602),
    (costd.InternalError, -32603),
    (costd.BudgetExceeded, -32000),
    (costd.UnknownModel, -32001),
    (costd.PayloadTooLarge, -32002),
    (costd.BackendUnavailable, -32003),
    (costd.LeaseMismatch, -32004),
    (costd.Overloaded, -32005),
    (costd.ShuttingDown, -32006),
]


@pytest.mark.parametrize("cls,code", ALL)
def test_every_code_maps_to_its_class(cls: type, code: int) -> None:
    exc = costd.error_from_response({"code": code, "message": "m", "data": {"k": 1}})
    assert type(exc) is cls and isinstance(exc, costd.CostdError)
    assert (exc.code, exc.message, exc.data) == (code, "m", {"k": 1})
    assert cls.default_code == code
    assert str(exc) == f"[{code}] m"


def test_unknown_code_is_the_base_class() -> None:
    exc = costd.error_from_response({"code": -31999, "message": "new"})
    assert type(exc) is costd.CostdError and exc.code == -31999 and exc.data is None


def test_daemon_unavailable_is_a_connection_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "nothing.sock")
    with pytest.raises(costd.DaemonUnavailable) as info:
        costd.Client(missing).ping()
    assert isinstance(info.value, ConnectionError)
    assert missing in str(info.value)

    async def run() -> None:
        with pytest.raises(ConnectionError):
            await costd.AsyncClient(missing).ping()

    asyncio.run(run())


def test_method_not_found(client: costd.Client) -> None:
    with pytest.raises(costd.MethodNotFound) as info:
        client.call("noSuchMethod", {})
    assert info.value.code == -32601 and info.value.data == {"method": "noSuchMethod"}


def test_invalid_params_names_the_parameter(client: costd.Client) -> None:
    with pytest.raises(costd.InvalidParams) as info:
        client.record("gpt-4o")
    assert info.value.code == -32602 and "inputTokens" in info.value.message
    with pytest.raises(costd.InvalidParams, match="date"):
        client.report(date="2026-13-45")
    with pytest.raises(costd.InvalidParams, match="period"):
        client.report(period="week")
    with pytest.raises(costd.InvalidParams, match="inputTokens"):
        client.record("gpt-4o", input_tokens=-1, output_tokens=0)
    with pytest.raises(costd.InvalidParams, match="model"):
        client.cache_get(5, "p")  # type: ignore[arg-type]
    # The connection is still good.
    assert client.ping()["pong"] is True


def test_unknown_model(client: costd.Client) -> None:
    with pytest.raises(costd.UnknownModel) as info:
        client.record("no-such-model", input_tokens=10, output_tokens=1)
    assert info.value.code == -32001 and info.value.data == {"model": "no-such-model"}
    with pytest.raises(costd.UnknownModel):
        client.estimate("no-such-model", daily_requests=1, avg_input_tokens=1, avg_output_tokens=1)
    # No silent zero was recorded.
    assert client.report()["requests"] == 0


def test_parse_error_and_invalid_request_from_the_daemon(client: costd.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    real = _wire.encode_frame

    def broken_json(message: Any, max_frame_bytes: Any = None) -> bytes:
        body = b'{"jsonrpc": "2.0", "id": ' + json.dumps(message.get("id")).encode() + b', "method": '
        return _wire.HEADER.pack(len(body)) + body

    monkeypatch.setattr(_wire, "encode_frame", broken_json)
    with pytest.raises(costd.ParseError) as info:
        client.ping()
    assert info.value.code == -32700

    def wrong_version(message: Any, max_frame_bytes: Any = None) -> bytes:
        return real({**message, "jsonrpc": "1.0"}, max_frame_bytes)

    monkeypatch.setattr(_wire, "encode_frame", wrong_version)
    with pytest.raises(costd.InvalidRequest) as info2:
        client.ping()
    assert info2.value.code == -32600

    monkeypatch.setattr(_wire, "encode_frame", real)
    assert client.ping()["pong"] is True  # the connection stayed usable
    assert client.connections_opened == 1


def test_payload_too_large_is_checked_by_the_client(client: costd.Client) -> None:
    with pytest.raises(costd.PayloadTooLarge) as info:
        client.cache_set("m", "big", "x" * (5 * 1024 * 1024))
    assert info.value.code == -32002 and info.value.data["limit"] == 4 * 1024 * 1024
    assert client.connections_opened == 0  # nothing was sent


def test_payload_too_large_from_the_daemon_then_reconnect(make_daemon) -> None:
    daemon = make_daemon(config="[limits]\nmax_frame_bytes = 1024\nmax_json_depth = 16\n")
    with costd.Client(daemon.socket, max_frame_bytes=None) as c:
        assert c.ping()["pong"] is True
        with pytest.raises(costd.PayloadTooLarge) as info:
            c.cache_set("m", "big", "x" * 4000)
        assert info.value.data == {"limit": 1024}
        # The daemon closed that connection; the next call opens another.
        assert c.ping()["pong"] is True
        assert c.connections_opened == 2
        nested: Any = []
        for _ in range(20):
            nested = [nested]
        with pytest.raises(costd.PayloadTooLarge) as info2:
            c.cache_get("m", nested)
        assert info2.value.data == {"limit": 16}
        assert c.ping()["pong"] is True
        assert c.connections_opened == 2  # too deep does not close the connection


def test_lone_surrogates_are_refused_before_sending(client: costd.Client) -> None:
    with pytest.raises(ValueError):
        client.cache_get("m", "\ud800")
    with pytest.raises(ValueError):
        client.cache_set("m", "p", float("nan"))
    assert client.ping()["pong"] is True


def test_budget_exceeded_with_hard_budget(make_daemon) -> None:
    daemon = make_daemon(config="[budget]\ndaily = 0.01\nhard_daily = true\n")
    with costd.Client(daemon.socket) as c:
        c.record("gpt-4o", 1000, 500)
        c.record("gpt-4o", 1000, 500)
        with pytest.raises(costd.BudgetExceeded) as info:
            c.route(task="summarization")
        assert info.value.code == -32000


def test_overloaded_past_max_connections(make_daemon) -> None:
    daemon = make_daemon(config="[limits]\nmax_connections = 1\n")
    with costd.Client(daemon.socket) as first, costd.Client(daemon.socket) as second:
        # The fixture's readiness probe may still hold the one slot for a moment.
        for _ in range(100):
            try:
                assert first.ping()["pong"] is True
                break
            except costd.Overloaded:
                time.sleep(0.02)
        else:
            pytest.fail("the first connection was never admitted")
        with pytest.raises(costd.Overloaded) as info:
            second.ping()
        assert info.value.code == -32005


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A Unix socket that accepts and never answers."""
    root = tempfile.mkdtemp(prefix="costd-py-")
    path = os.path.join(root, "silent.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)
    accepted = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.05)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()
        shutil.rmtree(root, ignore_errors=True)


def test_timeout(silent_server: str) -> None:
    with costd.Client(silent_server, timeout=0.2) as c:
        with pytest.raises(costd.Timeout) as info:
            c.ping()
        assert isinstance(info.value, TimeoutError) and isinstance(info.value, costd.DaemonUnavailable)
        assert not c.connected  # a timed-out stream is dropped, never reused

    async def run() -> None:
        async with costd.AsyncClient(silent_server, timeout=0.2) as a:
            with pytest.raises(costd.Timeout):
                await a.ping()
            assert a.in_flight == 0

    asyncio.run(run())
