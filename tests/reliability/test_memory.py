"""A long run under load keeps memory and file descriptors flat."""
from __future__ import annotations

import os
import threading
import time

import costd


def load(path: str, until: float, index: int) -> None:
    client = costd.Client(path)
    sequence = 0
    while time.time() < until:
        sequence += 1
        prompt = f"p-{index}-{sequence % 500}"
        client.cache_set("m", prompt, {"text": "x" * 512}, ttl=0.5)
        client.cache_get("m", prompt)
        client.record("gpt-4o-mini", 100, 10)
        if sequence % 50 == 0:
            client.close()  # reconnect now and then: connections must not leak
            client = costd.Client(path)
    client.close()


def test_rss_and_descriptors_stay_flat_under_load(make_daemon) -> None:
    # Every record carries a fresh recordId; the ledger remembers at most record_id_capacity of
    # them, which the warm-up fills, so memory must be flat after it.
    daemon = make_daemon("memory", config="[cache]\nsweep_interval = 1\n[ledger]\nrecord_id_capacity = 2000\n")
    seconds = float(os.environ.get("COSTD_SOAK_SECONDS", "20"))
    # Warm up first: buffers and caches grow to their working size.
    warm_until = time.time() + min(5, seconds / 4)
    threads = [threading.Thread(target=load, args=(daemon.socket, warm_until, index)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    start_rss, start_fds = daemon.resident_kib(), daemon.open_fds()
    until = time.time() + seconds
    threads = [threading.Thread(target=load, args=(daemon.socket, until, index)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    time.sleep(2)  # expired entries swept
    end_rss, end_fds = daemon.resident_kib(), daemon.open_fds()
    print(f"RSS {start_rss} KiB -> {end_rss} KiB, open fds {start_fds} -> {end_fds} over {seconds:.0f} s of load")
    assert end_fds <= start_fds + 2
    assert end_rss <= start_rss * 1.25 + 8 * 1024, f"RSS grew from {start_rss} to {end_rss} KiB"
