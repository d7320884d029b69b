"""costd in front of the OpenAI SDK.

    pip install openai ./clients/python
    costd --socket /tmp/costd.sock --state-dir /tmp/costd-state --daily-budget 20 &
    COSTD_SOCKET=/tmp/costd.sock OPENAI_API_KEY=sk-... python examples/openai_example.py

The first run calls OpenAI and records the spend; running it again answers from the cache
and records the saving instead. (Not imported by the tests: they use a fake model.)
"""

from __future__ import annotations

import asyncio

from openai import AsyncOpenAI, OpenAI
from openai.types.chat import ChatCompletion

import costd

openai_client = OpenAI()
costd_client = costd.Client()  # $COSTD_SOCKET, $XDG_RUNTIME_DIR/costd.sock or /run/costd/costd.sock


def classify(text: str) -> str:
    # No model given: costd routes ("classification" -> gpt-4o-mini, with its max_tokens).
    reply = costd.cached_completion(
        costd_client,
        openai_client.chat.completions.create,
        messages=[
            {"role": "system", "content": "Answer 'spam' or 'ham'."},
            {"role": "user", "content": text},
        ],
        task="classification",
        temperature=0,
        user="ann",  # costd attribution (not sent to OpenAI)
        feature="inbox-triage",
        decode=ChatCompletion.model_validate,  # cache hits come back as SDK objects too
    )
    return reply.choices[0].message.content or ""


# The decorator form: the function runs only on a cache miss.
@costd.cached(costd_client, task="summarization", feature="digest", decode=ChatCompletion.model_validate)
def summarise(**request):  # type: ignore[no-untyped-def]
    return openai_client.chat.completions.create(**request)


async def main_async() -> None:
    aopenai = AsyncOpenAI()
    async with costd.AsyncClient() as acostd:  # one pipelined connection for all tasks
        replies = await asyncio.gather(
            *(
                costd.acached_completion(
                    acostd,
                    aopenai.chat.completions.create,
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": f"Translate to French: {word}"}],
                    temperature=0,
                    feature="translate",
                    decode=ChatCompletion.model_validate,
                )
                for word in ("cat", "dog", "bird")
            )
        )
        for reply in replies:
            print(reply.choices[0].message.content)


if __name__ == "__main__":
    print(classify("WIN A FREE CRUISE!!! Click here"))
    digest = summarise(messages=[{"role": "user", "content": "Summarise: costd caches LLM calls."}], temperature=0)
    print(digest.choices[0].message.content)
    asyncio.run(main_async())
    report = costd_client.report()
    print(f"today: ${report['totalCostUsd']:.6f} spent, ${report['savings']['cacheUsd']:.6f} saved by the cache")
