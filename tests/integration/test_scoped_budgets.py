"""Budgets per user, feature, unit and model (``[[budgets]]``), against real daemons: embedded,
and two daemons on one real ``redis-server``. A hard scoped budget refuses only the calls in
its scope, with no overshoot under 16 concurrent processes on 2 daemons; soft ones alert once
per period and level across the fleet; ``report.budgets`` and ``costctl budget`` show them;
a reload applies a change."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import time
from decimal import Decimal
from typing import Any, Dict, List, Tuple

import pytest

import costd

# gpt-4o-mini: $0.15 / $0.60 per million tokens.
MINI_IN, MINI_OUT = Decimal("0.15"), Decimal("0.60")


def mini(input_tokens: int, output_tokens: int) -> Decimal:
    return (input_tokens * MINI_IN + output_tokens * MINI_OUT) / 1_000_000


def standing(report: Dict[str, Any], scope: Dict[str, str], period: str = "day") -> Dict[str, Any]:
    found = [b for b in report["budgets"] if b["scope"] == scope and b["period"] == period]
    assert len(found) == 1, report["budgets"]
    return found[0]


def write_config(path, text: str) -> str:
    path.write_text(text)
    return str(path)


ANN_HARD = '[[budgets]]\nuser = "ann"\ndaily = 0.01\nhard = true\n'


def test_a_hard_user_budget_refuses_only_that_user(make_daemon, tmp_path) -> None:
    daemon = make_daemon("--config", write_config(tmp_path / "costd.toml", ANN_HARD))
    ask = {"model": "gpt-4o-mini", "inputTokens": 10_000, "maxOutputTokens": 10_000}  # $0.0075 at worst
    with costd.Client(daemon.socket) as client:
        first = client.reserve(user="ann", **ask)
        with pytest.raises(costd.BudgetExceeded) as refused:
            client.reserve(user="ann", **ask)  # $0.015 would pass $0.01
        data = refused.value.data
        assert data["scope"] == {"user": "ann"} and data["budgetPeriod"] == "day"
        assert Decimal(str(data["budgetUsd"])) == Decimal("0.01") and Decimal(str(data["reservedUsd"])) == Decimal("0.0075")
        # Bob is not in the scope: no limit for him.
        for _ in range(3):
            client.record(model="gpt-4o-mini", user="bob", reservation=client.reserve(user="bob", **ask)["reservation"],
                          inputTokens=10_000, outputTokens=10_000)
        # Ann's reservation settles at its real cost; the report shows where her budget stands.
        client.record(model="gpt-4o-mini", user="ann", reservation=first["reservation"], inputTokens=10_000, outputTokens=5_000)
        ann = standing(client.report(), {"user": "ann"})
        assert Decimal(str(ann["spentUsd"])) == mini(10_000, 5_000) and Decimal(str(ann["reservedUsd"])) == 0
        assert ann["hard"] is True and ann["state"] == "ok" and Decimal(str(ann["remainingUsd"])) == Decimal("0.01") - mini(10_000, 5_000)
        # route refuses her too (no tier fits), and names the budget.
        with pytest.raises(costd.BudgetExceeded) as routed:
            client.route(task="classification", user="ann", inputTokens=40_000)  # $0.006 on the cheapest tier
        assert routed.value.data["scope"] == {"user": "ann"}


def spend_as(socket_path: str, user: str, calls: int, results: "multiprocessing.Queue[Tuple[str, int, str]]") -> None:
    """One process: reserve, then record the worst case, until refused or done."""
    granted = 0
    spent = Decimal(0)
    with costd.Client(socket_path, timeout=30) as client:
        for _ in range(calls):
            try:
                grant = client.reserve(model="gpt-4o-mini", user=user, inputTokens=2_000, maxOutputTokens=1_000)
            except costd.BudgetExceeded as exc:
                assert exc.data["scope"] == {"user": user}
                continue
            answer = client.record(model="gpt-4o-mini", user=user, inputTokens=2_000, outputTokens=1_000,
                                   reservation=grant["reservation"])
            granted += 1
            spent += Decimal(str(answer["costUsd"]))
    results.put((user, granted, str(spent)))


def test_sixteen_processes_on_two_daemons_never_pass_a_hard_user_budget(make_daemon, redis_server, tmp_path) -> None:
    config = write_config(tmp_path / "costd.toml", '[[budgets]]\nuser = "ann"\ndaily = 0.009\nhard = true\n')
    daemons = [make_daemon("--config", config, "--redis", redis_server.url) for _ in range(2)]
    per_call = mini(2_000, 1_000)  # $0.0009: exactly ten fit in $0.009
    results: "multiprocessing.Queue[Tuple[str, int, str]]" = multiprocessing.Queue()
    # Sixteen processes spend against ann's budget, eight on each daemon; four more spend as bob.
    workers = [
        multiprocessing.Process(target=spend_as, args=(daemons[i % 2].socket, "ann" if i < 16 else "bob", 4 if i < 16 else 5, results))
        for i in range(20)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    ann_calls = sum(granted for user, granted, _ in outcomes if user == "ann")
    bob_calls = sum(granted for user, granted, _ in outcomes if user == "bob")
    assert ann_calls == 10, outcomes  # 64 tried; exactly as many as fit, none more
    assert bob_calls == 20, outcomes  # other users went on
    for daemon in daemons:
        with costd.Client(daemon.socket) as client:
            ann = standing(client.report(), {"user": "ann"})
            assert Decimal(str(ann["spentUsd"])) == 10 * per_call <= Decimal("0.009")
            assert Decimal(str(ann["reservedUsd"])) == 0 and ann["state"] == "exceeded"


def record_alerts(client: costd.Client, **params: Any) -> List[Tuple[str, str]]:
    answer = client.record(model="gpt-4o-mini", **params)
    return [(a["scope"], a["level"]) for a in answer["alerts"] if a["budgetScope"] == {"feature": "etl"}]


def test_a_soft_feature_budget_alerts_once_per_level_across_two_daemons(make_daemon, redis_server, tmp_path) -> None:
    config = write_config(tmp_path / "costd.toml", '[[budgets]]\nfeature = "etl"\ndaily = 0.01\nwarning_fraction = 0.5\n')
    first, second = (make_daemon("--config", config, "--redis", redis_server.url) for _ in range(2))
    fired: List[Tuple[str, str]] = []
    with costd.Client(first.socket) as a, costd.Client(second.socket) as b:
        # $0.003 a call (10,000 in + 2,500 out): warning at $0.005, exceeded at $0.01.
        for index in range(8):
            fired += record_alerts(a if index % 2 == 0 else b, feature="etl", inputTokens=10_000, outputTokens=2_500)
            # Calls outside the scope never fire its alerts.
            assert record_alerts(b, feature="search", inputTokens=10_000, outputTokens=2_500) == []
        assert fired == [("day", "warning"), ("day", "exceeded")]
        etl = standing(a.report(), {"feature": "etl"})
        assert Decimal(str(etl["spentUsd"])) == 8 * mini(10_000, 2_500) and etl["state"] == "exceeded" and etl["hard"] is False


def test_one_record_past_both_thresholds_fires_both_alerts(make_daemon, tmp_path) -> None:
    config = write_config(tmp_path / "costd.toml", '[[budgets]]\nfeature = "etl"\nmonthly = 0.001\n')
    daemon = make_daemon("--config", config)
    with costd.Client(daemon.socket) as client:
        answer = client.record(model="gpt-4o-mini", feature="etl", inputTokens=10_000, outputTokens=2_500)
        scoped = [(a["scope"], a["level"]) for a in answer["alerts"] if a["budgetScope"] == {"feature": "etl"}]
        assert scoped == [("month", "warning"), ("month", "exceeded")]


def test_scopes_of_several_dimensions_match_only_together(make_daemon, tmp_path) -> None:
    config = write_config(tmp_path / "costd.toml", '[[budgets]]\nuser = "ann"\nmodel = "gpt-4o"\ndaily = 1\n')
    daemon = make_daemon("--config", config)
    with costd.Client(daemon.socket) as client:
        client.record(model="gpt-4o", user="ann", inputTokens=1_000, outputTokens=500)  # $0.0075: in scope
        client.record(model="gpt-4o-mini", user="ann", inputTokens=1_000, outputTokens=500)  # another model
        client.record(model="gpt-4o", user="bob", inputTokens=1_000, outputTokens=500)  # another user
        both = standing(client.report(), {"model": "gpt-4o", "user": "ann"})
        assert Decimal(str(both["spentUsd"])) == Decimal("0.0075")


def test_a_reload_applies_budget_changes_and_costctl_lists_them(make_daemon, tmp_path, costctl_bin) -> None:
    path = tmp_path / "costd.toml"
    daemon = make_daemon("--config", write_config(path, ANN_HARD))
    ask = {"model": "gpt-4o-mini", "inputTokens": 10_000, "maxOutputTokens": 10_000}
    with costd.Client(daemon.socket) as client:
        client.reserve(user="ann", **ask)
        with pytest.raises(costd.BudgetExceeded):
            client.reserve(user="ann", **ask)
        path.write_text(ANN_HARD.replace("0.01", "1") + '[[budgets]]\nunit = "etl.service"\nmonthly = 5\n')
        daemon.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while len(client.report()["budgets"]) < 2:  # ann by day, and now the unit by month
            assert time.monotonic() < deadline, "the reload did not apply"
            time.sleep(0.05)
        client.reserve(user="ann", **ask)  # room now
    listed = subprocess.run([costctl_bin, "budget", "--socket", daemon.socket, "--json"], capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0, listed.stderr
    budgets = json.loads(listed.stdout)["budgets"]
    assert [(b["scope"], b["period"]) for b in budgets] == [({"user": "ann"}, "day"), ({"unit": "etl.service"}, "month")]
    shown = subprocess.run([costctl_bin, "budget", "--socket", daemon.socket], capture_output=True, text=True, timeout=30,
                           env={**os.environ, "NO_COLOR": "1"})
    assert shown.returncode == 0 and "user=ann" in shown.stdout and "unit=etl.service" in shown.stdout, shown.stdout


def test_a_bad_budgets_entry_is_refused_at_start_with_its_reason(costd_bin, tmp_path) -> None:
    for text, reason in (
        ('[[budgets]]\ndaily = 1\n', "names no scope"),
        ('[[budgets]]\nuser = "ann"\n', "needs daily and/or monthly"),
        ('[[budgets]]\nteam = "x"\ndaily = 1\n', "unknown setting 'budgets[0].team'"),
        ('[[budgets]]\nuser = "ann"\ndaily = 1\n[[budgets]]\nuser = "ann"\nmonthly = 2\n', "given twice"),
    ):
        config = write_config(tmp_path / "bad.toml", text)
        done = subprocess.run([costd_bin, "--config", config, "--socket", str(tmp_path / "s.sock"), "--state-dir", str(tmp_path / "st")],
                              capture_output=True, text=True, timeout=30)
        assert done.returncode != 0 and reason in done.stderr, (text, done.stderr)
