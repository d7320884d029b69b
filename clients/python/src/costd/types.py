"""TypedDicts documenting the results of each method (they are plain ``dict`` at run time).

Fields may be added by newer daemons; none named here is removed or renamed.
"""

from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional, TypedDict

__all__ = [
    "PingResult",
    "RouteResult",
    "CacheGetResult",
    "CacheSetResult",
    "CacheDeleteResult",
    "CacheFlushResult",
    "PeriodSpend",
    "Alert",
    "RecordResult",
    "Breakdown",
    "L1Stats",
    "CacheStats",
    "Savings",
    "DailySpend",
    "ReportResult",
    "EstimateResult",
    "CacheReleaseResult",
    "ReserveResult",
    "ReleaseReservationResult",
    "TokensResult",
]


class PingResult(TypedDict):
    pong: bool
    version: str
    uptimeSeconds: float
    store: str
    ledger: str


class _RouteRequired(TypedDict):
    model: str
    tier: str
    #: ``task``, ``default``, ``prompt-size`` or ``budget``.
    reason: str
    maxTokens: int
    detail: str
    #: Carried back by ``record`` (``routeId``), it claims the routing saving of this decision.
    routeId: str


class RouteResult(_RouteRequired, total=False):
    #: Present when a prompt or ``inputTokens`` was given.
    inputTokens: int
    inputTokensExact: bool
    estimatedCostUsd: float


class CacheGetResult(TypedDict, total=False):
    hit: bool
    #: The stored value (only on a hit).
    value: Any
    #: ``l1`` (this daemon's memory), ``l2`` or ``fill``.
    layer: str
    #: On a hit of an entry stored with its cost: what the hit saved (counted by the daemon).
    savedUsd: float
    #: That hit's id: a ``record(cached=True, hitId=...)`` of it is not counted again.
    hitId: str


class CacheSetResult(TypedDict, total=False):
    stored: bool
    ttl: float
    #: Why a value was not stored (``stored`` false).
    reason: str
    #: What the stored answer cost (``costUsd``, or its usage priced), saved by every hit.
    costUsd: float


class CacheDeleteResult(TypedDict):
    deleted: bool


class CacheFlushResult(TypedDict):
    flushed: int


class PeriodSpend(TypedDict):
    spentUsd: float
    budgetUsd: Optional[float]
    remainingUsd: Optional[float]


class Alert(TypedDict):
    scope: Literal["day", "month"]
    level: Literal["warning", "exceeded"]
    period: str
    spentUsd: float
    budgetUsd: float


class _RecordRequired(TypedDict):
    recordId: str
    costUsd: float
    day: PeriodSpend
    month: PeriodSpend
    alerts: List[Alert]


class RecordResult(_RecordRequired, total=False):
    #: What a ``cached: true`` record avoided.
    savedUsd: float
    #: True when the ``recordId`` was already recorded (nothing changed).
    duplicate: bool
    #: With a ``routeId``: the routing saving claimed (negative when routed up).
    routingSavedUsd: float
    #: Why a ``routeId`` claimed nothing (unknown, expired or already claimed; another model).
    routeIgnored: str
    #: With a ``hitId``: the daemon counted that hit's saving already; nothing was recorded.
    countedAtHit: bool


class Breakdown(TypedDict):
    costUsd: float
    requests: int
    inputTokens: int
    outputTokens: int
    cachedRequests: int
    savedUsd: float


class L1Stats(TypedDict):
    entries: int
    bytes: int
    capacityBytes: int
    evictions: int
    expirations: int


class CacheStats(TypedDict):
    hits: int
    misses: int
    hitRate: float
    l1Hits: int
    l2Hits: int
    fillHits: int
    sets: int
    #: Calls single-flight saved (callers served by another's fill).
    savedCalls: int
    #: Callers of this daemon waiting now for another's lease.
    waiting: int
    savedUsd: float
    l1: L1Stats


class Savings(TypedDict):
    cacheUsd: float
    routingUsd: float
    totalUsd: float
    baselineModel: str


class DailySpend(TypedDict):
    date: str
    costUsd: float


class _ReportRequired(TypedDict):
    date: str
    period: Literal["day", "month"]
    periodKey: str
    totalCostUsd: float
    budgetUsd: Optional[float]
    remainingUsd: Optional[float]
    requests: int
    cachedRequests: int
    inputTokens: int
    outputTokens: int
    cachedInputTokens: int
    byModel: Dict[str, Breakdown]
    byUser: Dict[str, Breakdown]
    byFeature: Dict[str, Breakdown]
    byUnit: Dict[str, Breakdown]
    cache: CacheStats
    savings: Savings


class ReportResult(_ReportRequired, total=False):
    #: With ``days=N``: the spend of the N days ending at ``date``.
    daily: List[DailySpend]


class EstimateResult(TypedDict):
    model: str
    perRequestUsd: float
    dailyUsd: float
    #: The cost over ``days`` days (30 by default).
    monthlyUsd: float
    days: int


class CacheReleaseResult(TypedDict):
    released: bool


class ReserveResult(TypedDict):
    #: Pass it to ``record(reservation=...)`` to settle, or to ``release_reservation``.
    reservation: str
    amountUsd: float
    #: Unix milliseconds.
    expiresAt: int
    day: PeriodSpend
    month: PeriodSpend


class ReleaseReservationResult(TypedDict):
    released: bool


class TokensResult(TypedDict):
    tokens: int
    encoding: str
