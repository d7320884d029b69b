"""The asyncio client: one pipelined connection shared by concurrent awaits."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, List

import pytest

import costd


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_100_concurrent_awaits_share_one_connection(daemon, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: List[str] = []
    real_open = asyncio.open_unix_connection

    async def counting_open(path: Any = None, **kwargs: Any) -> Any:
        opened.append(path)
        return await real_open(path, **kwargs)

    monkeypatch.setattr(asyncio, "open_unix_connection", counting_open)

    async def main() -> None:
        async with costd.AsyncClient(daemon.socket) as a:
            # All 100 start before the connection exists: still one connect.
            tasks = [asyncio.ensure_future(a.cache_set("m", {"i": i}, {"value": i * i})) for i in range(100)]
            await asyncio.sleep(0)
            peak = 0
            while not all(t.done() for t in tasks):
                peak = max(peak, a.in_flight)
                await asyncio.sleep(0)
            assert all(t.result()["stored"] for t in tasks)

            # 100 reads, answers dispatched by id: each gets ITS value.
            gets = [a.cache_get("m", {"i": i}) for i in range(100)]
            values = await asyncio.gather(*gets)
            assert [v["value"] for v in values] == [{"value": i * i} for i in range(100)]
            assert a.connections_opened == 1
            assert peak > 1, "calls were not pipelined"

    run(main())
    assert len(opened) == 1


def test_pipelined_mixed_methods_match_by_id(daemon) -> None:
    async def main() -> None:
        async with costd.AsyncClient(daemon.socket) as a:
            await a.connect()
            ids = [str(uuid.uuid4()) for _ in range(40)]
            calls: List[Any] = []
            for i, record_id in enumerate(ids):
                # record answers wait for the disk and may come back after later pings.
                calls.append(a.record("gpt-4o", input_tokens=1000 + i, output_tokens=1, record_id=record_id))
                calls.append(a.ping())
                calls.append(a.route(task="classification", input_tokens=i + 1))
            results = await asyncio.gather(*calls)
            for i, record_id in enumerate(ids):
                record, pong, routed = results[3 * i : 3 * i + 3]
                assert record["recordId"] == record_id
                assert pong["pong"] is True
                assert routed["inputTokens"] == i + 1
            report = await a.report()
            assert report["requests"] == 40
            assert report["inputTokens"] == sum(1000 + i for i in range(40))
            assert a.connections_opened == 1

    run(main())


def test_every_method_async(daemon) -> None:
    async def main() -> None:
        async with costd.AsyncClient(daemon.socket) as a:
            assert (await a.ping())["pong"] is True
            assert (await a.route(task="translation"))["tier"] == "simple"
            assert (await a.cacheSet("m", "p", "v", ttl=60)) == {"stored": True, "ttl": 60}
            assert (await a.cacheGet("m", "p"))["value"] == "v"
            assert (await a.cache_delete("m", "p")) == {"deleted": True}
            assert (await a.cache_flush()) == {"flushed": 0}
            recorded = await a.record("gpt-4o", input_tokens=1000, output_tokens=500, user="ann", feature="f")
            assert recorded["costUsd"] == 0.0075 and uuid.UUID(recorded["recordId"]).version == 4
            assert (await a.report())["byUser"]["ann"]["requests"] == 1
            estimate = await a.estimate("gpt-4o-mini", daily_requests=1000, avg_input_tokens=500, avg_output_tokens=200)
            assert estimate["monthlyUsd"] == 5.85
            assert (await a.call("ping"))["pong"] is True
            await a.notify("cacheSet", {"model": "m", "prompt": "n", "value": 2})
            assert (await a.cache_get("m", "n"))["value"] == 2
            assert await a.tokens("hello world", model="gpt-4o") == {"tokens": 2, "encoding": "o200k_base"}
            held = await a.reserve("gpt-4o", input_tokens=10_000, max_output_tokens=2_000)
            assert held["amountUsd"] == 0.045 and held["reservation"].startswith("rsv-")
            assert await a.release_reservation(held["reservation"]) == {"released": True}
            assert await a.releaseReservation(held["reservation"]) == {"released": False}
            leased = await a.cache_get("m", "leased", lease=True)
            assert await a.cache_release("m", "leased", leased["lease"]) == {"released": True}

    run(main())


def test_async_errors_do_not_disturb_other_calls(daemon) -> None:
    async def main() -> None:
        async with costd.AsyncClient(daemon.socket) as a:
            outcomes = await asyncio.gather(
                a.ping(),
                a.call("noSuchMethod"),
                a.record("no-such-model", 1, 1),
                a.record("gpt-4o"),
                a.ping(),
                return_exceptions=True,
            )
            assert outcomes[0]["pong"] and outcomes[4]["pong"]
            assert isinstance(outcomes[1], costd.MethodNotFound) and outcomes[1].data == {"method": "noSuchMethod"}
            assert isinstance(outcomes[2], costd.UnknownModel) and outcomes[2].code == -32001
            assert isinstance(outcomes[3], costd.InvalidParams)
            with pytest.raises(costd.PayloadTooLarge):
                await a.cache_set("m", "p", "x" * (5 << 20))
            assert a.connections_opened == 1

    run(main())


def test_cancelled_call_leaves_the_stream_in_sync(daemon) -> None:
    async def main() -> None:
        async with costd.AsyncClient(daemon.socket) as a:
            await a.connect()
            slow = asyncio.ensure_future(a.record("gpt-4o", 1000, 500))
            await asyncio.sleep(0)
            slow.cancel()
            with pytest.raises(asyncio.CancelledError):
                await slow
            for i in range(10):
                await a.cache_set("m", i, i)
            assert [(await a.cache_get("m", i))["value"] for i in range(10)] == list(range(10))
            assert a.in_flight == 0 and a.connections_opened == 1

    run(main())


def test_async_client_moves_between_event_loops(daemon) -> None:
    a = costd.AsyncClient(daemon.socket)

    async def ping() -> bool:
        return (await a.ping())["pong"]

    assert run(ping()) and run(ping())
    assert a.connections_opened == 2  # one per loop
    run(a.aclose())


def test_aclose_fails_waiting_calls(daemon) -> None:
    async def main() -> None:
        a = costd.AsyncClient(daemon.socket)
        await a.connect()
        waiting = asyncio.ensure_future(a.record("gpt-4o", 1, 1))
        await asyncio.sleep(0)
        await a.aclose()
        try:
            await waiting  # answered before the close, or failed by it
        except costd.DaemonUnavailable:
            pass
        assert (await a.ping())["pong"] is True  # a closed client reconnects on use
        await a.aclose()

    run(main())


def test_subscribe_yields_alerts_and_subscribes_again_after_a_restart(make_daemon) -> None:
    daemon = make_daemon(config='[[budgets]]\nfeature = "etl"\ndaily = 0.01\nwarning_fraction = 0.5\n')

    async def main() -> None:
        async with costd.AsyncClient(daemon.socket) as a:
            alerts = a.subscribe(since="0-0", ping_every=1)
            await a.record("gpt-4o-mini", 10_000, 10_000, feature="etl")  # $0.0075: the warning
            warning = await asyncio.wait_for(alerts.__anext__(), 10)
            assert (warning["scope"], warning["level"]) == ({"feature": "etl"}, "warning")
            daemon.restart()
            await a.record("gpt-4o-mini", 10_000, 10_000, feature="etl")  # $0.015: exceeded
            exceeded = await asyncio.wait_for(alerts.__anext__(), 20)
            assert exceeded["level"] == "exceeded" and exceeded["id"] > warning["id"]
            await alerts.aclose()

    run(main())
