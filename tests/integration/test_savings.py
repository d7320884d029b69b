"""Savings that are true: routing savings only for calls costd routed (``route``'s ``routeId``
carried back by ``record``), and cache savings from the cost an entry was stored with, counted
on every hit, on any layer and any daemon sharing a real ``redis-server``."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any, Callable, Dict

import costd

GPT4O = Decimal("0.0075")  # 1000 input + 500 output tokens of gpt-4o
GPT4O_MINI = Decimal("0.00045")  # the same tokens on gpt-4o-mini
USAGE = {"inputTokens": 1000, "outputTokens": 500}


def savings(client: costd.Client) -> Dict[str, Decimal]:
    found = client.report()["savings"]
    return {name: Decimal(str(found[name])) for name in ("cacheUsd", "routingUsd", "totalUsd")}


def eventually(read: Callable[[], Any], expected: Any, what: str, timeout: float = 10.0) -> None:
    """Polls ``read()`` until it gives ``expected`` (a hit's saving is counted behind its answer)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if value == expected:
            return
        assert time.monotonic() < deadline, f"{what}: {value} after {timeout} s, expected {expected}"
        time.sleep(0.02)


def test_a_record_no_route_decided_claims_no_routing_savings(make_daemon) -> None:
    daemon = make_daemon()
    with costd.Client(daemon.socket) as client:
        # The program always used gpt-4o-mini: costd caused no saving, whatever the baseline.
        for _ in range(20):
            answer = client.record(model="gpt-4o-mini", **USAGE)
            assert "routingSavedUsd" not in answer
        assert savings(client)["routingUsd"] == 0


def test_a_routed_record_claims_exactly_the_difference_once(make_daemon) -> None:
    daemon = make_daemon()
    with costd.Client(daemon.socket) as client:
        # classification goes to the cheap tier by default; the caller would have used gpt-4o.
        route = client.route(task="classification", model="gpt-4o")
        assert route["model"] == "gpt-4o-mini" and route["routeId"].startswith("rt-")
        answer = client.record(model="gpt-4o-mini", routeId=route["routeId"], **USAGE)
        assert Decimal(str(answer["routingSavedUsd"])) == GPT4O - GPT4O_MINI
        assert savings(client)["routingUsd"] == GPT4O - GPT4O_MINI

        # A routeId is claimed once: a second record with it claims nothing.
        again = client.record(model="gpt-4o-mini", routeId=route["routeId"], **USAGE)
        assert Decimal(str(again["routingSavedUsd"])) == 0 and "unknown" in again["routeIgnored"]

        # A call made on another model than the routed one: costd's decision was not followed.
        other = client.route(task="classification", model="gpt-4o")
        ignored = client.record(model="gpt-4o", routeId=other["routeId"], **USAGE)
        assert Decimal(str(ignored["routingSavedUsd"])) == 0 and "another model" in ignored["routeIgnored"]

        # Without a requested model, the saving is measured from baseline_model (gpt-4o).
        plain = client.route(task="classification")
        client.record(model="gpt-4o-mini", routeId=plain["routeId"], **USAGE)
        assert savings(client)["routingUsd"] == 2 * (GPT4O - GPT4O_MINI)

        # A made-up routeId claims nothing either.
        forged = client.record(model="gpt-4o-mini", routeId="rt-forged", **USAGE)
        assert Decimal(str(forged["routingSavedUsd"])) == 0
        assert savings(client)["routingUsd"] == 2 * (GPT4O - GPT4O_MINI)


def test_a_route_up_to_a_dearer_model_counts_negative(make_daemon, tmp_path) -> None:
    config = tmp_path / "costd.toml"
    config.write_text('[routing]\ndefault_tier = "cheap"\n[routing.tasks]\nreasoning = "premium"\n[[routing.tiers]]\nname = "premium"\nmodel = "gpt-4o"\n'
                      '[[routing.tiers]]\nname = "cheap"\nmodel = "gpt-4o-mini"\n')
    daemon = make_daemon("--config", str(config))
    with costd.Client(daemon.socket) as client:
        route = client.route(task="reasoning", model="gpt-4o-mini")
        assert route["model"] == "gpt-4o"
        answer = client.record(model="gpt-4o", routeId=route["routeId"], **USAGE)
        assert Decimal(str(answer["routingSavedUsd"])) == GPT4O_MINI - GPT4O
        assert savings(client)["routingUsd"] == GPT4O_MINI - GPT4O


def test_hits_on_an_entry_stored_with_a_cost_save_it_each_time(make_daemon) -> None:
    daemon = make_daemon()
    with costd.Client(daemon.socket) as client:
        stored = client.cache_set(model="gpt-4o", prompt="q", value={"a": 1}, costUsd=0.0123)
        assert Decimal(str(stored["costUsd"])) == Decimal("0.0123")
        for _ in range(3):
            hit = client.cache_get(model="gpt-4o", prompt="q")
            assert hit["hit"] and Decimal(str(hit["savedUsd"])) == Decimal("0.0123") and hit["hitId"]
        eventually(lambda: savings(client)["cacheUsd"], 3 * Decimal("0.0123"), "three hits")

        # Priced from its usage on the entry's model.
        priced = client.cache_set(model="gpt-4o", prompt="q2", value="v", **USAGE)
        assert Decimal(str(priced["costUsd"])) == GPT4O
        hit = client.cache_get(model="gpt-4o", prompt="q2", user="ann", feature="search")
        eventually(lambda: savings(client)["cacheUsd"], 3 * Decimal("0.0123") + GPT4O, "a priced hit")
        report = client.report()
        assert Decimal(str(report["byFeature"]["search"]["savedUsd"])) == GPT4O
        assert report["byUser"]["ann"]["cachedRequests"] == 1

        # The program records the same hit too, naming it: it is not counted twice.
        again = client.record(model="gpt-4o", cached=True, hitId=hit["hitId"], **USAGE)
        assert again["countedAtHit"] is True and Decimal(str(again["savedUsd"])) == 0
        # A miss, and an entry stored without a cost, save nothing.
        assert not client.cache_get(model="gpt-4o", prompt="absent")["hit"]
        client.cache_set(model="gpt-4o", prompt="free", value="v")
        plain = client.cache_get(model="gpt-4o", prompt="free")
        assert plain["hit"] and "savedUsd" not in plain and "hitId" not in plain
        # A value stored again without a cost drops the old cost.
        client.cache_set(model="gpt-4o", prompt="q", value={"a": 2})
        assert "savedUsd" not in client.cache_get(model="gpt-4o", prompt="q")
        time.sleep(0.2)  # nothing is pending: a late double count would show here
        assert savings(client)["cacheUsd"] == 3 * Decimal("0.0123") + GPT4O


def test_cache_savings_count_on_every_daemon_and_layer(make_daemon, redis_server) -> None:
    first = make_daemon("--redis", redis_server.url)
    second = make_daemon("--redis", redis_server.url)
    cost = Decimal("0.004")
    with costd.Client(first.socket) as a, costd.Client(second.socket) as b:
        assert a.cache_set(model="gpt-4o", prompt="shared", value="answer", costUsd=float(cost))["shared"]
        layers = []
        for client in (a, b, b, a, b):  # L1 on the first; L2 then L1 on the second
            hit = client.cache_get(model="gpt-4o", prompt="shared")
            assert hit["hit"] and Decimal(str(hit["savedUsd"])) == cost
            layers.append(hit["layer"])
        assert layers == ["l1", "l2", "l1", "l1", "l1"]
        # Both daemons read the fleet's totals from the one Redis.
        eventually(lambda: savings(a)["cacheUsd"], 5 * cost, "five hits on two daemons")
        eventually(lambda: savings(b)["cacheUsd"], 5 * cost, "the same, seen from the second")
        # A single-flight fill on the second daemon counts too.
        lease = b.cache_get(model="gpt-4o", prompt="filled", lease=True)
        assert not lease["hit"] and lease["lease"]
        b.cache_set(model="gpt-4o", prompt="filled", value="x", lease=lease["lease"], costUsd=float(cost))
        assert Decimal(str(a.cache_get(model="gpt-4o", prompt="filled")["savedUsd"])) == cost
        eventually(lambda: savings(a)["cacheUsd"], 6 * cost, "a hit on a filled entry")
