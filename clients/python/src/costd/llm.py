"""Wrap any LLM call with costd: route, cache the whole request, record the spend.

>>> from openai import OpenAI
>>> import costd
>>> openai_client, costd_client = OpenAI(), costd.Client()
>>> reply = costd.cached_completion(
...     costd_client, openai_client.chat.completions.create,
...     messages=[{"role": "user", "content": "Is this spam? ..."}],
...     task="classification", temperature=0, user="ann", feature="triage")
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import threading
from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

from .aio import AsyncClient
from .client import Client
from .errors import CostdError, DaemonUnavailable

__all__ = [
    "cached_completion",
    "acached_completion",
    "cached",
    "replay_chunks",
    "to_jsonable",
    "usage_from_response",
    "prompt_text",
]

logger = logging.getLogger("costd")

F = TypeVar("F", bound=Callable[..., Any])

_default_lock = threading.Lock()
_default_client: Optional[Client] = None


def default_client() -> Client:
    """A process-wide :class:`Client` on the default socket, made on first use."""
    global _default_client
    with _default_lock:
        if _default_client is None:
            _default_client = Client()
        return _default_client


# --------------------------------------------------------------------------------------------
# Pure helpers


def to_jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON values: dicts and lists as they are, pydantic models (the OpenAI
    and Anthropic SDK objects) through ``model_dump()``, others through ``to_dict()``,
    dataclasses through ``asdict``. Raises ``TypeError`` for anything else."""
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    if isinstance(obj, Mapping):
        out: Dict[str, Any] = {}
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError(f"costd: JSON object keys must be strings, not {type(key).__name__}")
            out[key] = to_jsonable(value)
        return out
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(value) for value in obj]
    model_dump = getattr(obj, "model_dump", None)
    if callable(model_dump):
        try:
            dumped = model_dump(mode="json")
        except TypeError:
            dumped = model_dump()
        return to_jsonable(dumped)
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        return to_jsonable(to_dict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    raise TypeError(
        f"costd: cannot turn {type(obj).__name__} into JSON (give dicts, or objects with model_dump() or to_dict())"
    )


def _field(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _int(value: Any) -> Optional[int]:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def usage_from_response(response: Any) -> Optional[Dict[str, int]]:
    """The token counts of a response, as ``record`` parameters, or ``None`` when it has no usage.

    Reads OpenAI chat completions (``usage.prompt_tokens``, ``usage.completion_tokens``,
    ``usage.prompt_tokens_details.cached_tokens``), the OpenAI Responses API
    (``input_tokens``, ``output_tokens``, ``input_tokens_details.cached_tokens``) and Anthropic
    (``input_tokens`` plus ``cache_read_input_tokens`` and ``cache_creation_input_tokens``,
    which costd counts as parts of ``inputTokens``). Works on dicts and SDK objects alike.
    """
    usage = _field(response, "usage")
    if usage is None:
        return None
    prompt = _int(_field(usage, "prompt_tokens"))
    completion = _int(_field(usage, "completion_tokens"))
    if prompt is not None or completion is not None:
        out = {"inputTokens": prompt or 0, "outputTokens": completion or 0}
        cached_tokens = _int(_field(_field(usage, "prompt_tokens_details"), "cached_tokens"))
        if cached_tokens:
            out["cachedInputTokens"] = cached_tokens
        return out
    given_in = _int(_field(usage, "input_tokens"))
    given_out = _int(_field(usage, "output_tokens"))
    if given_in is None and given_out is None:
        return None
    cache_read = _int(_field(usage, "cache_read_input_tokens"))
    cache_write = _int(_field(usage, "cache_creation_input_tokens"))
    if cache_read is not None or cache_write is not None:  # Anthropic: input_tokens excludes both
        out = {"inputTokens": (given_in or 0) + (cache_read or 0) + (cache_write or 0), "outputTokens": given_out or 0}
        if cache_read:
            out["cachedInputTokens"] = cache_read
        if cache_write:
            out["cacheWriteInputTokens"] = cache_write
        return out
    out = {"inputTokens": given_in or 0, "outputTokens": given_out or 0}
    cached_tokens = _int(_field(_field(usage, "input_tokens_details"), "cached_tokens"))
    if cached_tokens:
        out["cachedInputTokens"] = cached_tokens
    return out


def prompt_text(messages: Any) -> str:
    """The text of chat messages (for routing's size estimate)."""
    if isinstance(messages, str):
        return messages
    parts: List[str] = []
    for message in messages if isinstance(messages, Sequence) else ():
        content = _field(message, "content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, Sequence):
            for part in content:
                text = _field(part, "text")
                if isinstance(text, str):
                    parts.append(text)
    return "\n".join(parts)


class _Plan:
    """What one wrapped call sends: the request, the cache key and the bookkeeping (the route's
    reservation to settle, the single-flight lease to fill)."""

    def __init__(
        self,
        model: str,
        messages: Any,
        params: Dict[str, Any],
        user: Optional[str],
        feature: Optional[str],
        namespace: Optional[str],
        cache_ttl: Optional[float],
        reservation: Optional[str] = None,
        route_id: Optional[str] = None,
    ) -> None:
        self.model = model
        self.request: Dict[str, Any] = {"model": model, "messages": messages, **params}
        self.stream = bool(params.get("stream"))
        options = params.get("stream_options") or {}
        self.caller_wants_usage = bool(_field(options, "include_usage"))
        # The WHOLE request is the key (the daemon canonicalises it: key order, number form),
        # except how the answer is delivered: a streamed call and a plain one share an entry,
        # which always holds the assembled completion.
        self.key = to_jsonable({k: v for k, v in self.request.items() if k not in ("stream", "stream_options")})
        self.user = user
        self.feature = feature
        self.namespace = namespace
        self.cache_ttl = cache_ttl
        self.reservation = reservation
        self.route_id = route_id
        self.lease: Optional[str] = None

    def call_request(self) -> Dict[str, Any]:
        """The request as the provider gets it: a stream asks for its usage in a last chunk."""
        if not self.stream or self.caller_wants_usage:
            return self.request
        options = dict(to_jsonable(self.request.get("stream_options") or {}))
        options["include_usage"] = True
        return {**self.request, "stream_options": options}

    def record_params(self, usage: Mapping[str, int], cached: bool) -> Dict[str, Any]:
        params: Dict[str, Any] = {"model": self.model, **usage}
        if cached:
            params["cached"] = True
        else:
            if self.reservation is not None:
                params["reservation"] = self.reservation
            if self.route_id is not None:
                params["routeId"] = self.route_id  # claims the routing saving of costd's decision
        if self.user is not None:
            params["user"] = self.user
        if self.feature is not None:
            params["feature"] = self.feature
        return params

    def cache_set_params(self, value: Any, usage: Optional[Mapping[str, int]]) -> Dict[str, Any]:
        # The answer's usage goes with it: every later hit on the entry (in any process, on any
        # daemon) counts what it cost as saved, with nothing more to record.
        params: Dict[str, Any] = {"model": self.model, "prompt": self.key, "value": value, **(usage or {})}
        if self.cache_ttl is not None:
            params["ttl"] = self.cache_ttl
        if self.namespace is not None:
            params["namespace"] = self.namespace
        if self.lease is not None:
            params["lease"] = self.lease
        return params

    def cache_get_params(self) -> Dict[str, Any]:
        # Single-flight: the first caller of a key gets a lease and makes the call; the others
        # wait for its answer (on this daemon or any daemon sharing its Redis).
        params: Dict[str, Any] = {"model": self.model, "prompt": self.key, "lease": True}
        if self.namespace is not None:
            params["namespace"] = self.namespace
        # A hit's saving is counted for them.
        if self.user is not None:
            params["user"] = self.user
        if self.feature is not None:
            params["feature"] = self.feature
        return params

    def give_up_calls(self) -> List[Tuple[str, Dict[str, Any]]]:
        """What to send when the call fails or a hit makes it unneeded: the lease back (so a
        waiter takes over at once) and the reservation's money back."""
        calls: List[Tuple[str, Dict[str, Any]]] = []
        if self.lease is not None:
            release = {"model": self.model, "prompt": self.key, "lease": self.lease}
            if self.namespace is not None:
                release["namespace"] = self.namespace
            calls.append(("cacheRelease", release))
            self.lease = None
        if self.reservation is not None:
            calls.append(("releaseReservation", {"reservation": self.reservation}))
            self.reservation = None
        return calls


class _StreamAssembler:
    """Follows a streamed chat completion chunk by chunk: which chunks the caller sees (the
    usage chunk only if it asked for it), and the completion they add up to, for the cache."""

    def __init__(self, plan: _Plan) -> None:
        self.plan = plan
        self.head: Dict[str, Any] = {}
        self.choices: Dict[int, Dict[str, Any]] = {}
        self.usage: Optional[Dict[str, Any]] = None
        self.storable = True

    def feed(self, chunk: Any) -> bool:
        """Takes a chunk; whether the caller sees it."""
        try:
            data = to_jsonable(chunk)
        except TypeError as exc:
            if self.storable:
                logger.warning("costd: stream chunk not JSON, the answer is not cached: %s", exc)
            self.storable = False
            data = {}
        for name in ("id", "created", "model", "system_fingerprint", "service_tier"):
            if name in data and data[name] is not None and name not in self.head:
                self.head[name] = data[name]
        if data.get("usage"):
            self.usage = data["usage"]
        choices = data.get("choices") or []
        for choice in choices:
            self._add(choice)
        usage_only = not choices and bool(data.get("usage"))
        return self.plan.caller_wants_usage or not usage_only

    def _add(self, choice: Mapping[str, Any]) -> None:
        index = int(choice.get("index", 0))
        into = self.choices.setdefault(index, {"index": index, "message": {"role": "assistant", "content": None}, "finish_reason": None})
        delta = choice.get("delta") or {}
        message = into["message"]
        if delta.get("role"):
            message["role"] = delta["role"]
        if delta.get("content") is not None:
            message["content"] = (message["content"] or "") + delta["content"]
        if delta.get("refusal") is not None:
            message["refusal"] = (message.get("refusal") or "") + delta["refusal"]
        for call in delta.get("tool_calls") or []:
            calls = message.setdefault("tool_calls", [])
            at = int(call.get("index", len(calls)))
            while len(calls) <= at:
                calls.append({"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
            target = calls[at]
            if call.get("id"):
                target["id"] = call["id"]
            if call.get("type"):
                target["type"] = call["type"]
            function = call.get("function") or {}
            target["function"]["name"] += function.get("name") or ""
            target["function"]["arguments"] += function.get("arguments") or ""
        if choice.get("finish_reason"):
            into["finish_reason"] = choice["finish_reason"]
        if choice.get("logprobs") is not None:
            into["logprobs"] = choice["logprobs"]

    def bookkeeping(self, finished: bool) -> List[Tuple[str, Dict[str, Any]]]:
        """What to send once the stream is over: a finished one is stored and recorded; one
        abandoned early has no usage, so nothing is recorded (a warning says so) and the lease
        and reservation are given back."""
        if finished:
            return _after_call(self.plan, self.completion() if self.storable else _Unstorable(self.usage))
        logger.warning("costd: a %s stream ended before its usage came; its spend was not recorded", self.plan.model)
        return self.plan.give_up_calls()

    def completion(self) -> Dict[str, Any]:
        """The chat completion the chunks add up to (what a plain call would have answered)."""
        body: Dict[str, Any] = {**self.head, "object": "chat.completion"}
        body["choices"] = [self.choices[index] for index in sorted(self.choices)]
        if self.usage is not None:
            body["usage"] = self.usage
        return body


def replay_chunks(completion: Mapping[str, Any], include_usage: bool) -> List[Dict[str, Any]]:
    """A cached chat completion as the chunks a stream of it would have sent: per choice, one
    chunk with the whole message and one with its finish reason; then the usage chunk when the
    caller asked for it (``stream_options.include_usage``)."""
    head = {name: completion[name] for name in ("id", "created", "model", "system_fingerprint") if name in completion}
    head["object"] = "chat.completion.chunk"
    chunks: List[Dict[str, Any]] = []
    for choice in completion.get("choices") or []:
        message = dict(choice.get("message") or {})
        delta: Dict[str, Any] = {"role": message.get("role", "assistant"), "content": message.get("content")}
        if message.get("tool_calls"):
            delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(message["tool_calls"])]
        if message.get("refusal") is not None:
            delta["refusal"] = message["refusal"]
        index = choice.get("index", 0)
        chunks.append({**head, "choices": [{"index": index, "delta": delta, "finish_reason": None}]})
        chunks.append({**head, "choices": [{"index": index, "delta": {}, "finish_reason": choice.get("finish_reason") or "stop"}]})
    if include_usage and completion.get("usage") is not None:
        chunks.append({**head, "choices": [], "usage": completion["usage"]})
    return chunks


def _route_params(task: Optional[str], messages: Any, user: Optional[str], feature: Optional[str]) -> Dict[str, Any]:
    params: Dict[str, Any] = {"prompt": prompt_text(messages)}
    for name, value in (("task", task), ("user", user), ("feature", feature)):
        if value is not None:
            params[name] = value
    return params


def _apply_route(route: Mapping[str, Any], params: Dict[str, Any]) -> str:
    if "max_tokens" not in params and "max_completion_tokens" not in params and route.get("maxTokens"):
        params["max_tokens"] = route["maxTokens"]
    return str(route["model"])


def _jsonable_response(response: Any) -> Tuple[bool, Any]:
    try:
        return True, to_jsonable(response)
    except TypeError as exc:
        logger.warning("costd: response not cached: %s", exc)
        return False, None


def _after_call(plan: _Plan, response: Any) -> List[Tuple[str, Dict[str, Any]]]:
    """The bookkeeping of a paid call, in order: store the answer (filling the lease), record
    the spend (settling the reservation), then give back what is left."""
    calls: List[Tuple[str, Dict[str, Any]]] = []
    storable, value = _jsonable_response(response)
    usage = usage_from_response(response)
    if storable:
        calls.append(("cacheSet", plan.cache_set_params(value, usage)))
        plan.lease = None
    if usage is None:
        logger.warning("costd: the response of %s has no usage; its spend was not recorded", plan.model)
    else:
        calls.append(("record", plan.record_params(usage, cached=False)))
        plan.reservation = None
    return calls + plan.give_up_calls()


def _on_hit(plan: _Plan, found: Mapping[str, Any]) -> List[Tuple[str, Dict[str, Any]]]:
    """A hit's bookkeeping: its savings, and the route's reservation given back, since no call
    is made. The daemon counted the saving itself when the entry was stored with its usage
    (``savedUsd`` in its answer); an entry stored without it is recorded ``cached`` here."""
    calls: List[Tuple[str, Dict[str, Any]]] = []
    usage = usage_from_response(found.get("value"))
    if usage is not None and "savedUsd" not in found:
        calls.append(("record", plan.record_params(usage, cached=True)))
    return calls + plan.give_up_calls()


def _delivered(plan: _Plan, value: Any, decode: Optional[Callable[[Any], Any]]) -> Any:
    """A cached answer as the caller asked for it: the completion, or its chunks for a stream
    (each through ``decode`` when given)."""
    if plan.stream:
        chunks = replay_chunks(value, plan.caller_wants_usage)
        return [decode(chunk) for chunk in chunks] if decode is not None else chunks
    return decode(value) if decode is not None else value


def _send(costd: Client, calls: List[Tuple[str, Dict[str, Any]]], model: str) -> None:
    """Bookkeeping after a paid call or a hit: logged, never raised, so the answer is not lost."""
    for method, params in calls:
        try:
            costd.call(method, params)
        except (CostdError, DaemonUnavailable):
            logger.exception("costd: bookkeeping failed after a %s call (%s)", model, method)


async def _asend(costd: AsyncClient, calls: List[Tuple[str, Dict[str, Any]]], model: str) -> None:
    for method, params in calls:
        try:
            await costd.call(method, params)
        except (CostdError, DaemonUnavailable):
            logger.exception("costd: bookkeeping failed after a %s call (%s)", model, method)


def _stream_through(costd: Client, plan: _Plan, chunks: Any) -> Iterator[Any]:
    """Passes a live stream to the caller and, once it has ended, stores the completion it added
    up to and records its usage. A stream abandoned early has no usage: nothing is recorded (a
    warning says so) and the lease and reservation are given back."""
    assembler = _StreamAssembler(plan)
    finished = False
    try:
        for chunk in chunks:
            if assembler.feed(chunk):
                yield chunk
        finished = True
    finally:
        _send(costd, assembler.bookkeeping(finished), plan.model)


async def _astream_through(costd: AsyncClient, plan: _Plan, chunks: Any) -> AsyncIterator[Any]:
    """:func:`_stream_through` for asyncio (the stream may be async or plain)."""
    assembler = _StreamAssembler(plan)
    finished = False
    try:
        if hasattr(chunks, "__aiter__"):
            async for chunk in chunks:
                if assembler.feed(chunk):
                    yield chunk
        else:
            for chunk in chunks:
                if assembler.feed(chunk):
                    yield chunk
        finished = True
    finally:
        await _asend(costd, assembler.bookkeeping(finished), plan.model)


class _Unstorable:
    """A streamed answer that cannot be cached, with the usage it reported."""

    def __init__(self, usage: Any) -> None:
        self.usage = usage


async def _replayed(chunks: List[Any]) -> AsyncIterator[Any]:
    for chunk in chunks:
        yield chunk


# --------------------------------------------------------------------------------------------
# The wrappers


def cached_completion(
    client: Optional[Client],
    call: Callable[..., Any],
    *,
    model: Optional[str] = None,
    messages: Any,
    task: Optional[str] = None,
    user: Optional[str] = None,
    feature: Optional[str] = None,
    namespace: Optional[str] = None,
    cache_ttl: Optional[float] = None,
    decode: Optional[Callable[[Any], Any]] = None,
    **params: Any,
) -> Any:
    """Calls ``call(model=..., messages=..., **params)`` through costd.

    1. Without ``model``, asks ``route`` (with ``task``, the messages' text, ``user`` and
       ``feature``) and uses the routed model, and its ``maxTokens`` as ``max_tokens`` unless
       ``max_tokens``/``max_completion_tokens`` is given. With hard budgets the route holds a
       reservation: the call's ``record`` settles it, and a hit or a failed call gives it back.
    2. Looks the WHOLE request (model, messages and every other parameter: temperature, tools,
       tool_choice, response_format, seed, provider extras...; not ``stream``) up in the cache,
       in ``namespace``, single-flight: of concurrent identical calls (in any process, on any
       host sharing the daemon's Redis) one is made, the others wait for its answer.
    3. On a hit, records the cached usage with ``cached=True`` (cache savings, not spend) and
       returns the cached response: a dict, or ``decode(dict)`` when ``decode`` is given (e.g.
       ``openai.types.chat.ChatCompletion.model_validate``).
    4. On a miss, calls ``call``, stores its response (dicts, or objects with ``model_dump()`` or
       ``to_dict()``) for ``cache_ttl`` seconds (the daemon's default when ``None``), records
       the spend from its ``usage`` and returns the response as ``call`` gave it.

    With ``stream=True`` the provider is asked for its usage (``stream_options.include_usage``;
    that extra last chunk is hidden from a caller who did not ask for it), the chunks are passed
    on as they come, and once the stream ends the completion they add up to is stored and the
    exact usage recorded. A hit is replayed as chunks (dicts in the OpenAI shape, or
    ``decode(chunk)``, e.g. ``openai.types.chat.ChatCompletionChunk.model_validate``).

    ``user``, ``feature``, ``task``, ``namespace``, ``cache_ttl`` and ``decode`` are for costd
    and are not passed to ``call``; every other keyword is. Once ``call`` has returned (and
    been paid for), a failure to store or record is logged, never raised, so the response is
    not lost. Errors before the call (daemon unreachable) are raised.
    """
    costd = client if client is not None else default_client()
    route: Mapping[str, Any] = {}
    if model is None:
        route = costd.call("route", _route_params(task, messages, user, feature))
        model = _apply_route(route, params)
    plan = _Plan(model, messages, params, user, feature, namespace, cache_ttl, route.get("reservation"), route.get("routeId"))
    try:
        found = costd.call("cacheGet", plan.cache_get_params())
        if found.get("hit"):
            value = found.get("value")
            _send(costd, _on_hit(plan, found), model)
            delivered = _delivered(plan, value, decode)
            return iter(delivered) if plan.stream else delivered
        plan.lease = found.get("lease")
        response = call(**plan.call_request())
    except BaseException:
        _send(costd, plan.give_up_calls(), model)
        raise
    if plan.stream:
        return _stream_through(costd, plan, response)
    _send(costd, _after_call(plan, response), model)
    return response


async def acached_completion(
    client: AsyncClient,
    call: Callable[..., Union[Any, Awaitable[Any]]],
    *,
    model: Optional[str] = None,
    messages: Any,
    task: Optional[str] = None,
    user: Optional[str] = None,
    feature: Optional[str] = None,
    namespace: Optional[str] = None,
    cache_ttl: Optional[float] = None,
    decode: Optional[Callable[[Any], Any]] = None,
    **params: Any,
) -> Any:
    """:func:`cached_completion` for asyncio: ``call`` may be a coroutine function
    (``AsyncOpenAI().chat.completions.create``) or a plain function; a stream is returned as an
    async iterator."""
    route: Mapping[str, Any] = {}
    if model is None:
        route = await client.call("route", _route_params(task, messages, user, feature))
        model = _apply_route(route, params)
    plan = _Plan(model, messages, params, user, feature, namespace, cache_ttl, route.get("reservation"), route.get("routeId"))
    try:
        found = await client.call("cacheGet", plan.cache_get_params())
        if found.get("hit"):
            value = found.get("value")
            await _asend(client, _on_hit(plan, found), model)
            delivered = _delivered(plan, value, decode)
            return _replayed(delivered) if plan.stream else delivered
        plan.lease = found.get("lease")
        response = call(**plan.call_request())
        if inspect.isawaitable(response):
            response = await response
    except BaseException:
        await _asend(client, plan.give_up_calls(), model)
        raise
    if plan.stream:
        return _astream_through(client, plan, response)
    await _asend(client, _after_call(plan, response), model)
    return response


_OPTIONS = ("task", "user", "feature", "namespace", "cache_ttl", "decode")


def cached(
    client: Union[Client, AsyncClient, None] = None,
    *,
    task: Optional[str] = None,
    user: Optional[str] = None,
    feature: Optional[str] = None,
    namespace: Optional[str] = None,
    cache_ttl: Optional[float] = None,
    decode: Optional[Callable[[Any], Any]] = None,
) -> Callable[[F], F]:
    """Decorator form of :func:`cached_completion`.

    The decorated function takes the request as keywords (``messages=...``, optionally
    ``model=...`` and any other parameter) and is only called on a cache miss. The options
    given here are defaults that a call may override (``fn(messages=..., user="bob")``).
    A coroutine function is wrapped with :func:`acached_completion` (``client`` must then be
    an :class:`AsyncClient`, or ``None`` for one on the default socket).

    >>> @costd.cached(task="summarization", feature="digest")
    ... def complete(**request):
    ...     return openai_client.chat.completions.create(**request)
    >>> complete(messages=[{"role": "user", "content": "Summarise: ..."}], temperature=0)
    """
    defaults: Dict[str, Any] = {
        "task": task,
        "user": user,
        "feature": feature,
        "namespace": namespace,
        "cache_ttl": cache_ttl,
        "decode": decode,
    }

    def options(kwargs: Dict[str, Any]) -> Dict[str, Any]:
        chosen = dict(defaults)
        for name in _OPTIONS:
            if name in kwargs:
                chosen[name] = kwargs.pop(name)
        return chosen

    def decorate(fn: F) -> F:
        if inspect.iscoroutinefunction(fn):
            if client is not None and not isinstance(client, AsyncClient):
                raise TypeError("costd.cached: a coroutine function needs an AsyncClient")
            holder: Dict[str, AsyncClient] = {}

            @functools.wraps(fn)
            async def async_wrapper(**kwargs: Any) -> Any:
                aclient = client if isinstance(client, AsyncClient) else holder.setdefault("c", AsyncClient())
                chosen = options(kwargs)
                return await acached_completion(aclient, fn, **chosen, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        if client is not None and not isinstance(client, Client):
            raise TypeError("costd.cached: a plain function needs a Client")

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> Any:
            chosen = options(kwargs)
            return cached_completion(client if isinstance(client, Client) else None, fn, **chosen, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
