"""LLMCache and CostMonitor: the classic helpers, backed by the daemon."""

from __future__ import annotations

import time
from typing import Any, Dict, List

import pytest

import costd
from costd import CostMonitor, LLMCache


def classic_app(cache: Any, monitor: Any, prompts: List[str]) -> List[str]:
    """Code in the classic style: only the import of LLMCache/CostMonitor changes."""
    answers = []
    for prompt in prompts:
        response = cache.get(prompt, "gpt-4o")
        if response is None:
            response = {"text": prompt.upper()}  # stands for the model call
            cache.set(prompt, "gpt-4o", response, ttl=600)
            monitor.record("gpt-4o", input_tokens=100, output_tokens=20)
        answers.append(response["text"])
    return answers


def test_classic_code_runs_unchanged(client: costd.Client) -> None:
    cache, monitor = LLMCache(client), CostMonitor(client)
    assert classic_app(cache, monitor, ["a", "b", "a", "a"]) == ["A", "B", "A", "A"]
    assert cache.hit_rate == 0.5
    assert monitor.report()["requests"] == 2
    assert monitor.daily_spend == pytest.approx(2 * (100 * 2.5 + 20 * 10) / 1e6)


def test_llmcache_get_set_and_hit_rate(client: costd.Client) -> None:
    cache = LLMCache(client)
    assert cache.hit_rate == 0.0  # no lookups yet
    assert cache.get("What is 2+2?", "gpt-4o") is None
    assert cache.set("What is 2+2?", "gpt-4o", {"text": "4"}) is True
    assert cache.get("What is 2+2?", "gpt-4o") == {"text": "4"}
    assert cache.get("What is 2+2?", "gpt-4o-mini") is None  # the model is part of the key
    assert (cache.hits, cache.misses, cache.lookups) == (1, 2, 3)
    assert cache.hit_rate == pytest.approx(1 / 3)
    assert cache.stats()["hit_rate"] == pytest.approx(1 / 3)

    # The hit rate is this instance's; the entries are the daemon's, shared by all.
    other = LLMCache(client)
    assert other.get("What is 2+2?", "gpt-4o") == {"text": "4"}
    assert other.hit_rate == 1.0 and cache.hit_rate == pytest.approx(1 / 3)


def test_llmcache_prompts_may_be_json(client: costd.Client) -> None:
    cache = LLMCache(client)
    messages = [{"role": "user", "content": "hi", "name": "ann"}]
    cache.set(messages, "gpt-4o", "hello")
    assert cache.get([{"name": "ann", "content": "hi", "role": "user"}], "gpt-4o") == "hello"


def test_llmcache_ttl_namespace_delete_clear(client: costd.Client) -> None:
    short = LLMCache(client, ttl=0.2, namespace="short")
    short.set("p", "m", "v")
    assert short.get("p", "m") == "v"
    time.sleep(0.3)
    assert short.get("p", "m") is None

    a, b = LLMCache(client, namespace="a"), LLMCache(client, namespace="b")
    a.set("p", "m", "from a")
    assert b.get("p", "m") is None
    b.set("p", "m", "from b", ttl=60)
    assert a.get("p", "m") == "from a" and b.get("p", "m") == "from b"
    assert a.delete("p", "m") is True and a.get("p", "m") is None
    b.set("q", "m", 1)
    assert b.clear() == 2 and b.get("q", "m") is None


def test_llmcache_default_socket(daemon, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSTD_SOCKET", daemon.socket)
    cache = LLMCache()
    assert cache.client.path == daemon.socket
    cache.set("p", "m", 1)
    assert cache.get("p", "m") == 1


def test_cost_monitor_record_returns_cost(client: costd.Client) -> None:
    monitor = CostMonitor(client, user="svc", feature="search")
    assert monitor.record("gpt-4o", 1000, 500) == 0.0075
    assert monitor.last_result is not None and monitor.last_result["day"]["spentUsd"] == 0.0075
    # Extra record parameters by snake_case or wire name; explicit user/feature win.
    assert monitor.record("gpt-4o", 1000, 0, cached_input_tokens=1000, user="ann") == 0.00125
    assert monitor.record("gpt-4o", 1000, 500, cached=True) == 0.0
    assert monitor.record("custom-model", costUsd=0.5, feature="export") == 0.5
    report = monitor.report()
    assert report["byUser"]["svc"]["requests"] == 2 and report["byUser"]["ann"]["requests"] == 1
    assert report["byFeature"]["search"]["requests"] == 2 and report["byFeature"]["export"]["costUsd"] == 0.5
    assert report["cachedInputTokens"] == 1000
    assert report["savings"]["cacheUsd"] == 0.0075
    assert monitor.daily_spend == pytest.approx(0.0075 + 0.00125 + 0.5)
    assert monitor.monthly_spend == monitor.daily_spend
    assert monitor.report(period="month")["period"] == "month"
    assert len(monitor.report(days=2)["daily"]) == 2


def test_cost_monitor_alerts(make_daemon) -> None:
    daemon = make_daemon("--daily-budget", "0.01")
    seen: List[Dict[str, Any]] = []
    monitor = CostMonitor(costd.Client(daemon.socket), on_alert=seen.append)
    monitor.record("gpt-4o", 1000, 500)
    assert seen == []
    monitor.record("gpt-4o", 1000, 500)
    assert [a["level"] for a in seen] == ["warning", "exceeded"]
    assert monitor.alerts == seen


def test_cost_monitor_errors(client: costd.Client) -> None:
    monitor = CostMonitor(client)
    with pytest.raises(costd.UnknownModel):
        monitor.record("no-such-model", 10, 10)
