"""Exact token counts (against the real tiktoken) and the replay that proves the cost cut
(against an independent recomputation from the trace)."""
from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data"
sys.path.insert(0, str(REPO / "tests" / "tokenizer"))
os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(DATA / "tokenizers" / "tiktoken-cache"))

tiktoken = pytest.importorskip("tiktoken")


@pytest.fixture
def daemon(make_daemon):
    if not (DATA / "tokenizers" / "o200k_base.tiktoken").exists():
        pytest.fail("tokenizer data missing: run scripts/fetch-vocab data/tokenizers", pytrace=False)
    return make_daemon("--data-dir", str(DATA))


def batch_call(path: str, requests: list[dict]) -> list[dict]:
    """Sends requests as JSON-RPC batches of 500 and returns the results in order."""
    results: list[dict] = []
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(path)
        for start in range(0, len(requests), 500):
            chunk = [{"jsonrpc": "2.0", "id": start + i, "method": r["method"], "params": r["params"]} for i, r in enumerate(requests[start:start + 500])]
            body = json.dumps(chunk).encode()
            sock.sendall(struct.pack(">I", len(body)) + body)
            size = struct.unpack(">I", sock.recv(4, socket.MSG_WAITALL))[0]
            answers = json.loads(sock.recv(size, socket.MSG_WAITALL))
            answers.sort(key=lambda answer: answer["id"])
            for answer in answers:
                assert "result" in answer, answer
                results.append(answer["result"])
    return results


@pytest.mark.parametrize("encoding", ["o200k_base", "cl100k_base"])
def test_token_counts_equal_tiktoken(daemon, encoding: str) -> None:
    from crosscheck import generate_cases  # the case generator that validated the tokenizer

    cases = generate_cases(seed=20261129)
    assert len(cases) >= 2000
    reference = tiktoken.get_encoding(encoding)
    results = batch_call(daemon.socket, [{"method": "tokens", "params": {"text": text, "encoding": encoding}} for text in cases])
    mismatches = [(text, result["tokens"], len(reference.encode_ordinary(text))) for text, result in zip(cases, results)
                  if result["tokens"] != len(reference.encode_ordinary(text))]
    assert not mismatches, f"{len(mismatches)} of {len(cases)} differ, e.g. {mismatches[:3]!r}"
    assert all(result["encoding"] == encoding for result in results)


def cookbook_chat_tokens(messages: list[dict], encoding) -> int:
    """OpenAI cookbook's num_tokens_from_messages for gpt-4o / gpt-4."""
    total = 0
    for message in messages:
        total += 3
        for key, value in message.items():
            total += len(encoding.encode(value))
            if key == "name":
                total += 1
    return total + 3


def test_chat_messages_count_like_the_cookbook(daemon) -> None:
    messages = [
        {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
        {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
        {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
        {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client deliverable."},
    ]
    for model, encoding in [("gpt-4o", "o200k_base"), ("gpt-4", "cl100k_base")]:
        result = batch_call(daemon.socket, [{"method": "tokens", "params": {"messages": messages, "model": model}}])[0]
        assert result["encoding"] == encoding
        assert result["tokens"] == cookbook_chat_tokens(messages, tiktoken.get_encoding(encoding))


# --- replay --------------------------------------------------------------------------

PRICES = {"gpt-4o": (Decimal("2.50"), Decimal("10.00")), "gpt-4o-mini": (Decimal("0.15"), Decimal("0.60"))}
SIMPLE = {"classification", "extraction", "translation"}
MAX_TOKENS = {"classification": 16, "extraction": 512, "translation": 1024, "summarization": 512, "chat": 1024}


def cost(model: str, tokens_in: int, tokens_out: int) -> Decimal:
    """One call's cost, rounded once to a nano-dollar, half away from zero (as costd does)."""
    price_in, price_out = PRICES[model]
    exact = (tokens_in * price_in + tokens_out * price_out) / Decimal(1_000_000)
    return exact.quantize(Decimal("0.000000001"), rounding=ROUND_HALF_UP)


def recompute(trace: Path) -> dict:
    """The replay's figures from the trace alone: default routing rules, list prices, a cold
    cache (a prompt's first request on a model misses, later ones hit), caps at maxTokens."""
    encoding = tiktoken.get_encoding("o200k_base")
    seen: set[tuple[str, str]] = set()
    totals = Counter()
    figures = {key: Decimal(0) for key in ("baseline", "costd", "routing", "caps", "caching")}
    for line in trace.read_text().splitlines():
        request = json.loads(line)
        model = "gpt-4o-mini" if request["task"] in SIMPLE else "gpt-4o"
        tokens_in = request.get("inputTokens") or len(encoding.encode_ordinary(request["prompt"]))
        assert tokens_in <= 8000, "the sample trace stays below the prompt-size rule"
        out = request["outputTokens"]
        capped = min(out, MAX_TOKENS.get(request["task"], 1024))
        baseline = cost("gpt-4o", tokens_in, out)
        routed = cost(model, tokens_in, out)
        capped_cost = cost(model, tokens_in, capped)
        figures["baseline"] += baseline
        figures["routing"] += baseline - routed
        figures["caps"] += routed - capped_cost
        totals["routedDown"] += model != "gpt-4o"
        totals["capped"] += capped < out
        if (model, request["prompt"]) in seen:
            figures["caching"] += capped_cost
            totals["cacheHits"] += 1
        else:
            seen.add((model, request["prompt"]))
            figures["costd"] += capped_cost
        totals["requests"] += 1
    return {**figures, **totals}


def test_replay_halves_the_cost_and_its_numbers_add_up(daemon, costctl_bin) -> None:
    trace = REPO / "examples" / "sample-trace.jsonl"
    run = subprocess.run([costctl_bin, "replay", str(trace), "--socket", daemon.socket, "--json"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    printed = json.loads(run.stdout)
    expected = recompute(trace)
    assert printed["requests"] == expected["requests"] == 300
    assert Decimal(str(printed["baselineUsd"])) == expected["baseline"]
    assert Decimal(str(printed["costdUsd"])) == expected["costd"]
    assert Decimal(str(printed["savedByRoutingUsd"])) == expected["routing"]
    assert Decimal(str(printed["savedByCapsUsd"])) == expected["caps"]
    assert Decimal(str(printed["savedByCachingUsd"])) == expected["caching"]
    assert Decimal(str(printed["savedUsd"])) == expected["baseline"] - expected["costd"]
    assert printed["cacheHits"] == expected["cacheHits"]
    assert printed["routedDown"] == expected["routedDown"]
    assert printed["capped"] == expected["capped"]
    # The point of it all: costd's cost is at most half the baseline.
    assert expected["costd"] * 2 <= expected["baseline"]

    # The human output shows the same numbers.
    human = subprocess.run([costctl_bin, "replay", str(trace), "--socket", daemon.socket], capture_output=True, text=True, timeout=120)
    assert human.returncode == 0
    for key in ("baseline", "costd", "routing", "caching", "caps"):
        assert f"${expected[key].normalize():f}" in human.stdout, (key, human.stdout)


def test_tokens_compare(daemon, costctl_bin, tmp_path) -> None:
    before = tmp_path / "before.txt"
    after = tmp_path / "after.txt"
    before.write_text("You are a helpful assistant. Please read the following customer message very carefully and classify its sentiment as positive, negative or neutral.")
    after.write_text("Classify the sentiment (positive, negative, neutral):")
    encoding = tiktoken.get_encoding("o200k_base")
    tokens_before, tokens_after = len(encoding.encode(before.read_text())), len(encoding.encode(after.read_text()))
    run = subprocess.run([costctl_bin, "tokens", "--compare", str(before), str(after), "--model", "gpt-4o", "--calls-per-day", "10000",
                          "--socket", daemon.socket, "--json"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert (result["before"], result["after"]) == (tokens_before, tokens_after)
    assert result["savedTokens"] == tokens_before - tokens_after
    saved_per_day = Decimal(tokens_before - tokens_after) * 10000 * Decimal("2.50") / 1_000_000
    assert Decimal(str(result["savedUsdPerDay"])) == saved_per_day
    assert Decimal(str(result["savedUsdPerMonth"])) == saved_per_day * 30
