"""Every method of the synchronous client against a real daemon."""

from __future__ import annotations

import inspect
import json
import re
import threading
import uuid

import pytest

import costd
from costd import _wire


def test_ping(client: costd.Client) -> None:
    pong = client.ping()
    assert pong["pong"] is True
    assert re.match(r"^\d+\.\d+\.\d+", pong["version"])
    assert pong["uptimeSeconds"] >= 0
    assert pong["store"] == "embedded"
    assert pong["ledger"] == "ok"
    assert client.connected and client.connections_opened == 1


def test_route_task_rule_and_prompt_estimate(client: costd.Client) -> None:
    routed = client.route(task="classification", prompt="Is this spam? Buy now!!!")
    assert routed["model"] == "gpt-4o-mini"
    assert routed["tier"] == "simple"
    assert routed["reason"] == "task"
    assert isinstance(routed["maxTokens"], int) and routed["maxTokens"] > 0
    assert "classification" in routed["detail"]
    assert routed["inputTokens"] > 0
    assert routed["inputTokensExact"] is False
    assert routed["estimatedCostUsd"] > 0


def test_route_default_and_prompt_size(client: costd.Client) -> None:
    default = client.route()
    assert default["reason"] == "default" and default["model"] == "gpt-4o" and default["tier"] == "complex"
    assert "inputTokens" not in default  # no prompt, no size

    # Exact size, given by wire name or by snake_case alias: the same answer.
    big = client.route(task="classification", inputTokens=9000, user="ann", feature="triage")
    alias = client.route(task="classification", input_tokens=9000, user="ann", feature="triage")
    assert big.pop("routeId") != alias.pop("routeId")  # each decision has its own id
    assert big == alias
    assert big["reason"] == "prompt-size" and big["tier"] == "complex"
    assert big["inputTokens"] == 9000 and big["inputTokensExact"] is True


def test_route_budget_downgrade(make_daemon) -> None:
    daemon = make_daemon("--daily-budget", "0.01")
    with costd.Client(daemon.socket) as c:
        c.record("gpt-4o", input_tokens=1000, output_tokens=500)  # $0.0075 of $0.01: 75 %
        assert c.route(task="summarization")["reason"] == "default"
        c.record("gpt-4o", input_tokens=1000, output_tokens=500)
        routed = c.route(task="summarization")
        assert routed["reason"] == "budget" and routed["tier"] == "simple"


def test_cache_roundtrip_all_methods(client: costd.Client) -> None:
    prompt = {"messages": [{"role": "user", "content": "hi"}], "temperature": 0}
    assert client.cache_get("gpt-4o", prompt) == {"hit": False}
    stored = client.cache_set("gpt-4o", prompt, {"text": "Hello!"})
    assert stored == {"stored": True, "ttl": 3600}
    hit = client.cache_get("gpt-4o", prompt)
    assert hit == {"hit": True, "value": {"text": "Hello!"}, "layer": "l1"}
    # The model is part of the key.
    assert client.cache_get("gpt-4o-mini", prompt)["hit"] is False
    assert client.cache_delete("gpt-4o", prompt) == {"deleted": True}
    assert client.cache_delete("gpt-4o", prompt) == {"deleted": False}
    assert client.cache_get("gpt-4o", prompt)["hit"] is False


def test_cache_wire_names_are_the_same_methods(client: costd.Client) -> None:
    assert client.cacheSet("m", "p", [1, "two"], ttl=60)["stored"] is True
    assert client.cacheGet("m", "p")["value"] == [1, "two"]
    assert client.cacheDelete("m", "p")["deleted"] is True
    assert client.cacheFlush() == {"flushed": 0}


def test_cache_key_is_canonical(client: costd.Client) -> None:
    client.cache_set("m", {"a": 1.0, "b": {"y": 2, "x": [1, 2]}}, "v")
    assert client.cache_get("m", {"b": {"x": [1, 2], "y": 2}, "a": 1})["hit"] is True
    assert client.cache_get("m", {"b": {"x": [2, 1], "y": 2}, "a": 1})["hit"] is False


def test_cache_values_any_json_including_null_and_unicode(client: costd.Client) -> None:
    for index, value in enumerate([None, 0, 1.5, "héllo 日本 🎉", [None, True], {"nested": {"deep": [1, {"x": ""}]}}]):
        client.cache_set("m", {"i": index}, value)
        result = client.cache_get("m", {"i": index})
        assert result["hit"] is True and result["value"] == value
    # A null prompt is a key like any other.
    client.cache_set("m", None, "null prompt")
    assert client.cache_get("m", None)["value"] == "null prompt"


def test_cache_namespaces_and_flush(client: costd.Client) -> None:
    client.cache_set("m", "p", "default ns")
    client.cache_set("m", "p", "ns a", namespace="a")
    client.cache_set("m", "q", "ns a 2", namespace="a")
    client.cache_set("m", "p", "ns b", namespace="b")
    assert client.cache_get("m", "p", namespace="a")["value"] == "ns a"
    assert client.cache_get("m", "p")["value"] == "default ns"
    assert client.cache_flush(namespace="a") == {"flushed": 2}
    assert client.cache_get("m", "p", namespace="a")["hit"] is False
    assert client.cache_get("m", "p", namespace="b")["hit"] is True
    assert client.cache_flush()["flushed"] == 2


def test_cache_ttl(client: costd.Client) -> None:
    assert client.cache_set("m", "short", "v", ttl=0.2)["ttl"] == 0.2
    assert client.cache_get("m", "short")["hit"] is True
    import time

    time.sleep(0.3)
    assert client.cache_get("m", "short")["hit"] is False
    with pytest.raises(costd.InvalidParams):
        client.cache_set("m", "p", "v", ttl=31 * 24 * 3600)


def test_record_fields(client: costd.Client) -> None:
    result = client.record("gpt-4o", 1000, 500, user="ann", feature="search")
    assert result["costUsd"] == 0.0075
    assert result["day"] == {"spentUsd": 0.0075, "budgetUsd": 50, "remainingUsd": 49.9925}
    assert result["month"] == {"spentUsd": 0.0075, "budgetUsd": 1000, "remainingUsd": 999.9925}
    assert result["alerts"] == []
    # The client made the recordId: a uuid4.
    assert uuid.UUID(result["recordId"]).version == 4
    assert "duplicate" not in result


def test_record_aliases_and_prices(client: costd.Client) -> None:
    wire = client.record("gpt-4o", inputTokens=1000, outputTokens=0, cachedInputTokens=1000)
    snake = client.record("gpt-4o", input_tokens=1000, output_tokens=0, cached_input_tokens=1000)
    assert wire["costUsd"] == snake["costUsd"] == 0.00125  # the cached-input price
    assert client.record("gpt-4o", input_tokens=1000, output_tokens=0, batch=True)["costUsd"] == 0.00125
    assert client.record("my-own-model", cost_usd=0.1)["costUsd"] == 0.1
    assert client.record("my-own-model", costUsd=0.25)["costUsd"] == 0.25
    assert client.record("dall-e-3", images=2, image_quality="hd")["costUsd"] > 0
    write = client.record("claude-3-5-sonnet", input_tokens=1000, output_tokens=100, cache_write_input_tokens=500)
    plain = client.record("claude-3-5-sonnet", input_tokens=1000, output_tokens=100)
    assert write["costUsd"] > plain["costUsd"]


def test_record_cached_goes_to_savings(client: costd.Client) -> None:
    saved = client.record("gpt-4o", input_tokens=1000, output_tokens=500, cached=True)
    assert saved["costUsd"] == 0 and saved["savedUsd"] == 0.0075
    assert saved["day"]["spentUsd"] == 0
    report = client.report()
    assert report["cachedRequests"] == 1 and report["requests"] == 0
    assert report["savings"]["cacheUsd"] == 0.0075


def test_record_id_is_idempotent(client: costd.Client) -> None:
    first = client.record("gpt-4o", 1000, 500, recordId="order-42")
    again = client.record("gpt-4o", 1000, 500, record_id="order-42")
    assert first["recordId"] == again["recordId"] == "order-42"
    assert again["duplicate"] is True
    assert client.report()["totalCostUsd"] == 0.0075


def test_record_alerts(make_daemon) -> None:
    daemon = make_daemon("--daily-budget", "0.01")
    with costd.Client(daemon.socket) as c:
        assert c.record("gpt-4o", 1000, 500)["alerts"] == []
        alerts = c.record("gpt-4o", 1000, 500)["alerts"]
        assert [(a["scope"], a["level"]) for a in alerts] == [("day", "warning"), ("day", "exceeded")]
        assert alerts[0]["budgetUsd"] == 0.01 and alerts[0]["spentUsd"] == 0.015
        assert c.record("gpt-4o", 1000, 500)["alerts"] == []  # once per period


def test_report_fields(client: costd.Client) -> None:
    client.record("gpt-4o", 1000, 500, user="ann", feature="search")
    client.record("gpt-4o-mini", 2000, 100, user="bob", feature="search")
    client.record("gpt-4o", 1000, 500, cached=True, user="ann")
    client.cache_get("m", "nothing")
    client.cache_set("m", "x", 1)
    client.cache_get("m", "x")
    report = client.report(days=3)
    assert re.match(r"^\d{4}-\d{2}-\d{2}$", report["date"])
    assert report["period"] == "day" and report["periodKey"] == report["date"]
    assert report["totalCostUsd"] == pytest.approx(0.0075 + 0.00036)
    assert report["budgetUsd"] == 50
    assert report["remainingUsd"] == pytest.approx(50 - report["totalCostUsd"])
    assert report["requests"] == 2 and report["cachedRequests"] == 1
    assert report["inputTokens"] == 3000 and report["outputTokens"] == 600
    assert report["cachedInputTokens"] == 0
    assert set(report["byModel"]) == {"gpt-4o", "gpt-4o-mini"}
    assert report["byModel"]["gpt-4o"]["savedUsd"] == 0.0075
    assert list(report["byModel"]) == ["gpt-4o", "gpt-4o-mini"]  # largest first
    assert report["byUser"]["bob"]["requests"] == 1
    assert report["byFeature"]["search"]["requests"] == 2
    assert report["byUnit"] == {}
    cache = report["cache"]
    assert cache["hits"] == 1 and cache["misses"] == 1 and cache["hitRate"] == 0.5 and cache["sets"] == 1
    assert cache["l1"]["entries"] == 1 and cache["l1"]["capacityBytes"] > 0
    assert report["savings"]["baselineModel"] == "gpt-4o"
    assert report["savings"]["totalUsd"] >= report["savings"]["cacheUsd"] == 0.0075
    assert report["savings"]["routingUsd"] == 0  # gpt-4o-mini, but no route of costd's decided it
    assert len(report["daily"]) == 3 and report["daily"][-1]["date"] == report["date"]
    assert report["daily"][-1]["costUsd"] == report["totalCostUsd"]


def test_report_month_and_past_dates(client: costd.Client) -> None:
    month = client.report(period="month")
    assert month["period"] == "month" and re.match(r"^\d{4}-\d{2}$", month["periodKey"])
    assert month["budgetUsd"] == 1000
    past = client.report(date="2020-02-03", period="month")
    assert past["periodKey"] == "2020-02" and past["totalCostUsd"] == 0 and past["byModel"] == {}


def test_report_without_budget_is_null(make_daemon) -> None:
    daemon = make_daemon()
    with costd.Client(daemon.socket) as c:
        report = c.report()
        assert report["budgetUsd"] is None and report["remainingUsd"] is None


def test_estimate(client: costd.Client) -> None:
    wire = client.estimate("gpt-4o-mini", dailyRequests=1000, avgInputTokens=500, avgOutputTokens=200)
    assert wire == {"model": "gpt-4o-mini", "perRequestUsd": 0.000195, "dailyUsd": 0.195, "monthlyUsd": 5.85, "days": 30}
    snake = client.estimate("gpt-4o-mini", daily_requests=1000, avg_input_tokens=500, avg_output_tokens=200, days=7)
    assert snake["days"] == 7 and snake["monthlyUsd"] == pytest.approx(0.195 * 7)
    positional = client.estimate("gpt-4o", 10, 100.5, 20.25)
    assert positional["perRequestUsd"] == 0.00045375  # fractions allowed


def test_generic_call_and_methods_added_later(client: costd.Client) -> None:
    assert client.call("ping")["pong"] is True
    assert client.call("route", {"task": "extraction"})["tier"] == "simple"
    # Unknown parameters are ignored by the daemon, so extra keywords pass through.
    assert client.route(task="classification", someFutureOption=True)["model"] == "gpt-4o-mini"
    for method in ("tokens", "reserve", "cacheRelease"):
        try:
            client.call(method, {"model": "gpt-4o", "text": "hello"}, idempotent=False)
        except costd.MethodNotFound as exc:  # a daemon that predates the method
            assert exc.data == {"method": method}
        except costd.CostdError as exc:  # a daemon that has it, with other parameters
            assert exc.code != -32603
    assert client.ping()["pong"] is True


def test_generic_record_gets_a_record_id(client: costd.Client) -> None:
    result = client.call("record", {"model": "gpt-4o", "inputTokens": 1, "outputTokens": 1})
    assert uuid.UUID(result["recordId"]).version == 4


def test_notification_is_executed(client: costd.Client) -> None:
    import time

    client.notify("record", {"model": "gpt-4o", "inputTokens": 1000, "outputTokens": 500})
    client.notify("cacheSet", {"model": "m", "prompt": "n", "value": 1})
    # Never answered: poll for their effects.
    deadline = time.monotonic() + 5
    while client.report()["requests"] != 1 or not client.cache_get("m", "n")["hit"]:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert client.ping()["pong"] is True  # no stray answer is left on the stream


def test_conflicting_aliases_are_refused(client: costd.Client) -> None:
    with pytest.raises(TypeError):
        client.record("gpt-4o", inputTokens=1, input_tokens=2, output_tokens=1)
    # The same value twice is fine.
    assert client.record("gpt-4o", inputTokens=1, input_tokens=1, output_tokens=1)["costUsd"] > 0


def test_params_sent_on_the_wire(client: costd.Client) -> None:
    # collect_params maps aliases to wire names, drops None, keeps a null prompt/value.
    params = _wire.collect_params(
        "record",
        {"model": "m", "input_tokens": 3, "outputTokens": 4, "cached": None, "cost_usd": 0.5},
        {"future_option": "x", "other": None},
    )
    assert params == {"model": "m", "inputTokens": 3, "outputTokens": 4, "costUsd": 0.5, "futureOption": "x"}
    assert _wire.collect_params("cacheSet", {"model": "m", "prompt": None, "value": None}) == {
        "model": "m",
        "prompt": None,
        "value": None,
    }
    frame = _wire.encode_frame({"text": "é"})
    assert frame[:4] == len('{"text":"é"}'.encode()).to_bytes(4, "big")
    assert json.loads(frame[4:]) == {"text": "é"}


def test_threads_share_one_client(client: costd.Client) -> None:
    errors = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                client.cache_set("m", [n, i], {"n": n, "i": i})
                assert client.cache_get("m", [n, i])["value"] == {"n": n, "i": i}
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert client.connections_opened == 1


def test_sync_and_async_signatures_match() -> None:
    for name in ("ping", "route", "cache_get", "cache_set", "cache_delete", "cache_flush", "record", "report", "estimate", "call"):
        sync = inspect.signature(getattr(costd.Client, name))
        aio = inspect.signature(getattr(costd.AsyncClient, name))
        assert list(sync.parameters.values()) == list(aio.parameters.values()), name
        assert inspect.iscoroutinefunction(getattr(costd.AsyncClient, name))
    for wire, snake in (("cacheGet", "cache_get"), ("cacheSet", "cache_set"), ("cacheDelete", "cache_delete"), ("cacheFlush", "cache_flush")):
        assert getattr(costd.Client, wire) is getattr(costd.Client, snake)
        assert getattr(costd.AsyncClient, wire) is getattr(costd.AsyncClient, snake)


def test_every_record_param_has_a_keyword() -> None:
    sig = inspect.signature(costd.Client.record)
    for wire in _wire.METHOD_PARAMS["record"]:
        assert wire in sig.parameters
        assert _wire.to_snake(wire) in sig.parameters


def test_socket_resolution(monkeypatch: pytest.MonkeyPatch, daemon) -> None:
    monkeypatch.setenv("COSTD_SOCKET", "/tmp/explicit-env.sock")
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert costd.resolve_socket_path() == "/tmp/explicit-env.sock"
    assert costd.resolve_socket_path("/given.sock") == "/given.sock"
    monkeypatch.setenv("COSTD_SOCKET", "")  # empty counts as unset
    assert costd.resolve_socket_path() == "/run/user/1000/costd.sock"
    monkeypatch.delenv("COSTD_SOCKET")
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert costd.resolve_socket_path() == "/run/costd/costd.sock"
    # Clients with no argument use it.
    monkeypatch.setenv("COSTD_SOCKET", daemon.socket)
    assert costd.Client().ping()["pong"] is True
    assert costd.AsyncClient().path == daemon.socket
    import pathlib

    assert costd.Client(pathlib.Path(daemon.socket)).ping()["pong"] is True


def test_reserve_settle_release_tokens_and_lease_release(client: costd.Client) -> None:
    held = client.reserve("gpt-4o", input_tokens=10_000, max_output_tokens=2_000, user="ann")
    assert held["amountUsd"] == 0.045
    recorded = client.record("gpt-4o", input_tokens=10_000, output_tokens=1_000, reservation=held["reservation"])
    assert recorded["costUsd"] == 0.035
    assert client.release_reservation(held["reservation"]) == {"released": False}, "recording settled it"
    again = client.reserve("gpt-4o", inputTokens=1_000, maxOutputTokens=100)
    assert client.release_reservation(again["reservation"]) == {"released": True}
    assert client.release_reservation(again["reservation"]) == {"released": False}
    assert client.tokens(messages=[{"role": "user", "content": "hi"}], model="gpt-4o")["tokens"] == 8
    leased = client.cache_get("gpt-4o", {"q": "slow"}, lease=True)
    assert leased["hit"] is False and leased["lease"]
    assert client.cacheRelease("gpt-4o", {"q": "slow"}, leased["lease"]) == {"released": True}


def test_the_client_has_the_daemons_version(client: costd.Client) -> None:
    import importlib.metadata

    assert client.ping()["version"] == costd.__version__
    assert importlib.metadata.version("costd") == costd.__version__, "pyproject.toml says the same"
