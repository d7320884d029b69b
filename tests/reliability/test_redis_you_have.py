"""Spend on the Redis people actually run (issue 16): an evicting cache, a volatile-* policy, a
full `noeviction` Redis, and a FLUSHALL under two daemons. Real redis-server, real daemons."""
from __future__ import annotations

import os
import socket
import time
import urllib.request
import uuid
from decimal import Decimal

import costd

from redis_server import Redis
from test_faults import nanos, wait_until

PROMPT_BYTES = 20_000


def fill_cache(client: costd.Client, entries: int) -> None:
    for i in range(entries):
        # Stored whatever Redis does with it: a refused write leaves the answer in L1 only.
        assert client.cache_set("gpt-4o", f"prompt {i}", "x" * PROMPT_BYTES, ttl=3600)["stored"] is True


def record_all(client: costd.Client, amounts: list[str]) -> list[dict]:
    return [client.record("gpt-4o", costUsd=float(Decimal(a)), recordId=str(uuid.uuid4())) for a in amounts]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"no {name} in the metrics")


def total(client: costd.Client) -> int:
    return nanos(client.report()["totalCostUsd"])


def info(redis, field: str) -> str:
    for line in redis.cli("INFO").splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"INFO has no {field}")


def test_allkeys_lru_keeps_spend_out_of_redis_and_loses_none(make_daemon, redis) -> None:
    redis.cli("CONFIG", "SET", "maxmemory", "3mb")
    redis.cli("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
    port = free_port()
    daemon = make_daemon("lru", args=["--redis", redis.url, "--metrics-listen", f"127.0.0.1:{port}"])
    amounts = ["0.25"] * 5
    with costd.Client(daemon.socket) as client:
        status = client.ping()["redis"]
        assert status["spendIn"] == "ledger"
        assert metric(port, "costd_redis_spend_kept") == 0
        assert "allkeys-lru" in status["spendNote"]
        receipts = record_all(client, amounts)
        assert all(r.get("backlogged") for r in receipts), "acknowledged from the ledger, not from Redis"
        fill_cache(client, 600)
        assert int(info(redis, "evicted_keys")) > 0, "the cache fill went past maxmemory"
        assert total(client) == nanos("1.25")
        assert client.report()["requests"] == 5
        # Hard budgets cannot be kept in such a Redis: refused with the reason, never guessed.
        try:
            client.reserve("gpt-4o", 100, 100)
            raise AssertionError("a reservation was granted by a Redis that may evict it")
        except costd.CostdError as error:
            assert "allkeys-lru" in str(error)
    assert "Redis will not keep spend safely" in daemon.log and "allkeys-lru" in daemon.log
    assert redis.cli("KEYS", "*{s}:d:*").strip() == "", "no spend key was written to the evicting Redis"


def test_volatile_lru_never_evicts_spend(make_daemon, redis) -> None:
    redis.cli("CONFIG", "SET", "maxmemory", "3mb")
    redis.cli("CONFIG", "SET", "maxmemory-policy", "volatile-lru")
    daemon = make_daemon("vol", args=["--redis", redis.url])
    with costd.Client(daemon.socket) as client:
        assert client.ping()["redis"]["spendIn"] == "redis"
        receipts = record_all(client, ["0.25"] * 5)
        assert not any(r.get("backlogged") for r in receipts)
        fill_cache(client, 600)
        assert int(info(redis, "evicted_keys")) > 0, "the cache fill went past maxmemory"
        assert total(client) == nanos("1.25")
        assert client.report()["requests"] == 5
    day_keys = redis.cli("KEYS", "*{s}:d:*").split()
    assert day_keys, "spend is kept in Redis"
    for key in day_keys + redis.cli("KEYS", "*{s}:m:*").split() + redis.cli("KEYS", "*{s}:epoch").split():
        assert redis.cli("TTL", key).strip() == "-1", f"{key} carries a TTL, so volatile-lru could evict it"


def test_noeviction_at_its_limit_acknowledges_every_record_and_counts_each_once(make_daemon, redis) -> None:
    redis.cli("CONFIG", "SET", "maxmemory-policy", "noeviction")
    daemon = make_daemon("oom", args=["--redis", redis.url])
    with costd.Client(daemon.socket) as client:
        record_all(client, ["0.5"])  # counted in Redis before it fills
        fillers = [f"filler:{i}" for i in range(20)]
        for key in fillers:
            assert redis.cli("SET", key, "y" * 50_000).strip() == "OK"
        # Full: the limit under what is used, until the fillers go.
        redis.cli("CONFIG", "SET", "maxmemory", str(int(info(redis, "used_memory")) - 400_000))
        assert "OOM" in redis.cli("SET", "probe", "1"), "plain writes are refused"
        # Redis lets a running script write past the limit, so records usually get through; one it
        # refuses goes to the backlog. Either way each is acknowledged.
        receipts = record_all(client, ["0.01"] * 20)
        assert len(receipts) == 20 and all(r["costUsd"] for r in receipts)
        assert "OOM" in redis.cli("SET", "probe", "1"), "plain writes are still refused"
        # Cache writes fail softly: the answer is kept in L1.
        assert client.cache_set("gpt-4o", "during oom", "kept", ttl=60)["stored"] is True
        assert client.cache_get("gpt-4o", "during oom")["hit"] is True
        assert total(client) == nanos("0.7"), "the backlog is in the report while it waits"
        redis.cli("DEL", *fillers)
        assert wait_until(lambda: client.ping()["redis"]["backlog"] == 0)
        assert total(client) == nanos("0.7")
        assert client.report()["requests"] == 21
    assert int(redis.cli("HGET", redis.cli("KEYS", "*{s}:d:*").split()[0], "n")) == 21, "each counted once in Redis"


def test_flushall_with_two_daemons_rebuilds_the_fleets_spend_and_fires_no_alert_twice(make_daemon, redis) -> None:
    # A scoped budget beside the host's, with the same limits: its spend (a field of the month
    # hash) and its flags (fields of per-period hashes) come back too.
    config = '[budget]\ndaily = 10.00\nwarning_fraction = 0.8\n[[budgets]]\nmodel = "gpt-4o"\nmonthly = 10.00\nwarning_fraction = 0.8\n'
    port = free_port()
    a = make_daemon("fa", config=config, args=["--redis", redis.url, "--metrics-listen", f"127.0.0.1:{port}"])
    b = make_daemon("fb", config=config, args=["--redis", redis.url])
    with costd.Client(a.socket) as client_a, costd.Client(b.socket) as client_b:
        fired = [alert for r in record_all(client_a, ["1.5"] * 3) + record_all(client_b, ["1.0"] * 4) for alert in r["alerts"]]
        assert [(alert["scope"], alert["level"], alert["budgetScope"]) for alert in fired] == [
            ("day", "warning", {}), ("month", "warning", {"model": "gpt-4o"})], fired
        acknowledged = nanos("8.5")
        assert metric(port, "costd_redis_spend_kept") == 1 and metric(port, "costd_redis_spend_restores_total") == 0
        assert total(client_a) == acknowledged
        flushed_at = time.monotonic()
        assert redis.cli("FLUSHALL").strip() == "OK"
        assert wait_until(lambda: total(client_a) == acknowledged and total(client_b) == acknowledged, timeout=10)
        assert time.monotonic() - flushed_at < 10
        assert client_a.report()["requests"] == 7
        # The warning fired before the flush: not again. The exceeded one has not: it fires once.
        scoped = [b for b in client_b.report()["budgets"] if b["scope"] == {"model": "gpt-4o"}]
        assert [Decimal(str(b["spentUsd"])) for b in scoped] == [Decimal("8.5")], "the scoped budget's month spend is back"
        again = [alert for r in record_all(client_b, ["0.5"]) + record_all(client_a, ["1.0", "0.5"]) for alert in r["alerts"]]
        assert [(alert["scope"], alert["level"], alert["budgetScope"]) for alert in again] == [
            ("day", "exceeded", {}), ("month", "exceeded", {"model": "gpt-4o"})], again
        assert total(client_b) == nanos("10.5")
        assert client_a.ping()["redis"]["spendRestores"] == 1 and client_b.ping()["redis"]["spendRestores"] == 1
        assert metric(port, "costd_redis_spend_restores_total") == 1
    for daemon in (a, b):
        assert "Redis lost spend" in daemon.log


def test_an_evicting_cache_redis_beside_a_spend_redis(make_daemon, redis, workdir) -> None:
    spend_root = os.path.join(workdir, "spend-redis")
    os.makedirs(spend_root)
    spend = Redis(spend_root).start()
    try:
        redis.cli("CONFIG", "SET", "maxmemory", "3mb")
        redis.cli("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
        daemon = make_daemon("split", args=["--redis", redis.url, "--redis-spend", spend.url])
        with costd.Client(daemon.socket) as client:
            assert client.ping()["redis"]["spendIn"] == "redis", "the evicting Redis holds the cache only"
            receipts = record_all(client, ["0.25"] * 5)
            assert not any(r.get("backlogged") for r in receipts)
            fill_cache(client, 600)
            assert int(info(redis, "evicted_keys")) > 0
            assert client.cache_get("gpt-4o", "prompt 599")["hit"] is True
            assert total(client) == nanos("1.25")
        assert spend.cli("KEYS", "*{s}:d:*").split(), "spend is in the spend Redis"
        assert redis.cli("KEYS", "*{s}:*").strip() == "", "and not in the cache Redis"
        assert redis.cli("KEYS", "costd:c:*").split() and not spend.cli("KEYS", "costd:c:*").split(), "cache entries in the cache Redis only"
    finally:
        spend.kill()


def test_a_restart_puts_nothing_back_twice_and_a_daemon_down_during_a_flush_puts_its_spend_back_at_start(make_daemon, redis) -> None:
    a = make_daemon("ra", args=["--redis", redis.url])
    b = make_daemon("rb", args=["--redis", redis.url])
    with costd.Client(a.socket) as client_a, costd.Client(b.socket) as client_b:
        record_all(client_a, ["1.0"] * 2)
        record_all(client_b, ["0.5"] * 3)
        assert total(client_a) == nanos("3.5")
    # A restart knows the canary's token: nothing is added again.
    assert a.stop() == 0
    a.start()
    with costd.Client(a.socket) as client_a:
        assert total(client_a) == nanos("3.5")
        assert client_a.ping()["redis"]["spendRestores"] == 0
    # b is down while Redis is flushed; a puts its own back at once, b when it starts.
    assert b.stop() == 0
    assert redis.cli("FLUSHALL").strip() == "OK"
    with costd.Client(a.socket) as client_a:
        assert wait_until(lambda: total(client_a) == nanos("2.0"), timeout=10)
        b.start()
        assert wait_until(lambda: total(client_a) == nanos("3.5"), timeout=10)
        assert client_a.report()["requests"] == 5
    assert "Redis lost spend" in b.log
