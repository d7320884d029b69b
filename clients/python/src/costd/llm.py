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
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union

from .aio import AsyncClient
from .client import Client
from .errors import CostdError, DaemonUnavailable

__all__ = [
    "cached_completion",
    "acached_completion",
    "cached",
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
    """What one wrapped call sends: the request, the cache key and the bookkeeping."""

    def __init__(
        self,
        model: str,
        messages: Any,
        params: Dict[str, Any],
        user: Optional[str],
        feature: Optional[str],
        namespace: Optional[str],
        cache_ttl: Optional[float],
    ) -> None:
        self.model = model
        self.request: Dict[str, Any] = {"model": model, "messages": messages, **params}
        # The WHOLE request is the key: the daemon canonicalises it (key order, number form).
        self.key = to_jsonable(self.request)
        self.user = user
        self.feature = feature
        self.namespace = namespace
        self.cache_ttl = cache_ttl

    def record_params(self, usage: Mapping[str, int], cached: bool) -> Dict[str, Any]:
        params: Dict[str, Any] = {"model": self.model, **usage}
        if cached:
            params["cached"] = True
        if self.user is not None:
            params["user"] = self.user
        if self.feature is not None:
            params["feature"] = self.feature
        return params

    def cache_set_params(self, value: Any) -> Dict[str, Any]:
        params: Dict[str, Any] = {"model": self.model, "prompt": self.key, "value": value}
        if self.cache_ttl is not None:
            params["ttl"] = self.cache_ttl
        if self.namespace is not None:
            params["namespace"] = self.namespace
        return params

    def cache_get_params(self) -> Dict[str, Any]:
        params: Dict[str, Any] = {"model": self.model, "prompt": self.key}
        if self.namespace is not None:
            params["namespace"] = self.namespace
        return params


def _check_params(params: Mapping[str, Any]) -> None:
    if params.get("stream"):
        raise ValueError("costd: streamed responses cannot be cached; call without stream=True")


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
       ``max_tokens``/``max_completion_tokens`` is given.
    2. Looks the WHOLE request (model, messages and every other parameter: temperature, tools,
       tool_choice, response_format, seed, provider extras...) up in the cache, in ``namespace``.
    3. On a hit, records the cached usage with ``cached=True`` (cache savings, not spend) and
       returns the cached response: a dict, or ``decode(dict)`` when ``decode`` is given (e.g.
       ``openai.types.chat.ChatCompletion.model_validate``).
    4. On a miss, calls ``call``, stores its response (dicts, or objects with ``model_dump()`` or
       ``to_dict()``) for ``cache_ttl`` seconds (the daemon's default when ``None``), records
       the spend from its ``usage`` and returns the response as ``call`` gave it.

    ``user``, ``feature``, ``task``, ``namespace``, ``cache_ttl`` and ``decode`` are for costd
    and are not passed to ``call``; every other keyword is. Once ``call`` has returned (and
    been paid for), a failure to store or record is logged, never raised, so the response is
    not lost. Errors before the call (daemon unreachable) are raised.
    """
    costd = client if client is not None else default_client()
    _check_params(params)
    if model is None:
        model = _apply_route(costd.call("route", _route_params(task, messages, user, feature)), params)
    plan = _Plan(model, messages, params, user, feature, namespace, cache_ttl)
    found = costd.call("cacheGet", plan.cache_get_params())
    if found.get("hit"):
        value = found.get("value")
        usage = usage_from_response(value)
        if usage is not None:
            costd.call("record", plan.record_params(usage, cached=True))
        return decode(value) if decode is not None else value

    response = call(**plan.request)
    try:
        storable, value = _jsonable_response(response)
        if storable:
            costd.call("cacheSet", plan.cache_set_params(value))
        usage = usage_from_response(response)
        if usage is None:
            logger.warning("costd: the response of %s has no usage; its spend was not recorded", model)
        else:
            costd.call("record", plan.record_params(usage, cached=False))
    except (CostdError, DaemonUnavailable):
        logger.exception("costd: bookkeeping failed after a completed %s call", model)
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
    (``AsyncOpenAI().chat.completions.create``) or a plain function."""
    _check_params(params)
    if model is None:
        model = _apply_route(await client.call("route", _route_params(task, messages, user, feature)), params)
    plan = _Plan(model, messages, params, user, feature, namespace, cache_ttl)
    found = await client.call("cacheGet", plan.cache_get_params())
    if found.get("hit"):
        value = found.get("value")
        usage = usage_from_response(value)
        if usage is not None:
            await client.call("record", plan.record_params(usage, cached=True))
        return decode(value) if decode is not None else value

    response = call(**plan.request)
    if inspect.isawaitable(response):
        response = await response
    try:
        storable, value = _jsonable_response(response)
        if storable:
            await client.call("cacheSet", plan.cache_set_params(value))
        usage = usage_from_response(response)
        if usage is None:
            logger.warning("costd: the response of %s has no usage; its spend was not recorded", model)
        else:
            await client.call("record", plan.record_params(usage, cached=False))
    except (CostdError, DaemonUnavailable):
        logger.exception("costd: bookkeeping failed after a completed %s call", model)
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
