"""cached_completion: route, cache the whole request, record spend and savings.

The LLM is a fake callable returning the OpenAI chat-completion shape: nothing touches the
network.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, Dict, Iterator, List, Optional

import pytest

import costd
from costd import cached, cached_completion, usage_from_response

MESSAGES = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Capital of France?"}]
# gpt-4o: $2.50 / M input, $10 / M output, $1.25 / M cached input.
COST = (120 * 2.5 + 30 * 10) / 1e6


class FakeOpenAI:
    """Stands for ``OpenAI().chat.completions.create``."""

    def __init__(self, cached_tokens: int = 0, usage: bool = True) -> None:
        self.calls: List[Dict[str, Any]] = []
        self.cached_tokens = cached_tokens
        self.usage = usage

    def response(self, **request: Any) -> Dict[str, Any]:
        body: Dict[str, Any] = {
            "id": f"chatcmpl-{len(self.calls)}",
            "object": "chat.completion",
            "model": request["model"] + "-2024-08-06",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": f"Paris (call {len(self.calls)})"},
                }
            ],
        }
        if self.usage:
            body["usage"] = {
                "prompt_tokens": 120,
                "completion_tokens": 30,
                "total_tokens": 150,
                "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
            }
        return body

    def __call__(self, **request: Any) -> Dict[str, Any]:
        self.calls.append(request)
        return self.response(**request)


class DumpedResponse:
    """An SDK-like object (pydantic's ``model_dump``)."""

    def __init__(self, data: Dict[str, Any]) -> None:
        self._data = data
        self.usage = type("Usage", (), {"prompt_tokens": 120, "completion_tokens": 30, "prompt_tokens_details": None})()

    def model_dump(self, mode: str = "python") -> Dict[str, Any]:
        return dict(self._data)


class ToDictResponse:
    def __init__(self, data: Dict[str, Any]) -> None:
        self._data = data

    def to_dict(self) -> Dict[str, Any]:
        return dict(self._data)


def test_miss_then_hit(client: costd.Client) -> None:
    llm = FakeOpenAI()
    first = cached_completion(client, llm, model="gpt-4o", messages=MESSAGES, temperature=0, user="ann", feature="qa")
    assert len(llm.calls) == 1
    assert llm.calls[0] == {"model": "gpt-4o", "messages": MESSAGES, "temperature": 0}  # costd options not passed
    second = cached_completion(client, llm, model="gpt-4o", messages=MESSAGES, temperature=0, user="ann", feature="qa")
    assert len(llm.calls) == 1, "a hit must not call the model"
    assert second == first

    report = client.report()
    assert report["requests"] == 1 and report["totalCostUsd"] == pytest.approx(COST)  # spend once
    assert report["cachedRequests"] == 1 and report["savings"]["cacheUsd"] == pytest.approx(COST)  # saved once
    assert report["byUser"]["ann"]["requests"] == 1 and report["byFeature"]["qa"]["cachedRequests"] == 1
    assert report["cache"]["hits"] == 1 and report["cache"]["misses"] == 1 and report["cache"]["sets"] == 1
    assert report["byModel"]["gpt-4o"]["inputTokens"] == 120  # the requested model, not the dated one


@pytest.mark.parametrize(
    "a,b",
    [
        ({"temperature": 0}, {"temperature": 0.7}),
        ({"temperature": 0}, {}),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, {}),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
            {"tools": [{"type": "function", "function": {"name": "g", "parameters": {}}}]},
        ),
        ({"tool_choice": "auto"}, {"tool_choice": "none"}),
        ({"response_format": {"type": "json_object"}}, {}),
        ({"seed": 1}, {"seed": 2}),
        ({"extra_body": {"top_k": 5}}, {"extra_body": {"top_k": 6}}),
        ({"max_tokens": 10}, {"max_tokens": 11}),
    ],
)
def test_requests_differing_in_any_parameter_do_not_share_an_entry(client: costd.Client, a: Dict[str, Any], b: Dict[str, Any]) -> None:
    llm = FakeOpenAI()
    cached_completion(client, llm, model="gpt-4o", messages=MESSAGES, **a)
    cached_completion(client, llm, model="gpt-4o", messages=MESSAGES, **b)
    assert len(llm.calls) == 2
    # Each is cached under its own whole request.
    cached_completion(client, llm, model="gpt-4o", messages=MESSAGES, **a)
    cached_completion(client, llm, model="gpt-4o", messages=MESSAGES, **b)
    assert len(llm.calls) == 2


def test_model_and_messages_are_part_of_the_key(client: costd.Client) -> None:
    llm = FakeOpenAI()
    cached_completion(client, llm, model="gpt-4o", messages=MESSAGES)
    cached_completion(client, llm, model="gpt-4o-mini", messages=MESSAGES)
    cached_completion(client, llm, model="gpt-4o", messages=MESSAGES[1:])
    assert len(llm.calls) == 3


def test_same_request_in_another_key_order_hits(client: costd.Client) -> None:
    llm = FakeOpenAI()
    cached_completion(client, llm, model="gpt-4o", messages=MESSAGES, temperature=1.0, response_format={"type": "json_object", "x": 1})
    reordered = [{"content": m["content"], "role": m["role"]} for m in MESSAGES]
    cached_completion(client, llm, model="gpt-4o", messages=reordered, response_format={"x": 1, "type": "json_object"}, temperature=1)
    assert len(llm.calls) == 1


def test_namespaces_do_not_share(client: costd.Client) -> None:
    llm = FakeOpenAI()
    cached_completion(client, llm, model="gpt-4o", messages=MESSAGES, namespace="tenant-a")
    cached_completion(client, llm, model="gpt-4o", messages=MESSAGES, namespace="tenant-b")
    cached_completion(client, llm, model="gpt-4o", messages=MESSAGES, namespace="tenant-a")
    assert len(llm.calls) == 2


def test_routing_picks_model_and_max_tokens(client: costd.Client) -> None:
    llm = FakeOpenAI()
    cached_completion(client, llm, messages=MESSAGES, task="classification")
    assert llm.calls[0]["model"] == "gpt-4o-mini"
    assert llm.calls[0]["max_tokens"] == client.route(task="classification")["maxTokens"]
    cached_completion(client, llm, messages=MESSAGES, task="classification", max_tokens=5)
    assert llm.calls[1]["max_tokens"] == 5  # given: kept
    cached_completion(client, llm, messages=MESSAGES, task="summarization")
    assert llm.calls[2]["model"] == "gpt-4o"
    # Routed requests are cached too.
    cached_completion(client, llm, messages=MESSAGES, task="classification")
    assert len(llm.calls) == 3
    assert client.report()["byModel"]["gpt-4o-mini"]["requests"] == 2


def test_provider_cached_tokens_are_recorded(client: costd.Client) -> None:
    llm = FakeOpenAI(cached_tokens=100)
    cached_completion(client, llm, model="gpt-4o", messages=MESSAGES)
    report = client.report()
    assert report["cachedInputTokens"] == 100
    assert report["totalCostUsd"] == pytest.approx((20 * 2.5 + 100 * 1.25 + 30 * 10) / 1e6)


def test_sdk_objects_are_stored_as_json(client: costd.Client) -> None:
    llm = FakeOpenAI()

    def sdk_call(**request: Any) -> DumpedResponse:
        return DumpedResponse(llm(**request))

    miss = cached_completion(client, sdk_call, model="gpt-4o", messages=MESSAGES)
    assert isinstance(miss, DumpedResponse)  # the call's own object on a miss
    hit = cached_completion(client, sdk_call, model="gpt-4o", messages=MESSAGES)
    assert hit == miss.model_dump()  # a dict on a hit...
    decoded = cached_completion(client, sdk_call, model="gpt-4o", messages=MESSAGES, decode=DumpedResponse)
    assert isinstance(decoded, DumpedResponse)  # ...or what decode makes of it
    assert len(llm.calls) == 1
    report = client.report()
    assert report["requests"] == 1 and report["cachedRequests"] == 2

    def to_dict_call(**request: Any) -> ToDictResponse:
        return ToDictResponse(llm(**request))

    stored = cached_completion(client, to_dict_call, model="gpt-4o", messages=MESSAGES, seed=7).to_dict()
    assert cached_completion(client, to_dict_call, model="gpt-4o", messages=MESSAGES, seed=7) == stored
    assert len(llm.calls) == 2


def test_response_without_usage_is_cached_but_not_recorded(client: costd.Client, caplog: pytest.LogCaptureFixture) -> None:
    llm = FakeOpenAI(usage=False)
    with caplog.at_level(logging.WARNING, logger="costd"):
        cached_completion(client, llm, model="gpt-4o", messages=MESSAGES)
    assert "no usage" in caplog.text
    cached_completion(client, llm, model="gpt-4o", messages=MESSAGES)
    assert len(llm.calls) == 1
    assert client.report()["requests"] == 0


class FakeStreamingOpenAI(FakeOpenAI):
    """Streams as the OpenAI API does: chunks, and a last usage-only chunk when asked for
    (``stream_options.include_usage``)."""

    def __call__(self, **request: Any) -> Any:
        self.calls.append(request)
        body = self.response(**request)
        if not request.get("stream"):
            return body
        return self.chunks(body, bool((request.get("stream_options") or {}).get("include_usage")))

    @staticmethod
    def chunks(body: Dict[str, Any], include_usage: bool) -> Iterator[Dict[str, Any]]:
        head = {"id": body["id"], "object": "chat.completion.chunk", "created": 1, "model": body["model"]}
        text = body["choices"][0]["message"]["content"]
        yield {**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
        for at in range(0, len(text), 4):
            yield {**head, "choices": [{"index": 0, "delta": {"content": text[at : at + 4]}, "finish_reason": None}]}
        yield {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        if include_usage:
            yield {**head, "choices": [], "usage": body["usage"]}


def text_of(chunks: List[Dict[str, Any]]) -> str:
    return "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks if chunk["choices"])


def test_a_stream_is_passed_on_recorded_exactly_stored_and_replayed(client: costd.Client) -> None:
    llm = FakeStreamingOpenAI()
    chunks = list(cached_completion(client, llm, model="gpt-4o", messages=MESSAGES, temperature=0, stream=True, user="ann"))
    assert llm.calls[0]["stream_options"] == {"include_usage": True}, "the provider is asked for the usage"
    assert all(chunk["choices"] for chunk in chunks), "the usage chunk is hidden from a caller who did not ask for it"
    assert text_of(chunks) == "Paris (call 1)"
    report = client.report()
    assert report["requests"] == 1 and report["totalCostUsd"] == pytest.approx(COST), "the exact usage is recorded"

    # A hit: no call; the same text as chunks, with the usage chunk for a caller who asks for it.
    again = list(cached_completion(
        client, llm, model="gpt-4o", messages=MESSAGES, temperature=0, stream=True, stream_options={"include_usage": True}))
    assert len(llm.calls) == 1
    assert text_of(again) == "Paris (call 1)"
    assert again[-2]["choices"][0]["finish_reason"] == "stop"
    assert again[-1]["choices"] == [] and again[-1]["usage"]["completion_tokens"] == 30
    # A plain call of the same request hits the completion the stream added up to.
    plain = cached_completion(client, llm, model="gpt-4o", messages=MESSAGES, temperature=0)
    assert len(llm.calls) == 1
    assert plain["choices"][0]["message"] == {"role": "assistant", "content": "Paris (call 1)"}
    assert plain["choices"][0]["finish_reason"] == "stop" and plain["usage"]["prompt_tokens"] == 120
    report = client.report()
    assert report["requests"] == 1 and report["cachedRequests"] == 2
    assert report["savings"]["cacheUsd"] == pytest.approx(2 * COST)


def test_a_stream_abandoned_early_records_nothing_and_frees_its_lease(client: costd.Client, caplog: pytest.LogCaptureFixture) -> None:
    llm = FakeStreamingOpenAI()
    stream = cached_completion(client, llm, model="gpt-4o", messages=MESSAGES, seed=7, stream=True)
    next(stream)
    with caplog.at_level(logging.WARNING, logger="costd"):
        stream.close()
    assert "ended before its usage came" in caplog.text
    assert client.report()["requests"] == 0
    key = {"model": "gpt-4o", "messages": MESSAGES, "seed": 7}
    free = client.call("cacheGet", {"model": "gpt-4o", "prompt": key, "lease": True, "waitMs": 1})
    assert free.get("lease"), "the lease was given back: the next caller makes the call at once"


def test_async_stream(daemon) -> None:
    llm = FakeStreamingOpenAI()

    async def acreate(**request: Any) -> Any:
        chunks = llm(**request)

        async def stream() -> Any:
            for chunk in chunks:
                await asyncio.sleep(0)
                yield chunk

        return stream()

    async def main() -> None:
        async with costd.AsyncClient(daemon.socket) as a:
            live = await costd.acached_completion(
                a, acreate, model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True})
            chunks = [chunk async for chunk in live]
            assert chunks[-1]["usage"]["completion_tokens"] == 30, "asked for: the usage chunk is passed on"
            hit = await costd.acached_completion(a, acreate, model="gpt-4o", messages=MESSAGES, stream=True)
            replayed = [chunk async for chunk in hit]
            assert len(llm.calls) == 1 and all(chunk["choices"] for chunk in replayed)
            assert text_of(replayed) == text_of(chunks) == "Paris (call 1)"
            report = await a.report()
            assert report["requests"] == 1 and report["totalCostUsd"] == pytest.approx(COST)
            assert report["cachedRequests"] == 1

    asyncio.run(main())


def test_concurrent_identical_calls_are_single_flight(daemon) -> None:
    """Two processes' worth of clients, one request: the second waits for the first's answer."""
    started, release = threading.Event(), threading.Event()
    llm = FakeOpenAI()

    def slow(**request: Any) -> Dict[str, Any]:
        started.set()
        assert release.wait(20)
        return llm(**request)

    answers: List[Any] = []

    def caller() -> None:
        with costd.Client(daemon.socket) as own:
            answers.append(cached_completion(own, slow, model="gpt-4o", messages=MESSAGES, seed=1))

    first = threading.Thread(target=caller)
    first.start()
    assert started.wait(20)
    second = threading.Thread(target=caller)
    second.start()
    with costd.Client(daemon.socket) as watcher:
        deadline = time.monotonic() + 20
        while watcher.report()["cache"]["waiting"] != 1:
            assert time.monotonic() < deadline, "the second caller never waited for the first's lease"
            time.sleep(0.01)
        release.set()
        first.join(20)
        second.join(20)
        assert len(llm.calls) == 1, "one call for both"
        assert answers[0] == answers[1]
        report = watcher.report()
        assert report["requests"] == 1 and report["cachedRequests"] == 1 and report["cache"]["savedCalls"] == 1


def test_the_routes_reservation_is_settled_or_given_back(make_daemon) -> None:
    daemon = make_daemon(config="[budget]\ndaily = 10\nhard_daily = true\n")
    with costd.Client(daemon.socket) as client:
        held: List[float] = []
        llm = FakeOpenAI()

        def call(**request: Any) -> Dict[str, Any]:
            held.append(client.report().get("reservedUsd", 0))
            return llm(**request)

        cached_completion(client, call, messages=MESSAGES, task="qa")
        assert held[0] > 0, "route reserved the call's estimate"
        assert client.report().get("reservedUsd", 0) == 0, "the record settled it"
        cached_completion(client, call, messages=MESSAGES, task="qa")  # a hit
        assert len(llm.calls) == 1 and client.report().get("reservedUsd", 0) == 0, "a hit gives it back"

        def failing(**request: Any) -> Dict[str, Any]:
            raise RuntimeError("provider down")

        with pytest.raises(RuntimeError):
            cached_completion(client, failing, messages=MESSAGES, task="qa", seed=3)
        assert client.report().get("reservedUsd", 0) == 0, "a failed call gives it back"


def test_daemon_down_fails_before_the_paid_call(daemon) -> None:
    llm = FakeOpenAI()
    c = costd.Client(daemon.socket)
    daemon.stop()
    with pytest.raises(costd.DaemonUnavailable):
        cached_completion(c, llm, model="gpt-4o", messages=MESSAGES)
    assert llm.calls == []


def test_bookkeeping_failure_after_the_call_keeps_the_response(client: costd.Client, caplog: pytest.LogCaptureFixture) -> None:
    llm = FakeOpenAI()
    with caplog.at_level(logging.ERROR, logger="costd"):
        reply = cached_completion(client, llm, model="model-without-price", messages=MESSAGES)
    assert reply["choices"][0]["message"]["content"].startswith("Paris")
    assert "bookkeeping failed" in caplog.text


def test_decorator_form(client: costd.Client) -> None:
    llm = FakeOpenAI()

    @cached(client, task="classification", feature="triage")
    def complete(**request: Any) -> Dict[str, Any]:
        return llm(**request)

    assert complete.__name__ == "complete"
    complete(messages=MESSAGES, temperature=0)
    complete(messages=MESSAGES, temperature=0, user="bob")  # costd options per call
    complete(messages=MESSAGES, temperature=0.5)
    assert len(llm.calls) == 2 and llm.calls[0]["model"] == "gpt-4o-mini"
    assert "user" not in llm.calls[0]
    report = client.report()
    assert report["byFeature"]["triage"]["requests"] == 2 and report["byUser"]["bob"]["cachedRequests"] == 1


def test_async_wrapper_and_decorator(daemon) -> None:
    llm = FakeOpenAI()

    async def acreate(**request: Any) -> Dict[str, Any]:
        await asyncio.sleep(0)
        return llm(**request)

    async def main() -> None:
        async with costd.AsyncClient(daemon.socket) as a:
            first = await costd.acached_completion(a, acreate, model="gpt-4o", messages=MESSAGES, temperature=0)
            again = await costd.acached_completion(a, acreate, model="gpt-4o", messages=MESSAGES, temperature=0)
            assert first == again and len(llm.calls) == 1

            @cached(a, task="extraction")
            async def complete(**request: Any) -> Dict[str, Any]:
                return await acreate(**request)

            # Ten concurrent calls of two requests: all answered, each request billed once
            # (single-flight), the rest hits.
            replies = await asyncio.gather(*(complete(messages=MESSAGES, seed=i % 2) for i in range(10)))
            assert all(r["choices"] for r in replies)
            await complete(messages=MESSAGES, seed=0)
            report = await a.report()
            assert report["requests"] == len(llm.calls)
            assert report["cachedRequests"] == 13 - len(llm.calls)  # 13 wrapped calls in all
            assert a.connections_opened == 1

    asyncio.run(main())


def test_usage_from_response_shapes() -> None:
    assert usage_from_response({"usage": {"prompt_tokens": 10, "completion_tokens": 2}}) == {"inputTokens": 10, "outputTokens": 2}
    assert usage_from_response(
        {"usage": {"prompt_tokens": 10, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 4}}}
    ) == {"inputTokens": 10, "outputTokens": 2, "cachedInputTokens": 4}
    # OpenAI Responses API.
    assert usage_from_response(
        {"usage": {"input_tokens": 10, "output_tokens": 3, "input_tokens_details": {"cached_tokens": 6}}}
    ) == {"inputTokens": 10, "outputTokens": 3, "cachedInputTokens": 6}
    # Anthropic: input_tokens excludes the cache reads and writes.
    assert usage_from_response(
        {"usage": {"input_tokens": 10, "output_tokens": 3, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 50}}
    ) == {"inputTokens": 160, "outputTokens": 3, "cachedInputTokens": 100, "cacheWriteInputTokens": 50}
    assert usage_from_response({"choices": []}) is None
    assert usage_from_response(None) is None
