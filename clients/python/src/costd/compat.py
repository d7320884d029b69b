"""Drop-ins for the classic cost-optimisation helpers, backed by the daemon.

Code written against hand-rolled ``LLMCache`` / ``CostMonitor`` classes moves to costd by
changing an import::

    from costd import LLMCache, CostMonitor

    cache = LLMCache()
    monitor = CostMonitor()
    response = cache.get(prompt, "gpt-4o")
    if response is None:
        response = call_the_model(prompt)
        cache.set(prompt, "gpt-4o", response)
        monitor.record("gpt-4o", input_tokens=812, output_tokens=64)
    print(f"hit rate {cache.hit_rate:.0%}, today ${monitor.report()['totalCostUsd']:.4f}")

The cache and the spend are the daemon's: shared by every process on the host, persistent,
and the budgets are the daemon's (``--daily-budget``/``--monthly-budget`` or its config).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Dict, List, Optional

from ._wire import PathLike
from .client import Client
from .types import Alert, RecordResult, ReportResult

__all__ = ["LLMCache", "CostMonitor"]

logger = logging.getLogger("costd")


def _client(client: Optional[Client], socket_path: Optional[PathLike]) -> Client:
    if client is not None:
        return client
    return Client(socket_path)


class LLMCache:
    """A response cache keyed by ``(prompt, model)``.

    ``prompt`` may be a string or any JSON value (a message list, a whole request dict); the
    daemon canonicalises it, so key order and ``1.0`` vs ``1`` do not matter. Responses must
    be JSON values. ``get`` returns ``None`` on a miss (a stored ``None`` looks like a miss).

    :param client: the :class:`costd.Client` to use (default: one on the default socket).
    :param ttl: default time to live in seconds (default: the daemon's, one hour).
    :param namespace: keeps this cache's entries apart from others' (``clear`` flushes it).
    """

    def __init__(
        self,
        client: Optional[Client] = None,
        *,
        ttl: Optional[float] = None,
        namespace: Optional[str] = None,
        socket_path: Optional[PathLike] = None,
    ) -> None:
        self.client = _client(client, socket_path)
        self.ttl = ttl
        self.namespace = namespace
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def lookups(self) -> int:
        return self.hits + self.misses

    @property
    def hit_rate(self) -> float:
        """Hits over lookups made through this instance (0.0 before any lookup)."""
        with self._lock:
            lookups = self.hits + self.misses
            return self.hits / lookups if lookups else 0.0

    def get(self, prompt: Any, model: str) -> Any:
        """The cached response, or ``None``."""
        result = self.client.cache_get(model, prompt, namespace=self.namespace)
        hit = bool(result.get("hit"))
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1
        return result.get("value") if hit else None

    def set(self, prompt: Any, model: str, response: Any, ttl: Optional[float] = None) -> bool:
        """Stores ``response`` (a JSON value) for ``ttl`` seconds; returns whether it was stored."""
        effective = ttl if ttl is not None else self.ttl
        result = self.client.cache_set(model, prompt, response, ttl=effective, namespace=self.namespace)
        return bool(result.get("stored"))

    def delete(self, prompt: Any, model: str) -> bool:
        return bool(self.client.cache_delete(model, prompt, namespace=self.namespace).get("deleted"))

    def clear(self) -> int:
        """Flushes this cache's namespace (EVERY entry of the daemon when it has none)."""
        return int(self.client.cache_flush(namespace=self.namespace).get("flushed", 0))

    def stats(self) -> Dict[str, Any]:
        with self._lock:
            lookups = self.hits + self.misses
            return {
                "hits": self.hits,
                "misses": self.misses,
                "lookups": lookups,
                "hit_rate": self.hits / lookups if lookups else 0.0,
            }


class CostMonitor:
    """Records spend and reports it, through the daemon's ledger.

    :param client: the :class:`costd.Client` to use (default: one on the default socket).
    :param user: default ``user`` of records (the daemon's default is the caller's Unix user).
    :param feature: default ``feature`` of records.
    :param on_alert: called with each budget alert a record crosses (they are also logged).
    """

    def __init__(
        self,
        client: Optional[Client] = None,
        *,
        user: Optional[str] = None,
        feature: Optional[str] = None,
        on_alert: Optional[Callable[[Alert], None]] = None,
        socket_path: Optional[PathLike] = None,
    ) -> None:
        self.client = _client(client, socket_path)
        self.user = user
        self.feature = feature
        self.on_alert = on_alert
        #: The daemon's full answer to the last ``record``.
        self.last_result: Optional[RecordResult] = None
        #: Every alert seen by this instance.
        self.alerts: List[Alert] = []

    def record(self, model: str, input_tokens: int = 0, output_tokens: int = 0, **extra: Any) -> float:
        """Records one call and returns its cost in USD.

        ``extra`` takes any other ``record`` parameter, by wire or snake_case name
        (``cached_input_tokens=``, ``cached=True``, ``user=``, ``feature=``, ``cost_usd=``...).
        """
        extra.setdefault("user", self.user)
        extra.setdefault("feature", self.feature)
        result = self.client.record(model, input_tokens=input_tokens, output_tokens=output_tokens, **extra)
        self.last_result = result
        for alert in result.get("alerts", []):
            self.alerts.append(alert)
            logger.warning(
                "costd: %s budget %s for %s: $%s of $%s",
                alert.get("scope"),
                alert.get("level"),
                alert.get("period"),
                alert.get("spentUsd"),
                alert.get("budgetUsd"),
            )
            if self.on_alert is not None:
                self.on_alert(alert)
        return float(result.get("costUsd", 0.0))

    def report(self, **kw: Any) -> ReportResult:
        """The daemon's report (``date=``, ``period="month"``, ``days=N``)."""
        return self.client.report(**kw)

    @property
    def daily_spend(self) -> float:
        """Today's spend in USD."""
        return float(self.report()["totalCostUsd"])

    @property
    def monthly_spend(self) -> float:
        """This month's spend in USD."""
        return float(self.report(period="month")["totalCostUsd"])
