"""Fault injection: Redis killed or paused, the daemon killed, retries, races for the last dollar,
reconnect storms. Every assertion on money is exact (integer nano-dollars)."""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import struct
import time
import uuid
from decimal import Decimal

import pytest

import costd

UNIT = Decimal("0.001")


def nanos(value) -> int:
    return int(Decimal(str(value)) * 1_000_000_000)


def wait_until(condition, timeout: float = 20.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def record_loop(path: str, stop_at: float, acknowledged: "multiprocessing.Queue", ids: list[str] | None = None) -> None:
    """Records $0.001 again and again until `stop_at`, reporting each acknowledged record id."""
    client = costd.Client(path, timeout=30)
    done: list[str] = []
    while time.time() < stop_at:
        record_id = str(uuid.uuid4())
        try:
            client.record("x", costUsd=0.001, recordId=record_id)
            done.append(record_id)
        except (costd.CostdError, OSError):
            # The daemon was killed under us: this one was not acknowledged.
            time.sleep(0.05)
    acknowledged.put(done)


def run_processes(target, count: int, *args) -> list:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    processes = [multiprocessing.Process(target=target, args=(*args, queue)) for _ in range(count)]
    for process in processes:
        process.start()
    return [queue, processes]


def collect(queue, processes) -> list:
    results = [queue.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    return results


FSYNC_MODES = ["batched", "always"]


@pytest.mark.parametrize("fsync", FSYNC_MODES)
def test_redis_killed_mid_load_loses_nothing_and_counts_nothing_twice(make_daemon, redis, fsync: str) -> None:
    a = make_daemon("a", args=["--redis", redis.url, "--ledger-fsync", fsync])
    b = make_daemon("b", args=["--redis", redis.url, "--ledger-fsync", fsync])
    stop_at = time.time() + 6
    queues = [run_processes(record_loop, 3, daemon.socket, stop_at) for daemon in (a, b)]
    time.sleep(1.5)
    redis.kill()
    time.sleep(2.5)  # records go to the backlogs meanwhile
    redis.start()
    acknowledged = [record for queue, processes in queues for batch in collect(queue, processes) for record in batch]
    assert len(acknowledged) > 100
    assert len(set(acknowledged)) == len(acknowledged)
    with costd.Client(a.socket) as client_a, costd.Client(b.socket) as client_b:
        assert wait_until(lambda: client_a.ping()["redis"]["backlog"] == 0 and client_b.ping()["redis"]["backlog"] == 0)
        total = nanos(client_a.report()["totalCostUsd"])
    assert total == len(acknowledged) * nanos(UNIT), f"{len(acknowledged)} acknowledged"
    assert "backlog" in a.log + b.log


@pytest.mark.parametrize("fsync", FSYNC_MODES)
def test_daemon_killed_mid_load_keeps_every_acknowledged_record(make_daemon, fsync: str) -> None:
    daemon = make_daemon("d", args=["--ledger-fsync", fsync])
    stop_at = time.time() + 4
    queue, processes = run_processes(record_loop, 4, daemon.socket, stop_at)
    time.sleep(2)
    daemon.kill()
    time.sleep(0.3)
    daemon.start()
    acknowledged = [record for batch in collect(queue, processes) for record in batch]
    assert len(acknowledged) > 100
    with costd.Client(daemon.socket) as client:
        report = client.report()
    total = nanos(report["totalCostUsd"])
    # Every acknowledged record is there; a few sent as the daemon died may be there too.
    assert total >= len(acknowledged) * nanos(UNIT)
    assert total <= (len(acknowledged) + 4) * nanos(UNIT)
    assert report["durability"]["fsync"] == fsync


@pytest.mark.parametrize("fsync", FSYNC_MODES)
def test_backlog_survives_the_daemon_killed_while_redis_is_down(make_daemon, redis, fsync: str) -> None:
    """Records backlogged during an outage are acknowledged as the mode says, survive `kill -9`,
    and reach Redis exactly once when both are back."""
    daemon = make_daemon("k", args=["--redis", redis.url, "--ledger-fsync", fsync])
    with costd.Client(daemon.socket) as client:
        client.record("x", costUsd=0.001, recordId="before-outage")
    redis.kill()
    stop_at = time.time() + 2
    queue, processes = run_processes(record_loop, 3, daemon.socket, stop_at)
    backlogged = [record for batch in collect(queue, processes) for record in batch]
    assert len(backlogged) > 50
    daemon.kill()
    redis.start()
    daemon.start()
    with costd.Client(daemon.socket) as client:
        assert wait_until(lambda: client.ping()["redis"]["backlog"] == 0 and client.ping()["redis"]["state"] == "up")
        # A retry of an acknowledged backlogged record still counts once.
        assert client.record("x", costUsd=0.001, recordId="before-outage").get("duplicate") is True
        total = nanos(client.report()["totalCostUsd"])
    assert total == (len(backlogged) + 1) * nanos(UNIT)


@pytest.mark.parametrize("with_redis", [False, True])
def test_a_record_sent_three_times_counts_once(make_daemon, redis, with_redis: bool) -> None:
    daemon = make_daemon("r", args=["--redis", redis.url] if with_redis else [])
    with costd.Client(daemon.socket) as client:
        for index in range(50):
            record_id = f"retry-{index}"
            answers = [client.record("gpt-4o", 1000, 100, recordId=record_id) for _ in range(3)]
            assert [answer.get("duplicate", False) for answer in answers] == [False, True, True]
        report = client.report()
    assert report["requests"] == 50
    assert nanos(report["totalCostUsd"]) == 50 * nanos("0.0035")


def test_paused_redis_never_blocks_cache_calls_or_the_watchdog(make_daemon, redis, notify_listener) -> None:
    daemon = make_daemon(
        "p", args=["--redis", redis.url],
        env={"NOTIFY_SOCKET": notify_listener.path, "WATCHDOG_USEC": "200000"},
    )
    with costd.Client(daemon.socket) as client:
        client.cache_set("m", "warm", {"answer": 1})
        redis.pause()
        try:
            paused_at = time.time()
            slowest = 0.0
            for index in range(40):
                started = time.perf_counter()
                hit = client.cache_get("m", "warm")
                miss = client.cache_get("m", f"cold-{index}")
                slowest = max(slowest, time.perf_counter() - started)
                assert hit["hit"] is True and hit["layer"] == "l1"
                assert miss["hit"] is False
            # Cache calls answer within the 50 ms Redis timeout (plus scheduling), never hang.
            assert slowest < 1.0, f"slowest pair of cache calls took {slowest:.3f} s"
            time.sleep(1.0)
            # The watchdog kept pinging all along: the event loops were never blocked.
            assert notify_listener.count("WATCHDOG=1", since=paused_at) >= 5
        finally:
            redis.resume()
        assert wait_until(lambda: client.ping()["redis"]["state"] == "up")


def hard_budget_worker(path: str, queue: "multiprocessing.Queue") -> None:
    client = costd.Client(path, timeout=30)
    spent = 0
    while True:
        try:
            grant = client.call("reserve", {"model": "gpt-4o-mini", "inputTokens": 20_000, "maxOutputTokens": 2_000})
        except costd.BudgetExceeded:
            break
        client.record("gpt-4o-mini", 20_000, 1_500, reservation=grant["reservation"])
        spent += 1
    queue.put(spent)


def test_32_processes_two_daemons_one_hard_budget(make_daemon, redis) -> None:
    config = "[budget]\ndaily = 1.00\nhard_daily = true\n"
    daemons = [make_daemon(name, config=config, args=["--redis", redis.url]) for name in ("h1", "h2")]
    queue: multiprocessing.Queue = multiprocessing.Queue()
    processes = [multiprocessing.Process(target=hard_budget_worker, args=(daemons[index % 2].socket, queue)) for index in range(32)]
    for process in processes:
        process.start()
    calls = sum(queue.get(timeout=120) for _ in processes)
    for process in processes:
        process.join()
    with costd.Client(daemons[0].socket) as client:
        total = nanos(client.report()["totalCostUsd"])
    # 20k in + 1.5k out of gpt-4o-mini = $0.0039 a call; reserved worst case $0.0042.
    assert total == calls * nanos("0.0039")
    assert total <= nanos("1.00")
    assert total > nanos("1.00") - 33 * nanos("0.0042"), "most of the budget was usable"


def reconnect_storm(path: str, clients: int, queue: "multiprocessing.Queue") -> None:
    request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "cacheGet", "params": {"model": "m", "prompt": "storm"}}).encode()
    framed = struct.pack(">I", len(request)) + request
    for _ in range(clients):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(path)
            sock.sendall(framed)
            sock.recv(4096)
    queue.put(clients)


def test_reconnecting_clients_never_grow_the_redis_pool(make_daemon, redis) -> None:
    daemon = make_daemon("s", config="[redis]\nurl = \"%s\"\npool_size = 3\n" % redis.url)

    def costd_connections() -> int:
        return sum(1 for line in redis.cli("CLIENT", "LIST").splitlines() if " name=costd" in line)

    assert wait_until(lambda: costd_connections() == 4)  # 3 for commands, 1 for pub/sub
    queue: multiprocessing.Queue = multiprocessing.Queue()
    processes = [multiprocessing.Process(target=reconnect_storm, args=(daemon.socket, 250, queue)) for _ in range(4)]
    for process in processes:
        process.start()
    peak = 0
    while any(process.is_alive() for process in processes):
        peak = max(peak, costd_connections())
        time.sleep(0.05)
    served = sum(queue.get(timeout=60) for _ in processes)
    assert served == 1000
    assert peak <= 4
    assert costd_connections() == 4
