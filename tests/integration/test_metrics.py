"""The Prometheus endpoint of a real costd (``--metrics-listen``), scraped over HTTP.

Needs the test-only package ``prometheus_client`` (tests/integration/requirements.txt) to parse
the exposition text the way Prometheus' own client library does.
"""

from __future__ import annotations

import math
import os
import shutil
import stat
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

import costd

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # pragma: no cover - a missing test dependency
    pytest.fail(
        "prometheus_client is missing: pip install -r tests/integration/requirements.txt",
        pytrace=False,
    )

DAILY_BUDGET = 5.0
MONTHLY_BUDGET = 200.0
GPT4O_COST = 0.0075  # 1000 input + 500 output tokens of gpt-4o
CUSTOM_COST = 0.125

METHODS_SEEN = ("ping", "record", "cacheSet", "cacheGet", "other")


def scrape(daemon) -> Tuple[str, str]:
    with urllib.request.urlopen(daemon.metrics_url + "/metrics", timeout=5) as answer:
        assert answer.status == 200
        return answer.read().decode("utf-8"), answer.headers.get("Content-Type", "")


class Scrape:
    """Every sample of one scrape, by sample name, plus the families' types."""

    def __init__(self, text: str):
        self.text = text
        self.types: Dict[str, str] = {}
        self.samples: Dict[str, List] = {}
        for family in text_string_to_metric_families(text):
            self.types[family.name] = family.type
            for sample in family.samples:
                self.samples.setdefault(sample.name, []).append(sample)

    def all(self, name: str, **labels: str) -> List:
        return [s for s in self.samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())]

    def value(self, name: str, **labels: str) -> float:
        found = self.all(name, **labels)
        assert len(found) == 1, f"expected one sample {name}{labels}, found {found}"
        return found[0].value

    def requests(self, method: str, outcome: str) -> float:
        found = self.all("costd_requests_total", method=method, outcome=outcome)
        return found[0].value if found else 0.0


@pytest.fixture
def daemon(make_daemon):
    return make_daemon(
        "--daily-budget", str(DAILY_BUDGET), "--monthly-budget", str(MONTHLY_BUDGET), metrics=True
    )


def exercise(client: costd.Client) -> Dict[str, float]:
    """A known mix of calls; returns what the metrics must then say."""
    client.ping()
    for i in range(3):
        client.record("gpt-4o", 1000, 500, user="ann", feature=f"search-{i}")
    client.record("house-model", cost_usd=CUSTOM_COST, user="bob", feature="batch")
    with pytest.raises(costd.errors.UnknownModel):
        client.record("no-such-model", 10, 10)
    client.cache_set("gpt-4o", {"q": "hello"}, {"text": "Hello!"})
    client.cache_set("gpt-4o", {"q": "bye"}, "Bye!")
    for _ in range(2):
        assert client.cache_get("gpt-4o", {"q": "hello"})["hit"] is True
    assert client.cache_get("gpt-4o", {"q": "bye"})["hit"] is True
    for prompt in ("never stored", "nor this", {"q": "hello", "other": 1}):
        assert client.cache_get("gpt-4o", prompt)["hit"] is False
    for method in ("noSuchMethod", "alsoMissing"):
        with pytest.raises(costd.errors.MethodNotFound):
            client.call(method, {})
    return {
        "ping_ok": 1,
        "record_ok": 4,
        "record_error": 1,
        "cacheSet_ok": 2,
        "cacheGet_ok": 6,
        "other_error": 2,
        "l1": 3,
        "miss": 3,
        "spend": 3 * GPT4O_COST + CUSTOM_COST,
    }


def test_metrics_after_known_traffic(daemon):
    with costd.Client(daemon.socket, timeout=10) as client:
        want = exercise(client)
        text, content_type = scrape(daemon)
        report = client.report()

        m = Scrape(text)
        assert content_type.startswith("text/plain"), content_type
        assert "version=0.0.4" in content_type, content_type
        assert m.samples, "the scrape parsed to no sample at all:\n" + text[:2000]

        # Requests by method and outcome.
        assert m.types.get("costd_requests") == "counter", m.types
        for sample in m.all("costd_requests_total"):
            assert set(sample.labels) == {"method", "outcome"}, sample
            assert sample.labels["outcome"] in ("ok", "error"), sample
        assert m.requests("ping", "ok") == want["ping_ok"]
        assert m.requests("record", "ok") == want["record_ok"]
        assert m.requests("record", "error") == want["record_error"]
        assert m.requests("cacheSet", "ok") == want["cacheSet_ok"]
        assert m.requests("cacheGet", "ok") == want["cacheGet_ok"]
        assert m.requests("cacheGet", "error") == 0
        # Unknown method names are folded into one label value (no label explosion).
        assert m.requests("other", "error") == want["other_error"]
        assert m.requests("other", "ok") == 0
        methods = {s.labels["method"] for s in m.all("costd_requests_total")}
        assert "noSuchMethod" not in methods and "alsoMissing" not in methods, methods
        # report() above ran after the scrape: it is not in it.
        assert m.requests("report", "ok") == 0

        # The duration histogram: buckets per method, cumulative, +Inf == count == requests.
        assert m.types.get("costd_request_duration_seconds") == "histogram", m.types
        for method in METHODS_SEEN:
            buckets = m.all("costd_request_duration_seconds_bucket", method=method)
            assert len(buckets) >= 5, f"{method}: {buckets}"
            bounds = [float(b.labels["le"]) for b in buckets]
            counts = [b.value for b in buckets]
            assert bounds == sorted(bounds) and math.isinf(bounds[-1]), bounds
            assert counts == sorted(counts), f"{method}: buckets are not cumulative: {counts}"
            count = m.value("costd_request_duration_seconds_count", method=method)
            total = m.requests(method, "ok") + m.requests(method, "error")
            assert counts[-1] == count == total, (method, counts[-1], count, total)
            duration = m.value("costd_request_duration_seconds_sum", method=method)
            assert 0 < duration < 10 * count, (method, duration)

        # Cache lookups by result.
        assert m.value("costd_cache_lookups_total", result="l1") == want["l1"]
        assert m.value("costd_cache_lookups_total", result="miss") == want["miss"]
        assert sum(s.value for s in m.all("costd_cache_lookups_total")) == want["l1"] + want["miss"]

        # Spend and budgets: the same figures as the ledger's report.
        assert m.value("costd_spend_usd", period="day") == pytest.approx(want["spend"], abs=1e-9)
        assert m.value("costd_spend_usd", period="day") == pytest.approx(report["totalCostUsd"], abs=1e-9)
        assert m.value("costd_spend_usd", period="month") == pytest.approx(want["spend"], abs=1e-9)
        assert m.value("costd_budget_usd", period="day") == DAILY_BUDGET
        assert m.value("costd_budget_usd", period="month") == MONTHLY_BUDGET

        # No Redis is configured: no Redis gauges at all (an embedded daemon has no Redis to be down).
        assert m.all("costd_redis_up") == []
        assert m.all("costd_backlog_records") == []
        # This client's connection is open during the scrape.
        assert m.value("costd_connections") >= 1


def test_counters_move_between_scrapes(daemon):
    with costd.Client(daemon.socket, timeout=10) as client:
        client.ping()
        before = Scrape(scrape(daemon)[0])
        client.record("gpt-4o", 1000, 500)
        client.cache_get("gpt-4o", "absent")
        with pytest.raises(costd.errors.MethodNotFound):
            client.call("nope", {})
        after = Scrape(scrape(daemon)[0])

    assert after.requests("record", "ok") - before.requests("record", "ok") == 1
    assert after.requests("cacheGet", "ok") - before.requests("cacheGet", "ok") == 1
    assert after.requests("other", "error") - before.requests("other", "error") == 1
    assert after.requests("ping", "ok") == before.requests("ping", "ok") == 1
    assert after.value("costd_cache_lookups_total", result="miss") - before.value(
        "costd_cache_lookups_total", result="miss"
    ) == 1
    assert after.value("costd_spend_usd", period="day") - before.value(
        "costd_spend_usd", period="day"
    ) == pytest.approx(GPT4O_COST, abs=1e-9)


def test_only_metrics_path_is_served(daemon):
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(daemon.metrics_url + "/other", timeout=5)
    assert caught.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(daemon.metrics_url + "/", timeout=5)
    assert caught.value.code == 404
    # Other methods than GET and HEAD on /metrics: 405.
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(urllib.request.Request(daemon.metrics_url + "/metrics", data=b"x", method="POST"), timeout=5)
    assert caught.value.code == 405
    head = urllib.request.urlopen(urllib.request.Request(daemon.metrics_url + "/metrics", method="HEAD"), timeout=5)
    assert head.status == 200 and head.read() == b""
    # And /metrics still answers afterwards.
    text, _ = scrape(daemon)
    assert "costd_requests_total" in text


def test_malformed_requests_are_counted(daemon):
    import socket
    import struct

    before = Scrape(scrape(daemon)[0])
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(daemon.socket)
        for body in (b"{not json", b'{"jsonrpc":"1.0","id":1,"method":"ping"}'):
            sock.sendall(struct.pack(">I", len(body)) + body)
            size = struct.unpack(">I", sock.recv(4, socket.MSG_WAITALL))[0]
            sock.recv(size, socket.MSG_WAITALL)
    after = Scrape(scrape(daemon)[0])
    assert after.requests("invalid", "error") - before.requests("invalid", "error") == 2


def test_a_missing_budget_is_nan_not_zero(make_daemon):
    import math

    unbudgeted = make_daemon(metrics=True)
    m = Scrape(scrape(unbudgeted)[0])
    assert math.isnan(m.value("costd_budget_usd", period="day"))
    assert math.isnan(m.value("costd_budget_usd", period="month"))


def test_metrics_on_a_unix_socket_through_curl_with_monotonic_counters_and_budget_ratios(make_daemon) -> None:
    """The shipped unit allows Unix sockets only: scraped there with curl, as a proxy would."""
    root = tempfile.mkdtemp(prefix="costd-m-", dir="/tmp")
    path = os.path.join(root, "metrics.sock")
    try:
        daemon = make_daemon("--daily-budget", "5", "--metrics-listen", f"unix:{path}")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
        with costd.Client(daemon.socket) as client:
            client.record("gpt-4o", inputTokens=1000, outputTokens=500)
            client.record("gpt-4o", inputTokens=1000, outputTokens=500)
            client.record("gpt-4o", inputTokens=1000, outputTokens=500, cached=True)
        answer = subprocess.run(["curl", "-sS", "--unix-socket", path, "http://localhost/metrics"], capture_output=True, text=True, timeout=10)
        assert answer.returncode == 0, answer.stderr
        m = Scrape(answer.stdout)
        assert m.types["costd_calls"] == "counter" and m.types["costd_tokens"] == "counter"
        assert m.value("costd_spend_usd_total", model="gpt-4o") == pytest.approx(2 * GPT4O_COST, abs=1e-12)
        assert "costd_spend_usd_total{model=\"gpt-4o\"} 0.015\n" in answer.stdout, "exact decimal"
        assert m.value("costd_calls_total", model="gpt-4o") == 2
        assert m.value("costd_tokens_total", model="gpt-4o", **{"class": "output"}) == 1000
        assert m.value("costd_budget_usage_ratio", scope="host", period="day") == pytest.approx(2 * GPT4O_COST / 5)
        assert m.all("costd_budget_usage_ratio", period="month") == [], "no monthly budget: no series"
        assert m.value("costd_build_info", version=costd.__version__) == 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_example_alert_rules_name_only_metrics_costd_exports(make_daemon, redis_server) -> None:
    """examples/prometheus/costd-alerts.yml parses, and every costd metric it names is in a
    scrape of a daemon with Redis and budgets (a renamed metric would leave a rule that never fires)."""
    import re

    import yaml

    rules_file = Path(__file__).resolve().parents[2] / "examples" / "prometheus" / "costd-alerts.yml"
    rules = yaml.safe_load(rules_file.read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert len(expressions) >= 5 and all(rule.get("alert") for group in rules["groups"] for rule in group["rules"])
    named = {name for expr in expressions for name in re.findall(r"\bcostd_[a-z_]+", expr)}

    daemon = make_daemon("--daily-budget", "5", "--monthly-budget", "100", "--redis", redis_server.url, metrics=True)
    with costd.Client(daemon.socket) as client:
        client.record("gpt-4o", inputTokens=1000, outputTokens=500)
    m = Scrape(scrape(daemon)[0])
    missing = sorted(name for name in named if not m.all(name))
    assert not missing, f"the rules name metrics costd does not export: {missing}"


def test_scoped_budgets_have_usage_ratios_by_scope(make_daemon, tmp_path) -> None:
    config = tmp_path / "costd.toml"
    config.write_text('[[budgets]]\nuser = "ann"\ndaily = 0.03\n[[budgets]]\nfeature = "etl"\nunit = "etl.service"\nmonthly = 10\n')
    daemon = make_daemon("--config", str(config), metrics=True)
    with costd.Client(daemon.socket) as client:
        client.record("gpt-4o", inputTokens=1000, outputTokens=500, user="ann")  # $0.0075: a quarter of ann's day
    deadline = time.monotonic() + 10
    while True:  # the upkeep refreshes the scoped ratios every second
        m = Scrape(scrape(daemon)[0])
        if m.all("costd_budget_usage_ratio", scope="user=ann", period="day"):
            break
        assert time.monotonic() < deadline, "no ratio for ann's budget"
        time.sleep(0.1)
    assert m.value("costd_budget_usage_ratio", scope="user=ann", period="day") == pytest.approx(0.25)
    assert m.value("costd_budget_usage_ratio", scope="feature=etl,unit=etl.service", period="month") == 0
    assert m.all("costd_budget_usage_ratio", scope="user=ann", period="month") == [], "no monthly limit: no series"
    assert m.all("costd_budget_usage_ratio", scope="host") == [], "no host budget: no series"
