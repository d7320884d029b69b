"""The OpenAI-compatible HTTP endpoint, end to end: real daemons, the real ``openai`` SDK
(sync, async, streaming), ``curl``, raw sockets, a real redis-server, and a fake upstream that
speaks OpenAI's and Anthropic's shapes (tests/support/fake_upstream.py). Nothing reaches the
internet."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

openai = pytest.importorskip("openai")

import costd  # noqa: E402
from costd import Client  # noqa: E402

# Prices of the test's own models (USD per million tokens), so that expected spend is computed
# here, independently of costd's price table.
PRICES = {"small-model": (1, 2), "big-model": (10, 30)}
CONFIG = """
baseline_model = "big-model"

[prices."small-model"]
input = 1.0
output = 2.0

[prices."big-model"]
input = 10.0
output = 30.0

[routing]
tiers = [{ name = "small", model = "small-model" }, { name = "large", model = "big-model" }]
default_tier = "large"
[routing.tasks]
classify = "small"
"""


def cost(model: str, prompt_tokens: int, completion_tokens: int) -> Decimal:
    price_in, price_out = PRICES[model]
    return (Decimal(prompt_tokens) * price_in + Decimal(completion_tokens) * price_out) / Decimal(1_000_000)


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Polls ``condition`` until it is truthy (an event another process causes), or fails."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def accepts(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()


@pytest.fixture
def start(make_daemon, fake_upstream, tmp_path):
    """``start(extra_config="", *args)`` starts a daemon whose upstreams are the fake."""

    def run(extra_config: str = "", *args: str):
        config = tmp_path / f"costd-{len(list(tmp_path.iterdir()))}.toml"
        config.write_text(CONFIG + extra_config)
        daemon = make_daemon(
            "--config", str(config),
            "--upstream", f"openai={fake_upstream.base_url}",
            "--upstream", f"anthropic={fake_upstream.base_url}",
            *args,
        )
        wait_until(lambda: accepts(daemon.http_socket), what="the HTTP socket")
        return daemon

    return run


def report(daemon) -> Dict[str, Any]:
    with Client(daemon.socket) as client:
        return client.report()


def chat(model: str = "small-model", content: str = "hello", **extra: Any) -> Dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], "temperature": 0, **extra}


def test_sdk_repeats_are_answered_from_the_cache_and_spend_is_exact(start, fake_upstream):
    daemon = start()
    client = costd.openai_client(daemon.http_socket, api_key="sk-test-key", max_retries=0)
    first = client.chat.completions.with_raw_response.create(**chat(content="what is two plus two"))
    second = client.chat.completions.with_raw_response.create(**chat(content="what is two plus two"))
    assert first.headers["x-costd-cache"] == "miss"
    assert second.headers["x-costd-cache"] == "hit"
    one, two = first.parse(), second.parse()
    assert two.choices[0].message.content == one.choices[0].message.content == "echo: what is two plus two"
    assert len(fake_upstream.calls("/v1/chat/completions")) == 1

    expected = cost("small-model", one.usage.prompt_tokens, one.usage.completion_tokens)
    assert Decimal(first.headers["x-costd-cost-usd"]) == expected
    assert Decimal(second.headers["x-costd-saved-usd"]) == expected
    totals = report(daemon)
    assert Decimal(str(totals["totalCostUsd"])) == expected
    assert totals["requests"] == 1 and totals["cachedRequests"] == 1
    assert Decimal(str(totals["savings"]["cacheUsd"])) == expected
    assert Decimal(str(totals["savings"]["routingUsd"])) == 0  # costd routed nothing


def test_a_repeated_stream_is_replayed_with_the_same_content(start, fake_upstream):
    daemon = start()
    client = costd.openai_client(daemon.http_socket, api_key="sk-test-key", max_retries=0)

    def run_stream() -> List[Any]:
        return list(client.chat.completions.create(**chat(content="tell me a story"), stream=True))

    first, second = run_stream(), run_stream()
    text = lambda chunks: "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)  # noqa: E731
    assert text(first) == text(second) == "echo: tell me a story"
    # The client did not ask for usage: the chunk costd asked for is not shown to it.
    assert all(c.choices for c in first + second)
    upstream = fake_upstream.calls("/v1/chat/completions")
    assert len(upstream) == 1
    assert upstream[0]["body"]["stream_options"] == {"include_usage": True}

    # A client that asks for usage gets it, from the cache too; and the unstreamed question is
    # the same cache entry.
    with_usage = list(client.chat.completions.create(**chat(content="tell me a story"), stream=True, stream_options={"include_usage": True}))
    usage = [c.usage for c in with_usage if not c.choices]
    assert len(usage) == 1 and usage[0].prompt_tokens > 0
    whole = client.chat.completions.create(**chat(content="tell me a story"))
    assert whole.choices[0].message.content == "echo: tell me a story"
    assert len(fake_upstream.calls("/v1/chat/completions")) == 1
    assert Decimal(str(report(daemon)["totalCostUsd"])) == cost("small-model", usage[0].prompt_tokens, usage[0].completion_tokens)


def test_async_sdk_and_async_streams(start, fake_upstream):
    daemon = start()

    async def main() -> List[str]:
        client = costd.async_openai_client(daemon.http_socket, api_key="sk-test-key", max_retries=0)
        texts = []
        for _ in range(2):
            reply = await client.chat.completions.create(**chat(content="async question"))
            texts.append(reply.choices[0].message.content)
        for _ in range(2):
            stream = await client.chat.completions.create(**chat(content="async stream"), stream=True)
            texts.append("".join([c.choices[0].delta.content or "" async for c in stream if c.choices]))
        await client.close()
        return texts

    assert asyncio.run(main()) == ["echo: async question"] * 2 + ["echo: async stream"] * 2
    assert len(fake_upstream.calls("/v1/chat/completions")) == 2


def test_auto_and_task_route_and_count_only_the_savings_costd_made(start, fake_upstream):
    daemon = start()
    client = costd.openai_client(daemon.http_socket, api_key="sk-test-key", max_retries=0)
    routed = client.chat.completions.with_raw_response.create(
        **chat(model="big-model", content="is this spam"), extra_headers={"x-costd-task": "classify"})
    assert routed.headers["x-costd-model"] == "small-model"
    auto = client.chat.completions.with_raw_response.create(**chat(model="auto", content="a general question"))
    assert auto.headers["x-costd-model"] == "big-model"  # the default tier
    calls = fake_upstream.calls("/v1/chat/completions")
    assert [c["body"]["model"] for c in calls] == ["small-model", "big-model"]
    # max_tokens comes from the route when the request has none.
    assert all(c["body"]["max_tokens"] > 0 for c in calls)

    usage = routed.parse().usage
    saved = cost("big-model", usage.prompt_tokens, usage.completion_tokens) - cost("small-model", usage.prompt_tokens, usage.completion_tokens)
    assert Decimal(str(report(daemon)["savings"]["routingUsd"])) == saved


def test_a_hard_budget_gives_429_and_the_sdk_does_not_retry(start, fake_upstream):
    daemon = start('\n[budget]\ndaily = 0.000001\nhard_daily = true\n')
    sent: List[str] = []
    http_client = openai.DefaultHttpxClient(
        transport=costd.gateway._httpx_for(openai.DefaultHttpxClient).HTTPTransport(uds=daemon.http_socket),
        event_hooks={"request": [lambda request: sent.append(str(request.url))]},
    )
    client = costd.openai_client(daemon.http_socket, api_key="sk-test-key", http_client=http_client, max_retries=3)
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(**chat(content="an expensive question", max_tokens=500))
    assert raised.value.status_code == 429
    assert raised.value.response.headers["x-should-retry"] == "false"
    body = raised.value.response.json()
    assert body["error"]["type"] == "budget_exceeded" and body["error"]["code"] == "budget_exceeded"
    assert len(sent) == 1, "the SDK retried a refused budget"
    assert fake_upstream.calls("/v1/chat/completions") == []
    assert report(daemon).get("reservedUsd", 0) == 0


def test_upstream_errors_pass_through_and_are_never_cached(start, fake_upstream):
    daemon = start()
    client = costd.openai_client(daemon.http_socket, api_key="sk-test-key", max_retries=0)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as raised:
            client.chat.completions.create(**chat(content="boom"), extra_headers={"x-fake": "error-500"})
        assert raised.value.status_code == 500
        assert raised.value.body["message"] == "fake upstream error 500"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(**chat(content="boom"), extra_headers={"x-fake": "error-400"})
    assert len(fake_upstream.calls("/v1/chat/completions")) == 3
    totals = report(daemon)
    assert totals["requests"] == 0 and totals.get("reservedUsd", 0) == 0


def test_an_unreachable_upstream_is_a_502(make_daemon, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    daemon = make_daemon("--upstream", f"openai=http://127.0.0.1:{port}/v1")
    wait_until(lambda: accepts(daemon.http_socket))
    client = costd.openai_client(daemon.http_socket, api_key="sk-test-key", max_retries=0)
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert raised.value.status_code == 502
    assert raised.value.body["code"] == "upstream_unreachable"


def test_a_client_that_hangs_up_mid_stream_leaves_no_reservation_or_lease(start, fake_upstream):
    daemon = start('\n[budget]\ndaily = 100\nhard_daily = true\n[cache]\nlease_wait_ms = 60000\n')
    request = json.dumps(chat(content="a long story", stream=True)).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(daemon.http_socket)
        conn.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: costd\r\ncontent-type: application/json\r\n"
                     b"x-fake: slow-stream\r\ncontent-length: %d\r\n\r\n%s" % (len(request), request))
        received = b""
        while received.count(b"data:") < 3:
            chunk = conn.recv(4096)
            assert chunk, "costd closed the stream early"
            received += chunk
        assert b"200 OK" in received
        assert report(daemon).get("reservedUsd", 0) > 0  # held while the call runs
    # Hung up: the upstream call is cancelled, what was used is recorded, the hold is given back.
    wait_until(lambda: fake_upstream.abandoned == 1, what="the upstream stream to be cancelled")
    totals = wait_until(lambda: (lambda t: t if t["requests"] == 1 else None)(report(daemon)), what="the partial call's record")
    assert totals.get("reservedUsd", 0) == 0
    assert totals["totalCostUsd"] > 0
    # The lease is free: the same question goes upstream at once instead of waiting for it.
    client = costd.openai_client(daemon.http_socket, api_key="sk-test-key", max_retries=0, timeout=10)
    reply = client.chat.completions.create(**chat(content="a long story"))
    assert reply.choices[0].message.content == "echo: a long story"
    assert len(fake_upstream.calls("/v1/chat/completions")) == 2


def test_the_authorization_header_reaches_the_upstream_and_is_stored_nowhere(start, fake_upstream, redis_server):
    secret = "sk-proj-SECRET-7c1d9e0f2a"
    daemon = start("", "--redis", redis_server.url, "--log-level", "trace")
    client = costd.openai_client(daemon.http_socket, api_key=secret, max_retries=0)
    client.chat.completions.create(**chat(content="keep my key"))
    client.chat.completions.create(**chat(content="keep my key"))
    list(client.chat.completions.create(**chat(content="stream with my key"), stream=True))
    anthropic = subprocess.run(
        ["curl", "-sS", "--unix-socket", daemon.http_socket, "http://costd/v1/messages", "-H", f"x-api-key: {secret}",
         "-H", "content-type: application/json", "-d", json.dumps({"model": "small-model", "max_tokens": 50, "temperature": 0,
                                                                  "messages": [{"role": "user", "content": "hi"}]})],
        capture_output=True, text=True, check=True)
    assert json.loads(anthropic.stdout)["content"][0]["text"] == "echo: hi"
    calls = fake_upstream.calls()
    assert [c["headers"].get("authorization") for c in calls if c["path"] == "/v1/chat/completions"] == [f"Bearer {secret}"] * 2
    assert [c["headers"].get("x-api-key") for c in calls if c["path"] == "/v1/messages"] == [secret]

    daemon.stop()
    for path in Path(daemon.root).rglob("*"):
        if path.is_file() and not path.is_socket():
            assert secret.encode() not in path.read_bytes(), f"the key is in {path}"
    dump = "".join(redis_server.cli("--no-raw", "GET", key) + redis_server.cli("--no-raw", "HGETALL", key)
                   for key in redis_server.cli("--raw", "KEYS", "*").split())
    assert dump, "nothing reached Redis: the check would prove nothing"
    assert secret not in dump and secret not in redis_server.cli("--raw", "KEYS", "*")


def test_a_key_file_serves_programs_that_have_no_key(make_daemon, fake_upstream, tmp_path, monkeypatch):
    key_file = tmp_path / "openai.key"
    key_file.write_text("sk-from-credential\n")
    config = tmp_path / "costd.toml"
    config.write_text(f'[upstreams.openai]\nurl = "{fake_upstream.base_url}"\nkey_file = "{key_file}"\n')
    daemon = make_daemon("--config", str(config))
    wait_until(lambda: accepts(daemon.http_socket))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    client = costd.openai_client(daemon.http_socket, max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "no key here"}])
    assert fake_upstream.calls("/v1/chat/completions")[0]["headers"]["authorization"] == "Bearer sk-from-credential"


def test_anthropic_messages_embeddings_and_responses_are_recorded_and_cached(start, fake_upstream):
    daemon = start()

    def curl(path: str, body: Dict[str, Any], *headers: str) -> subprocess.CompletedProcess:
        args = ["curl", "-sS", "-i", "--unix-socket", daemon.http_socket, f"http://costd{path}", "-H", "content-type: application/json"]
        for header in headers:
            args += ["-H", header]
        return subprocess.run(args + ["-d", json.dumps(body)], capture_output=True, text=True, check=True)

    message = {"model": "small-model", "max_tokens": 100, "temperature": 0, "messages": [{"role": "user", "content": "bonjour"}]}
    streamed = curl("/v1/messages", {**message, "stream": True})
    assert "event: message_stop" in streamed.stdout and "x-costd-cache: miss" in streamed.stdout
    replay = curl("/v1/messages", {**message, "stream": True})
    assert "x-costd-cache: hit" in replay.stdout
    body_of = lambda r: r.stdout.split("\n\n", 1)[1]  # noqa: E731 (text mode turns CRLF into LF)
    assert [l for l in body_of(replay).splitlines() if l.startswith("data:")] == [l for l in body_of(streamed).splitlines() if l.startswith("data:")]
    whole = json.loads(body_of(curl("/v1/messages", message)))  # the streamed answer, put together
    assert whole["content"][0]["text"] == "echo: bonjour" and whole["usage"]["output_tokens"] > 0
    assert len(fake_upstream.calls("/v1/messages")) == 1

    client = costd.openai_client(daemon.http_socket, api_key="sk-test-key", max_retries=0)
    for _ in range(2):
        client.embeddings.create(model="small-model", input=["one", "two"])
    assert len(fake_upstream.calls("/v1/embeddings")) == 1
    response = client.responses.create(model="small-model", input="hello responses", temperature=0)
    assert response.output_text == "echo: hello responses"
    streamed_response = list(client.responses.create(model="small-model", input="hello responses", temperature=0, stream=True))
    assert streamed_response[-1].type == "response.completed"
    assert len(fake_upstream.calls("/v1/responses")) == 1

    totals = report(daemon)
    upstream_usage = json.loads(body_of(curl("/v1/messages", message, "x-costd-cache: refresh")))["usage"]
    expected_message = cost("small-model", upstream_usage["input_tokens"], upstream_usage["output_tokens"])
    assert totals["requests"] == 3  # messages, embeddings, responses
    assert Decimal(str(report(daemon)["totalCostUsd"])) - Decimal(str(totals["totalCostUsd"])) == expected_message


def test_bad_requests_get_clear_errors_and_harm_nobody(start, fake_upstream):
    daemon = start('\n[http]\nmax_body_bytes = 4096\nrequest_timeout = 1\n')

    def raw(data: bytes) -> bytes:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(10)
            conn.connect(daemon.http_socket)
            conn.sendall(data)
            received = b""
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    return received
                received += chunk
                if b"\r\n\r\n" in received and b"connection: close" not in received.lower() and received.endswith(b"}"):
                    return received

    bad_json = raw(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 9\r\n\r\n{not json")
    assert bad_json.startswith(b"HTTP/1.1 400") and b'"invalid_request_error"' in bad_json
    no_model = raw(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}")
    assert no_model.startswith(b"HTTP/1.1 400") and b"'model' is required" in no_model
    unknown = raw(b"GET /elsewhere HTTP/1.1\r\nhost: x\r\n\r\n")
    assert unknown.startswith(b"HTTP/1.1 404")
    too_large = raw(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n" + b"x" * 100)
    assert too_large.startswith(b"HTTP/1.1 413")
    garbage = raw(b"\x00\x01 NOT HTTP AT ALL\r\n\r\n")
    assert garbage.startswith(b"HTTP/1.1 400") or garbage == b""
    # A head that never ends is cut off (http.request_timeout), without an answer.
    assert raw(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-slow: ") == b""
    # Other paths under /v1/ pass through.
    models = costd.openai_client(daemon.http_socket, api_key="sk-test-key", max_retries=0).models.list()
    assert [m.id for m in models.data] == ["gpt-4o-mini"]
    # And the daemon still serves everyone.
    assert costd.openai_client(daemon.http_socket, api_key="k", max_retries=0).chat.completions.create(**chat()).choices
    assert report(daemon)["requests"] == 1


def test_two_daemons_share_answers_through_redis(start, fake_upstream, redis_server):
    first = start("", "--redis", redis_server.url)
    second = start("", "--redis", redis_server.url)
    for daemon in (first, second):
        client = costd.openai_client(daemon.http_socket, api_key="sk-test-key", max_retries=0)
        assert client.chat.completions.create(**chat(content="shared")).choices[0].message.content == "echo: shared"
    assert len(fake_upstream.calls("/v1/chat/completions")) == 1


def test_a_program_joins_by_changing_one_url(start, fake_upstream, tmp_path):
    from conftest import free_port

    port = free_port()
    daemon = start("", "--http-listen", f"127.0.0.1:{port}")
    wait_until(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() or True, what="the TCP listener")
    program = tmp_path / "program.py"
    # An ordinary OpenAI program, unchanged: only its environment points it at costd.
    program.write_text(
        "import openai\n"
        "client = openai.OpenAI()\n"
        "for _ in range(2):\n"
        "    reply = client.chat.completions.create(model='small-model', temperature=0,\n"
        "                                           messages=[{'role': 'user', 'content': 'one url'}])\n"
        "print(reply.choices[0].message.content)\n")
    env = {**os.environ, "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1", "OPENAI_API_KEY": "sk-program"}
    result = subprocess.run(["python3", str(program)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "echo: one url"
    assert len(fake_upstream.calls("/v1/chat/completions")) == 1
    assert report(daemon)["cachedRequests"] == 1


def test_a_remote_listen_address_is_refused_unless_allowed(costd_bin, tmp_path):
    result = subprocess.run(
        [costd_bin, "--socket", str(tmp_path / "c.sock"), "--state-dir", str(tmp_path / "state"), "--http-listen", "0.0.0.0:8787"],
        capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "not a loopback address" in result.stderr and "allow_remote" in result.stderr


def test_http_calls_are_counted_in_the_metrics(make_daemon, fake_upstream, tmp_path):
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    config = tmp_path / "costd.toml"
    config.write_text(CONFIG)
    daemon = make_daemon("--config", str(config), "--upstream", f"openai={fake_upstream.base_url}", metrics=True)
    wait_until(lambda: accepts(daemon.http_socket))
    client = costd.openai_client(daemon.http_socket, api_key="sk-test-key", max_retries=0)
    for _ in range(2):
        client.chat.completions.create(**chat(content="counted"))  # a miss, then a hit
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(**chat(content="boom"), extra_headers={"x-fake": "error-500"})
    client.models.list()

    def count(method: str, outcome: str) -> float:
        text = urllib.request.urlopen(daemon.metrics_url + "/metrics", timeout=10).read().decode()
        return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
                   if s.name == "costd_requests_total" and s.labels == {"method": method, "outcome": outcome})

    assert count("http.chat.completions", "ok") == 2
    assert count("http.chat.completions", "error") == 1
    assert count("http.passthrough", "ok") == 1


def test_a_hard_user_budget_gives_that_user_429_and_lets_others_through(start, fake_upstream):
    daemon = start('\n[[budgets]]\nuser = "ann"\ndaily = 0.000001\nhard = true\n')
    ann = costd.openai_client(daemon.http_socket, api_key="sk-test-key", max_retries=0, default_headers={"x-costd-user": "ann"})
    bob = costd.openai_client(daemon.http_socket, api_key="sk-test-key", max_retries=0, default_headers={"x-costd-user": "bob"})
    with pytest.raises(openai.RateLimitError) as raised:
        ann.chat.completions.create(**chat(content="an expensive question", max_tokens=500))
    assert raised.value.status_code == 429
    body = raised.value.response.json()
    assert body["error"]["code"] == "budget_exceeded" and '{"user":"ann"}' in body["error"]["message"]
    assert fake_upstream.calls("/v1/chat/completions") == []
    answer = bob.chat.completions.create(**chat(content="an expensive question", max_tokens=500))
    assert answer.choices and len(fake_upstream.calls("/v1/chat/completions")) == 1
    budgets = report(daemon)["budgets"]
    assert [(b["scope"], b["reservedUsd"]) for b in budgets] == [({"user": "ann"}, 0)]
