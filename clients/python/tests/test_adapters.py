"""The framework adapters against the real packages from PyPI (langchain-core with its fake chat
model, litellm with mock_response) and a real daemon. The LLM is the one thing faked; nothing
touches the network. Run in a virtualenv that installed ``clients/python[langchain,litellm]``
(scripts/test makes one); skipped where those packages are missing."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, Dict, Iterator, List

import pytest

import costd

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm must not fetch its price map

langchain_core = pytest.importorskip("langchain_core")
litellm = pytest.importorskip("litellm")

from langchain_core.globals import set_llm_cache  # noqa: E402
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel  # noqa: E402
from langchain_core.messages import AIMessage, AIMessageChunk  # noqa: E402
from langchain_core.outputs import ChatGenerationChunk  # noqa: E402

from costd.langchain import CostdCache, CostdCallbackHandler  # noqa: E402
from costd.litellm import CostdLogger  # noqa: E402

# gpt-4o: $2.50 / M input, $10 / M output.
def cost(input_tokens: int, output_tokens: int) -> float:
    return (input_tokens * 2.5 + output_tokens * 10) / 1e6


USAGE = {"input_tokens": 120, "output_tokens": 30, "total_tokens": 150}


class FakeChat(GenericFakeChatModel):
    """LangChain's fake chat model, answering as a real provider does: the usage and the model
    name on the message, and on a stream's last chunk. Counts the calls that reach it."""

    calls: List[int] = []

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
        self.calls.append(1)
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)

    def _stream(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        yield from super()._stream(messages, stop=stop, run_manager=run_manager, **kwargs)
        yield ChatGenerationChunk(
            message=AIMessageChunk(content="", usage_metadata=USAGE, response_metadata={"model_name": "gpt-4o"}))


def answers(count: int) -> Iterator[AIMessage]:
    for i in range(count):
        yield AIMessage(content=f"Paris, answer {i}", usage_metadata=USAGE, response_metadata={"model_name": "gpt-4o"})


@pytest.fixture
def langchain_cache():
    yield
    set_llm_cache(None)


def test_langchain_cache_answers_a_repeat_without_the_model(daemon, langchain_cache) -> None:
    with costd.Client(daemon.socket) as client:
        set_llm_cache(CostdCache(client))
        model = FakeChat(messages=answers(5), calls=[])
        first = model.invoke("Capital of France?")
        second = model.invoke("Capital of France?")
        assert len(model.calls) == 1, "the repeat did not reach the model"
        assert second.content == first.content == "Paris, answer 0"
        assert model.invoke("Capital of Spain?").content == "Paris, answer 1"
        assert len(model.calls) == 2
        report = client.report()
        assert report["cache"]["hits"] == 1 and report["cache"]["sets"] == 2

        async def again() -> Any:
            return await model.ainvoke("Capital of France?")

        assert asyncio.run(again()).content == "Paris, answer 0", "async lookups hit the same entry"
        assert len(model.calls) == 2
        # Another process (a new cache, a new connection) shares the entry.
        set_llm_cache(CostdCache(socket=daemon.socket))
        assert FakeChat(messages=answers(1), calls=[]).invoke("Capital of Spain?").content == "Paris, answer 1"


def test_langchain_callback_records_exact_spend_plain_async_and_streamed(daemon) -> None:
    with costd.Client(daemon.socket) as client:
        handler = CostdCallbackHandler(user="ann", feature="search", client=client)
        model = FakeChat(messages=answers(5), calls=[], callbacks=[handler])
        model.invoke("one")
        asyncio.run(model.ainvoke("two"))
        streamed = "".join(str(chunk.content) for chunk in model.stream("three", config={"metadata": {"user": "bob"}}))
        assert streamed == "Paris, answer 2"

        async def astream() -> str:
            return "".join([str(chunk.content) async for chunk in model.astream("four")])

        assert asyncio.run(astream()) == "Paris, answer 3"
        report = client.report()
        assert report["requests"] == 4
        assert report["totalCostUsd"] == pytest.approx(4 * cost(120, 30))
        assert report["byUser"]["ann"]["requests"] == 3 and report["byUser"]["bob"]["requests"] == 1
        assert report["byFeature"]["search"]["requests"] == 4
        assert report["byModel"]["gpt-4o"]["inputTokens"] == 480


def test_langchain_cache_hits_are_recorded_as_savings_not_spend(daemon, langchain_cache) -> None:
    with costd.Client(daemon.socket) as client:
        set_llm_cache(CostdCache(client))
        model = FakeChat(messages=answers(2), calls=[], callbacks=[CostdCallbackHandler(client=client)])
        model.invoke("same")
        model.invoke("same")
        report = client.report()
        assert len(model.calls) == 1
        assert report["requests"] == 1 and report["totalCostUsd"] == pytest.approx(cost(120, 30))
        assert report["cachedRequests"] == 1 and report["savings"]["cacheUsd"] == pytest.approx(cost(120, 30))


def test_litellm_logger_records_exact_spend_plain_async_and_streamed(daemon) -> None:
    messages = [{"role": "user", "content": "Capital of France?"}]

    def usage(response: Any) -> tuple:
        return (response.usage.prompt_tokens, response.usage.completion_tokens)

    with costd.Client(daemon.socket) as client:
        litellm.callbacks = [CostdLogger(feature="triage", client=client, socket=daemon.socket)]
        try:
            plain = litellm.completion(model="gpt-4o", messages=messages, mock_response="Paris", metadata={"user": "ann"})
            chunks = list(litellm.completion(model="openai/gpt-4o", messages=messages, mock_response="Paris is the capital", stream=True))

            async def both() -> Any:
                first = await litellm.acompletion(model="gpt-4o", messages=messages, mock_response="Paris")
                stream = await litellm.acompletion(model="gpt-4o", messages=messages, mock_response="Paris again", stream=True)
                chunks = [chunk async for chunk in stream]
                # LiteLLM logs an async call from a task on the caller's loop: keep the loop
                # running until the records are in.
                async with costd.AsyncClient(daemon.socket) as watcher:
                    deadline = time.monotonic() + 20
                    while (await watcher.report())["requests"] < 4 and time.monotonic() < deadline:
                        await asyncio.sleep(0.01)
                return first, chunks

            first, achunks = asyncio.run(both())
            # A stream's usage, as LiteLLM assembles it for its loggers.
            expected = [usage(plain), usage(first)] + [
                usage(litellm.stream_chunk_builder(c, messages=messages)) for c in (chunks, achunks)
            ]

            report = client.report()
            assert report["requests"] == 4
            assert report["totalCostUsd"] == pytest.approx(sum(cost(i, o) for i, o in expected))
            assert report["byFeature"]["triage"]["requests"] == 4
            assert report["byUser"]["ann"]["requests"] == 1
            assert report["byModel"]["gpt-4o"]["requests"] == 4, "openai/gpt-4o is gpt-4o"
        finally:
            litellm.callbacks = []


def test_litellm_logger_settles_the_routes_reservation(make_daemon) -> None:
    daemon = make_daemon(config="[budget]\ndaily = 10\nhard_daily = true\n")
    with costd.Client(daemon.socket) as client:
        route = client.route("classification", prompt="Spam? WIN A CRUISE")
        assert route["reservation"] and client.report()["reservedUsd"] > 0
        litellm.callbacks = [CostdLogger(client=client)]
        try:
            litellm.completion(
                model=route["model"], messages=[{"role": "user", "content": "Spam? WIN A CRUISE"}], mock_response="yes",
                metadata={"reservation": route["reservation"]})
            deadline = time.monotonic() + 20
            while client.report()["requests"] < 1:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            assert client.report().get("reservedUsd", 0) == 0, "the record settled the route's reservation"
        finally:
            litellm.callbacks = []


@pytest.mark.skipif(not os.environ.get("COSTD_EXPECT_WHEEL"), reason="only where scripts/test installed the built wheel")
def test_the_built_wheel_is_what_is_tested() -> None:
    assert "site-packages" in (costd.__file__ or ""), costd.__file__
