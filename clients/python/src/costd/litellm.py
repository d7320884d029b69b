"""A LiteLLM logger that records every call's spend in costd: ``pip install "costd[litellm]"``;
``litellm`` is imported here only.

>>> import litellm
>>> from costd.litellm import CostdLogger
>>> litellm.callbacks = [CostdLogger(feature="search")]
>>> litellm.completion(model="gpt-4o", messages=[...], metadata={"user": "ann"})
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional

try:
    from litellm.integrations.custom_logger import CustomLogger
except ImportError as exc:  # pragma: no cover - only without the extra
    raise ImportError('costd.litellm needs litellm: pip install "costd[litellm]"') from exc

from ._lazy import LazyClient
from .aio import AsyncClient
from .client import Client
from .errors import CostdError, DaemonUnavailable
from .llm import usage_from_response

__all__ = ["CostdLogger"]

logger = logging.getLogger("costd")


class CostdLogger(CustomLogger):
    """Records the model and usage of every LiteLLM call (``completion`` and ``acompletion``,
    streamed or not: LiteLLM reports a stream once it has ended, with its whole usage).

    ``user`` and ``feature`` attribute the spend; a call's ``metadata={"user": ...,
    "feature": ...}`` overrides them, and ``metadata={"reservation": route["reservation"]}``
    passes costd's route through: the record settles the reservation the route took. A hit of
    LiteLLM's own cache is recorded as a cache hit (savings). Each call is recorded under
    LiteLLM's call id, so it counts once. Works with no
    arguments on the default socket; ``client=`` uses a given :class:`costd.Client`.
    """

    def __init__(
        self,
        user: Optional[str] = None,
        feature: Optional[str] = None,
        client: Optional[Client] = None,
        *,
        aclient: Optional[AsyncClient] = None,
        socket: Optional[str] = None,
    ) -> None:
        super().__init__()
        self.user = user
        self.feature = feature
        self._client = LazyClient(client, socket)
        self._socket = self._client.socket
        self._aclient = aclient

    @property
    def client(self) -> Client:
        return self._client.get()

    def record_params(self, kwargs: Dict[str, Any], response: Any) -> Optional[Dict[str, Any]]:
        """What to record for a finished call; None when it reported no usage."""
        usage = usage_from_response(response)
        if usage is None:
            logger.warning("costd: a LiteLLM call reported no usage; its spend was not recorded")
            return None
        # "openai/gpt-4o" and "gpt-4o" are the same model to costd's price table.
        model = str(kwargs.get("model") or getattr(response, "model", "") or "")
        model = model.split("/", 1)[1] if "/" in model and not model.startswith("ft:") else model
        metadata = (kwargs.get("litellm_params") or {}).get("metadata") or kwargs.get("metadata") or {}
        params: Dict[str, Any] = {"model": model, **usage}
        call_id = kwargs.get("litellm_call_id")
        if call_id:
            params["recordId"] = f"litellm-{call_id}"
        if kwargs.get("cache_hit"):
            params["cached"] = True
        for name, default in (("user", self.user), ("feature", self.feature)):
            value = metadata.get(name, default)
            if value is not None:
                params[name] = value
        # The route passed through: a call made on costd's route (``route`` with hard budgets
        # holds a reservation) settles that reservation with its record.
        if metadata.get("reservation") and not params.get("cached"):
            params["reservation"] = metadata["reservation"]
        return params

    def log_success_event(self, kwargs: Dict[str, Any], response_obj: Any, start_time: Any, end_time: Any) -> None:
        params = self.record_params(kwargs, response_obj)
        if params is None:
            return
        try:
            self.client.call("record", params)
        except (CostdError, DaemonUnavailable):
            logger.exception("costd: recording a LiteLLM call failed")

    async def async_log_success_event(self, kwargs: Dict[str, Any], response_obj: Any, start_time: Any, end_time: Any) -> None:
        params = self.record_params(kwargs, response_obj)
        if params is None:
            return
        try:
            if self._aclient is None:
                # One short-lived connection: LiteLLM may call this from a loop of its own.
                async with AsyncClient(self._socket) as aclient:
                    await aclient.call("record", params)
            else:
                await self._aclient.call("record", params)
        except (CostdError, DaemonUnavailable):
            logger.exception("costd: recording a LiteLLM call failed")
