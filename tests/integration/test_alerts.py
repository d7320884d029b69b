"""Alerts that reach someone: ``subscribe`` notifications, ``costctl alerts`` (list, --since,
--json, --follow, --exec) and journald entries, against real daemons, embedded and two on one
real ``redis-server``. Each alert has a unique id, is delivered exactly once to each
subscriber and follower, and one fired while no follower ran is delivered when it starts with
--since."""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from decimal import Decimal
from typing import Any, Dict, List

import pytest

import costd

ALERT_FIELDS = {"id", "scope", "period", "level", "spentUsd", "budgetUsd", "at"}
ETL = '[[budgets]]\nfeature = "etl"\ndaily = 0.01\nwarning_fraction = 0.5\n'
CALL = {"model": "gpt-4o-mini", "feature": "etl", "inputTokens": 10_000, "outputTokens": 2_500}  # $0.003


def subscriber(path: str, since: Any = "0-0") -> "queue.Queue[Dict[str, Any]]":
    """A thread that puts each alert of a subscription (the Python client's) into a queue; from
    the first alert kept, so that it does not matter when the subscription is made."""
    alerts: "queue.Queue[Dict[str, Any]]" = queue.Queue()
    ready = threading.Event()

    def run() -> None:
        client = costd.Client(path)
        stream = client.subscribe(since=since, ping_every=5, reconnect_for=2)
        ready.set()
        try:
            for alert in stream:
                alerts.put(alert)
        except costd.DaemonUnavailable:
            pass  # the test is over and its daemon stopped

    threading.Thread(target=run, daemon=True).start()
    ready.wait(5)
    return alerts


def take(alerts: "queue.Queue[Dict[str, Any]]", count: int, timeout: float = 10.0) -> List[Dict[str, Any]]:
    got = [alerts.get(timeout=timeout) for _ in range(count)]
    return got


def nothing_more(alerts: "queue.Queue[Dict[str, Any]]", wait: float = 1.5) -> bool:
    try:
        extra = alerts.get(timeout=wait)
    except queue.Empty:
        return True
    raise AssertionError(f"an alert came twice or unasked: {extra}")


def config(tmp_path, text: str = ETL) -> str:
    path = tmp_path / "costd.toml"
    path.write_text(text)
    return str(path)


def costctl_alerts(costctl: str, socket_path: str, *args: str) -> List[str]:
    done = subprocess.run([costctl, "alerts", "--socket", socket_path, *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_a_subscriber_gets_each_alert_once_with_its_seven_fields(make_daemon, tmp_path, costctl_bin) -> None:
    daemon = make_daemon("--config", config(tmp_path))
    alerts = subscriber(daemon.socket)
    with costd.Client(daemon.socket) as client:
        for _ in range(4):
            client.record(**CALL)
    warning, exceeded = take(alerts, 2)
    assert set(warning) == ALERT_FIELDS and set(exceeded) == ALERT_FIELDS
    assert (warning["scope"], warning["period"], warning["level"]) == ({"feature": "etl"}, "day", "warning")
    assert (exceeded["level"], Decimal(str(exceeded["budgetUsd"]))) == ("exceeded", Decimal("0.01"))
    assert Decimal(str(warning["spentUsd"])) == Decimal("0.006") and Decimal(str(exceeded["spentUsd"])) == Decimal("0.012")
    assert warning["id"] != exceeded["id"] and abs(warning["at"] - time.time() * 1000) < 60_000
    assert nothing_more(alerts)

    # costctl alerts lists them: exactly the notifications' params as JSON lines, and --since.
    listed = [json.loads(line) for line in costctl_alerts(costctl_bin, daemon.socket, "--json")]
    assert listed == [warning, exceeded]
    assert [json.loads(line) for line in costctl_alerts(costctl_bin, daemon.socket, "--json", "--since", warning["id"])] == [exceeded]
    human = costctl_alerts(costctl_bin, daemon.socket)
    assert len(human) == 2 and "feature=etl day budget warning" in human[0]
    # A late subscriber that names the first alert gets the second only; one that names none, nothing old.
    late = subscriber(daemon.socket, since=warning["id"])
    assert take(late, 1) == [exceeded] and nothing_more(late, 0.5)


def test_alerts_survive_a_restart_with_their_ids(make_daemon, tmp_path, costctl_bin) -> None:
    daemon = make_daemon("--config", config(tmp_path))
    with costd.Client(daemon.socket) as client:
        for _ in range(4):
            client.record(**CALL)
    before = costctl_alerts(costctl_bin, daemon.socket, "--json")
    daemon.stop()
    daemon.start()
    assert costctl_alerts(costctl_bin, daemon.socket, "--json") == before and len(before) == 2


def follow(costctl: str, socket_path: str, out: str, *args: str) -> subprocess.Popen:
    """``costctl alerts --follow --exec`` appending each alert's stdin to ``out`` (from the first
    alert kept unless ``args`` say otherwise, so that it does not matter when it subscribes)."""
    since = [] if "--since" in args else ["--since", "0-0"]
    return subprocess.Popen(
        [costctl, "alerts", "--follow", "--socket", socket_path, "--exec", f"cat >> {out}", *since, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def lines_of(path: str) -> List[Dict[str, Any]]:
    try:
        with open(path) as file:
            return [json.loads(line) for line in file if line.strip()]
    except FileNotFoundError:
        return []


def wait_for(what: str, condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_two_daemons_deliver_each_scoped_alert_once_to_every_subscriber_and_follower(make_daemon, redis_server, tmp_path, costctl_bin) -> None:
    path = config(tmp_path)
    first = make_daemon("--config", path, "--redis", redis_server.url)
    second = make_daemon("--config", path, "--redis", redis_server.url)
    subscribers = [subscriber(first.socket), subscriber(second.socket)]
    outputs = [str(tmp_path / "first.ndjson"), str(tmp_path / "second.ndjson")]
    followers = [follow(costctl_bin, first.socket, outputs[0]), follow(costctl_bin, second.socket, outputs[1])]
    try:
        with costd.Client(first.socket) as a, costd.Client(second.socket) as b:
            for index in range(8):
                (a if index % 2 == 0 else b).record(**CALL)
        for alerts in subscribers:
            got = take(alerts, 2)
            assert [(g["scope"], g["level"]) for g in got] == [({"feature": "etl"}, "warning"), ({"feature": "etl"}, "exceeded")]
            assert nothing_more(alerts)
        wait_for("both followers ran --exec twice", lambda: all(len(lines_of(out)) == 2 for out in outputs))
        delivered = [lines_of(out) for out in outputs]
        assert delivered[0] == delivered[1] and len(delivered[0]) == 2, delivered  # once each, the same ids
        assert all(set(alert) == ALERT_FIELDS for alert in delivered[0])
        # Both daemons list the same alerts, with the same ids: the fleet's stream.
        assert [json.loads(line) for line in costctl_alerts(costctl_bin, first.socket, "--json")] == delivered[0]
        assert [json.loads(line) for line in costctl_alerts(costctl_bin, second.socket, "--json")] == delivered[0]
    finally:
        for follower in followers:
            follower.terminate()
            follower.wait(10)


def test_an_alert_fired_while_no_follower_ran_is_delivered_by_since_and_a_restart_is_resumed(make_daemon, tmp_path, costctl_bin) -> None:
    daemon = make_daemon("--config", config(tmp_path, ETL + '[[budgets]]\nuser = "ann"\ndaily = 0.01\n'))
    state = str(tmp_path / "last-id")
    out = str(tmp_path / "alerts.ndjson")
    follower = follow(costctl_bin, daemon.socket, out, "--state-file", state)
    try:
        with costd.Client(daemon.socket) as client:
            for _ in range(2):
                client.record(**CALL)  # the feature's warning
        wait_for("the warning", lambda: len(lines_of(out)) == 1)
        wait_for("its id in the state file", lambda: os.path.exists(state))
    finally:
        follower.terminate()
        follower.wait(10)
    # Fired while no follower runs:
    with costd.Client(daemon.socket) as client:
        for _ in range(2):
            client.record(**CALL)  # the feature's exceeded
    last_handled = open(state).read().strip()
    assert last_handled == lines_of(out)[0]["id"], "the state file holds the last alert handled"
    follower_log = str(tmp_path / "follower.log")
    with open(follower_log, "w") as stderr_file:
        follower = subprocess.Popen(
            [costctl_bin, "alerts", "--follow", "--socket", daemon.socket, "--exec", f"cat >> {out}", "--since", last_handled],
            stdout=subprocess.DEVNULL, stderr=stderr_file)
    try:
        wait_for("the exceeded alert, fired while no follower ran", lambda: len(lines_of(out)) == 2)
        assert [a["level"] for a in lines_of(out)] == ["warning", "exceeded"]
        # The daemon restarts under a running follower: it subscribes again from its last alert.
        daemon.stop()
        daemon.start()
        with costd.Client(daemon.socket) as client:
            client.record(model="gpt-4o-mini", user="ann", inputTokens=100_000, outputTokens=0)  # $0.015: ann's two
        wait_for("ann's alerts after the restart", lambda: len(lines_of(out)) == 4, timeout=30)
        levels = [(a["scope"], a["level"]) for a in lines_of(out)]
        assert levels[2:] == [({"user": "ann"}, "warning"), ({"user": "ann"}, "exceeded")]
        assert len({a["id"] for a in lines_of(out)}) == 4, "each once"
        wait_for("the last delivery logged", lambda: open(follower_log).read().count("delivered (attempt 1)") == 3)
    finally:
        follower.terminate()
        follower.wait(10)
    stderr = open(follower_log).read()
    assert "subscribing again" in stderr, stderr


def test_a_failing_exec_is_retried_with_backoff_and_logged(make_daemon, tmp_path, costctl_bin) -> None:
    daemon = make_daemon("--config", config(tmp_path))
    marker = tmp_path / "tries"
    out = tmp_path / "delivered.ndjson"
    # Fails twice, then takes the alert.
    script = f'n=$(cat {marker} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {marker}; [ $n -ge 3 ] && cat >> {out}'
    log = tmp_path / "follower.log"
    with open(log, "w") as stderr_file:
        follower = subprocess.Popen([costctl_bin, "alerts", "--follow", "--since", "0-0", "--socket", daemon.socket, "--exec", script],
                                    stdout=subprocess.DEVNULL, stderr=stderr_file)
    try:
        with costd.Client(daemon.socket) as client:
            for _ in range(2):
                client.record(**CALL)
        wait_for("the third try, logged", lambda: "delivered (attempt 3)" in log.read_text(), timeout=20)
    finally:
        follower.terminate()
        follower.wait(10)
    stderr = log.read_text()
    assert len(lines_of(str(out))) == 1
    assert "attempt 1 of 8" in stderr and "attempt 2 of 8" in stderr and "delivered (attempt 3)" in stderr, stderr


@pytest.mark.skipif(os.path.exists("/run/systemd/journal"), reason="a real journald runs here: its socket is not ours to take")
def test_an_alert_is_a_structured_journal_entry_with_a_fixed_message_id(costd_bin, tmp_path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root, to listen on /run/systemd/journal/socket as journald would")
    os.makedirs("/run/systemd/journal")
    journal = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        journal.bind("/run/systemd/journal/socket")
        journal.settimeout(10)
        sock = str(tmp_path / "c.sock")
        process = subprocess.Popen(
            [costd_bin, "--config", config(tmp_path), "--socket", sock, "--state-dir", str(tmp_path / "state")],
            env={**os.environ, "JOURNAL_STREAM": "8:1"}, stderr=subprocess.PIPE)
        try:
            wait_for("the socket", lambda: os.path.exists(sock))
            time.sleep(0.2)
            with costd.Client(sock) as client:
                for _ in range(2):
                    client.record(**CALL)
            entry = journal.recv(65536).decode()
        finally:
            process.terminate()
            process.wait(10)
        fields = dict(line.split("=", 1) for line in entry.splitlines() if "=" in line)
        assert fields["MESSAGE_ID"] == "96f4146813dd47ccb9f2e9ce1aa34833"
        assert fields["MESSAGE"] == "Budget warning" and fields["PRIORITY"] == "4"
        assert fields["COSTD_BUDGET_SCOPE"] == '{"feature":"etl"}' and fields["COSTD_LEVEL"] == "warning"
    finally:
        journal.close()
        os.unlink("/run/systemd/journal/socket")
        os.rmdir("/run/systemd/journal")
        if not os.listdir("/run/systemd"):
            os.rmdir("/run/systemd")


EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "alerts")


def test_the_shipped_webhook_sender_posts_each_alert(tmp_path) -> None:
    import http.server

    received: "queue.Queue[bytes]" = queue.Queue()

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            received.put(self.rfile.read(int(self.headers["content-length"])))
            self.send_response(200 if "fail" not in self.path else 500)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/hook"
    alert = ('{"id":"1796081991024-0","scope":{"feature":"etl"},"period":"day","level":"warning",'
             '"spentUsd":0.006,"budgetUsd":0.01,"at":1796081991024}')
    sender = os.path.join(EXAMPLES, "costd-alert-webhook")
    try:
        for form, expected in (
            ("json", json.loads(alert)),
            ("slack", {"text": "costd: feature=etl day budget warning: $0.006 of $0.01 (alert 1796081991024-0)"}),
        ):
            done = subprocess.run([sender], input=alert, text=True, capture_output=True, timeout=30,
                                  env={**os.environ, "COSTD_WEBHOOK_URL": url, "COSTD_WEBHOOK_FORMAT": form})
            assert done.returncode == 0, done.stderr
            assert json.loads(received.get(timeout=5)) == expected
        # A webhook that fails makes the sender fail, so that costctl tries again.
        failed = subprocess.run([sender], input=alert, text=True, capture_output=True, timeout=30,
                                env={**os.environ, "COSTD_WEBHOOK_URL": url + "/fail"})
        assert failed.returncode != 0
    finally:
        server.shutdown()


def test_the_shipped_alerts_unit_verifies(tmp_path, costctl_bin) -> None:
    unit = open(os.path.join(EXAMPLES, "costd-alerts.service")).read()
    env = tmp_path / "alerts.env"
    env.write_text("COSTD_WEBHOOK_URL=http://127.0.0.1:9/\n")
    unit = (unit.replace("/usr/local/bin/costctl", os.path.abspath(costctl_bin))
            .replace("/usr/local/bin/costd-alert-webhook", os.path.abspath(os.path.join(EXAMPLES, "costd-alert-webhook")))
            .replace("/etc/costd/alerts.env", str(env)))
    path = tmp_path / "costd-alerts.service"
    path.write_text(unit)
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(path)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (done.stdout + done.stderr).splitlines() if "costd.socket" not in line and "network-online" not in line]
    assert done.returncode == 0 and not problems, done.stdout + done.stderr
