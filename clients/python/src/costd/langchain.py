"""LangChain adapters: costd as LangChain's LLM cache, and a callback handler that records every
call's spend. ``pip install "costd[langchain]"``; ``langchain_core`` is imported here only.

>>> from langchain_core.globals import set_llm_cache
>>> from costd.langchain import CostdCache, CostdCallbackHandler
>>> set_llm_cache(CostdCache())                       # identical calls are answered by costd
>>> llm = ChatOpenAI(model="gpt-4o", callbacks=[CostdCallbackHandler(feature="search")])
>>> llm.invoke("Capital of France?", config={"metadata": {"user": "ann"}})
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from typing import Any, Dict, List, Optional, Sequence
from uuid import UUID

try:
    from langchain_core.caches import BaseCache
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.messages import message_to_dict, messages_from_dict
    from langchain_core.outputs import ChatGeneration, Generation, LLMResult
except ImportError as exc:  # pragma: no cover - only without the extra
    raise ImportError('costd.langchain needs langchain-core: pip install "costd[langchain]"') from exc

from ._lazy import LazyClient
from .aio import AsyncClient
from .client import Client
from .errors import CostdError, DaemonUnavailable

__all__ = ["CostdCache", "CostdCallbackHandler"]

logger = logging.getLogger("costd")

_MODEL_IN_LLM_STRING = re.compile(r"""["']model(?:_name)?["']\s*[:,]\s*["']([^"']+)["']""")


def _model_of(llm_string: str) -> str:
    """The model named in LangChain's description of an LLM (its ``llm_string``), for costd's
    per-model cache figures; the key itself is the whole string."""
    match = _MODEL_IN_LLM_STRING.search(llm_string)
    return match.group(1) if match else "langchain"


def _generation_to_json(generation: Generation) -> Dict[str, Any]:
    data: Dict[str, Any] = {"text": generation.text, "info": generation.generation_info}
    if isinstance(generation, ChatGeneration):
        data["message"] = message_to_dict(generation.message)
    return data


def _generation_from_json(data: Dict[str, Any]) -> Generation:
    # Plain data back into LangChain's types, never arbitrary classes: the cache is shared, so
    # what it holds is not trusted to name constructors (langchain_core.load would).
    if "message" in data:
        return ChatGeneration(message=messages_from_dict([data["message"]])[0], generation_info=data.get("info"))
    return Generation(text=data.get("text", ""), generation_info=data.get("info"))


class _AsyncClients:
    """One AsyncClient per event loop (an asyncio client belongs to the loop that made it)."""

    def __init__(self, given: Optional[AsyncClient]) -> None:
        self.given = given
        self.by_loop: Dict[int, AsyncClient] = {}
        self.lock = threading.Lock()

    def get(self, socket: Optional[str]) -> AsyncClient:
        if self.given is not None:
            return self.given
        loop = id(asyncio.get_running_loop())
        with self.lock:
            if loop not in self.by_loop:
                self.by_loop[loop] = AsyncClient(socket)
            return self.by_loop[loop]


class CostdCache(BaseCache):
    """LangChain's LLM cache in costd: every process on the host (and every host on costd's
    Redis) shares the answers; ``set_llm_cache(CostdCache())``.

    The key is the prompt and LangChain's whole description of the model and its parameters
    (``llm_string``), so a call differing in any parameter does not share an entry. Works with
    no arguments on the default socket; ``client=`` (a :class:`costd.Client`) and
    ``aclient=`` (a :class:`costd.AsyncClient`) use given ones. A cache that cannot be reached
    is a miss (logged), never a failed call.
    """

    def __init__(
        self,
        client: Optional[Client] = None,
        *,
        aclient: Optional[AsyncClient] = None,
        namespace: Optional[str] = None,
        ttl: Optional[float] = None,
        socket: Optional[str] = None,
    ) -> None:
        self._client = LazyClient(client, socket)
        self._socket = self._client.socket
        self._aclients = _AsyncClients(aclient)
        self.namespace = namespace
        self.ttl = ttl

    @property
    def client(self) -> Client:
        return self._client.get()

    def _key(self, prompt: str, llm_string: str) -> Dict[str, Any]:
        params: Dict[str, Any] = {"model": _model_of(llm_string), "prompt": {"prompt": prompt, "llm": llm_string}}
        if self.namespace is not None:
            params["namespace"] = self.namespace
        return params

    def _stored(self, prompt: str, llm_string: str, return_val: Sequence[Generation]) -> Dict[str, Any]:
        params = self._key(prompt, llm_string)
        params["value"] = {"generations": [_generation_to_json(g) for g in return_val]}
        if self.ttl is not None:
            params["ttl"] = self.ttl
        return params

    @staticmethod
    def _found(answer: Dict[str, Any]) -> Optional[List[Generation]]:
        if not answer.get("hit"):
            return None
        return [_generation_from_json(g) for g in (answer.get("value") or {}).get("generations", [])]

    def lookup(self, prompt: str, llm_string: str) -> Optional[List[Generation]]:
        try:
            return self._found(self.client.call("cacheGet", self._key(prompt, llm_string)))
        except (CostdError, DaemonUnavailable):
            logger.warning("costd: cache lookup failed; the call goes to the model", exc_info=True)
            return None

    def update(self, prompt: str, llm_string: str, return_val: Sequence[Generation]) -> None:
        try:
            self.client.call("cacheSet", self._stored(prompt, llm_string, return_val))
        except (CostdError, DaemonUnavailable):
            logger.warning("costd: the answer was not cached", exc_info=True)

    def clear(self, **kwargs: Any) -> None:
        """Drops every entry of this cache's namespace (every entry of the default one)."""
        self.client.call("cacheFlush", {"namespace": self.namespace} if self.namespace is not None else {})

    async def alookup(self, prompt: str, llm_string: str) -> Optional[List[Generation]]:
        try:
            return self._found(await self._aclients.get(self._socket).call("cacheGet", self._key(prompt, llm_string)))
        except (CostdError, DaemonUnavailable):
            logger.warning("costd: cache lookup failed; the call goes to the model", exc_info=True)
            return None

    async def aupdate(self, prompt: str, llm_string: str, return_val: Sequence[Generation]) -> None:
        try:
            await self._aclients.get(self._socket).call("cacheSet", self._stored(prompt, llm_string, return_val))
        except (CostdError, DaemonUnavailable):
            logger.warning("costd: the answer was not cached", exc_info=True)

    async def aclear(self, **kwargs: Any) -> None:
        await self._aclients.get(self._socket).call("cacheFlush", {"namespace": self.namespace} if self.namespace is not None else {})


def _usage_of(generation: Generation, llm_output: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """Token counts of one answer: the message's ``usage_metadata`` (every chat model; summed over
    a stream's chunks), else the provider's ``token_usage`` in ``llm_output``."""
    message = getattr(generation, "message", None)
    usage = getattr(message, "usage_metadata", None)
    if usage:
        counts = {"inputTokens": int(usage.get("input_tokens") or 0), "outputTokens": int(usage.get("output_tokens") or 0)}
        cached = (usage.get("input_token_details") or {}).get("cache_read")
        if cached:
            counts["cachedInputTokens"] = int(cached)
        # LangChain marks an answer replayed from its cache with a total cost of zero.
        counts["fromCache"] = usage.get("total_cost") == 0
        return counts
    token_usage = (llm_output or {}).get("token_usage") or (llm_output or {}).get("usage")
    if token_usage:
        return {
            "inputTokens": int(token_usage.get("prompt_tokens") or token_usage.get("input_tokens") or 0),
            "outputTokens": int(token_usage.get("completion_tokens") or token_usage.get("output_tokens") or 0),
            "fromCache": False,
        }
    return None


class CostdCallbackHandler(BaseCallbackHandler):
    """Records every LLM call's model and usage in costd (streamed calls included, from the
    usage the last chunk carries). ``user`` and ``feature`` attribute the spend; a call's
    ``metadata={"user": ..., "feature": ...}`` (``config={"metadata": ...}``) overrides them.
    An answer LangChain replays from its cache is recorded as a cache hit (savings, not
    spend). ``model`` names the model when neither the answer nor the call does.
    Bookkeeping failures are logged, never raised into the program.
    """

    raise_error = False

    def __init__(
        self,
        user: Optional[str] = None,
        feature: Optional[str] = None,
        client: Optional[Client] = None,
        *,
        model: Optional[str] = None,
        socket: Optional[str] = None,
    ) -> None:
        super().__init__()
        self.user = user
        self.feature = feature
        self.model = model
        self._client = LazyClient(client, socket)
        self._lock = threading.Lock()
        self._runs: Dict[UUID, Dict[str, Any]] = {}

    @property
    def client(self) -> Client:
        return self._client.get()

    def _start(self, run_id: UUID, metadata: Optional[Dict[str, Any]], kwargs: Dict[str, Any]) -> None:
        params = kwargs.get("invocation_params") or {}
        metadata = metadata or {}
        model = params.get("model") or params.get("model_name") or metadata.get("ls_model_name")
        with self._lock:
            self._runs[run_id] = {
                "model": model,
                "user": metadata.get("user", self.user),
                "feature": metadata.get("feature", self.feature),
            }

    def on_chat_model_start(
        self, serialized: Dict[str, Any], messages: List[List[Any]], *, run_id: UUID, metadata: Optional[Dict[str, Any]] = None, **kwargs: Any
    ) -> None:
        self._start(run_id, metadata, kwargs)

    def on_llm_start(
        self, serialized: Dict[str, Any], prompts: List[str], *, run_id: UUID, metadata: Optional[Dict[str, Any]] = None, **kwargs: Any
    ) -> None:
        self._start(run_id, metadata, kwargs)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            self._runs.pop(run_id, None)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            run = self._runs.pop(run_id, {})
        for params in self._records(response, run, run_id):
            try:
                self.client.call("record", params)
            except (CostdError, DaemonUnavailable):
                logger.exception("costd: recording a LangChain call failed")

    def _records(self, response: LLMResult, run: Dict[str, Any], run_id: UUID) -> List[Dict[str, Any]]:
        records = []
        for index, generations in enumerate(response.generations):
            if not generations:
                continue
            usage = _usage_of(generations[0], response.llm_output)
            if usage is None:
                logger.warning("costd: a LangChain answer carried no usage; its spend was not recorded")
                continue
            message = getattr(generations[0], "message", None)
            metadata = getattr(message, "response_metadata", None) or {}
            model = (
                metadata.get("model_name") or metadata.get("model") or (response.llm_output or {}).get("model_name")
                or run.get("model") or self.model
            )
            if not model:
                logger.warning("costd: a LangChain answer named no model; pass CostdCallbackHandler(model=...)")
                continue
            params: Dict[str, Any] = {
                "model": str(model),
                "inputTokens": usage["inputTokens"],
                "outputTokens": usage["outputTokens"],
                # One id per call and prompt: a handler that sees the same end twice counts it once.
                "recordId": f"langchain-{run_id}-{index}",
            }
            if usage.get("cachedInputTokens"):
                params["cachedInputTokens"] = usage["cachedInputTokens"]
            if usage["fromCache"]:
                params["cached"] = True
            for name in ("user", "feature"):
                if run.get(name) is not None:
                    params[name] = run[name]
            records.append(params)
        return records
