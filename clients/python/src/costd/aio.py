"""The asyncio client: one connection, pipelined, answers matched to calls by id."""

from __future__ import annotations

import asyncio
import collections
import errno
import itertools
import logging
import time
from typing import Any, AsyncIterator, Deque, Dict, List, Mapping, Optional, Sequence, cast

from . import _wire
from ._wire import PathLike, collect_params
from .client import DEFAULT_TIMEOUT
from .errors import DaemonUnavailable, ShuttingDown, Timeout
from .types import (
    CacheDeleteResult,
    CacheFlushResult,
    CacheGetResult,
    CacheSetResult,
    CacheReleaseResult,
    EstimateResult,
    PingResult,
    RecordResult,
    ReleaseReservationResult,
    ReportResult,
    ReserveResult,
    RouteResult,
    TokensResult,
)

__all__ = ["AsyncClient"]

logger = logging.getLogger("costd")


class _Lost(Exception):
    """The connection ended before the answer came."""


class _Connection:
    """One stream to the daemon, its reader task and the calls waiting on it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        self.reader = reader
        self.writer = writer
        self.number = number
        self.pending: Dict[Any, "asyncio.Future[Dict[str, Any]]"] = {}
        self.write_lock = asyncio.Lock()
        self.closed = False
        #: Takes no new calls (the daemon said it is shutting down); pending ones still finish.
        self.retired = False
        self.task: Optional["asyncio.Task[None]"] = None
        #: Errors answered with ``"id": null`` that could not be matched to one call.
        self.unmatched_errors: List[Dict[str, Any]] = []

    @property
    def usable(self) -> bool:
        return not self.closed and not self.retired


class AsyncClient:
    """An asyncio costd client.

    All calls share ONE connection: each request is written as soon as it is made and a
    reader task hands every answer to the call with its id, so any number of concurrent
    awaits are pipelined on one socket. When the connection breaks, the next call reconnects,
    and calls whose answers were lost are sent once more when that is safe (the same rules
    as :class:`costd.Client`; ``record`` always carries a ``recordId``).

    >>> async with AsyncClient() as costd:
    ...     results = await asyncio.gather(*(costd.ping() for _ in range(100)))

    The client binds to the event loop it is first used in; used from another loop, it
    opens a new connection there.
    """

    def __init__(
        self,
        path: Optional[PathLike] = None,
        *,
        timeout: Optional[float] = DEFAULT_TIMEOUT,
        max_frame_bytes: Optional[int] = _wire.DEFAULT_MAX_FRAME_BYTES,
    ) -> None:
        self.path: str = _wire.resolve_socket_path(path)
        self.timeout = timeout
        self.max_frame_bytes = max_frame_bytes
        #: How many connections this client has opened (1 until the daemon restarts).
        self.connections_opened = 0
        self._conn: Optional[_Connection] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._connect_lock: Optional[asyncio.Lock] = None
        self._ids = itertools.count(1)
        #: A subscription's alerts as they arrive, and the event that wakes its reader.
        self._notifications: Deque[Dict[str, Any]] = collections.deque()
        self._notified: Optional[asyncio.Event] = None

    # ----------------------------------------------------------------------------------------
    # Connection

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<costd.AsyncClient path={self.path!r} connected={self.connected} in_flight={self.in_flight}>"

    @property
    def connected(self) -> bool:
        return self._conn is not None and self._conn.usable

    @property
    def in_flight(self) -> int:
        """Calls waiting for their answer on the current connection."""
        return len(self._conn.pending) if self._conn is not None else 0

    async def connect(self) -> None:
        """Opens the connection now (calls open it on demand). Raises :class:`DaemonUnavailable`."""
        await self._connection()

    async def aclose(self) -> None:
        """Closes the connection; calls still waiting fail with :class:`DaemonUnavailable`.
        The next call opens a new connection."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        self._fail(conn, "the client was closed", final=True)
        task = conn.task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        try:
            await conn.writer.wait_closed()
        except Exception:
            pass

    close = aclose

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            old = self._conn
            self._conn = None
            if old is not None:
                # That stream belongs to another (probably finished) loop.
                self._fail(old, "the client moved to another event loop", final=True)
            self._loop = loop
            self._connect_lock = asyncio.Lock()
        return loop

    async def _connection(self) -> _Connection:
        loop = self._bind_loop()
        conn = self._conn
        if conn is not None and conn.usable:
            return conn
        assert self._connect_lock is not None
        async with self._connect_lock:
            conn = self._conn
            if conn is not None and conn.usable:
                return conn
            try:
                opening = asyncio.open_unix_connection(self.path)
                if self.timeout is not None:
                    reader, writer = await asyncio.wait_for(opening, self.timeout)
                else:
                    reader, writer = await opening
            except asyncio.TimeoutError:
                raise Timeout(errno.ETIMEDOUT, f"costd: timed out connecting to {self.path}") from None
            except OSError as exc:
                raise DaemonUnavailable(
                    exc.errno, f"costd is not reachable at {self.path}: {exc.strerror or exc}"
                ) from exc
            self.connections_opened += 1
            conn = _Connection(reader, writer, self.connections_opened)
            conn.task = loop.create_task(self._read_loop(conn))
            self._conn = conn
            return conn

    async def _read_loop(self, conn: _Connection) -> None:
        reason = "the daemon closed the connection"
        try:
            while True:
                header = await conn.reader.readexactly(4)
                (size,) = _wire.HEADER.unpack(header)
                body = await conn.reader.readexactly(size)
                try:
                    message = _wire.decode_body(body)
                except ValueError as exc:
                    reason = f"undecodable frame from costd: {exc}"
                    break
                self._dispatch(conn, message)
        except asyncio.IncompleteReadError:
            pass
        except asyncio.CancelledError:
            reason = "the client was closed"
            raise
        except (OSError, EOFError) as exc:
            reason = f"receive failed: {exc}"
        finally:
            self._fail(conn, reason)

    def _dispatch(self, conn: _Connection, message: Any) -> None:
        if isinstance(message, list):  # a batch answer (this client sends no batches)
            for element in message:
                self._dispatch(conn, element)
            return
        if not isinstance(message, dict):
            return
        if "method" in message and "id" not in message:
            self._notifications.append(message)  # an alert of a subscription
            if self._notified is not None:
                self._notified.set()
            return
        request_id = message.get("id")
        if request_id is not None:
            future = conn.pending.pop(request_id, None)
            if future is not None and not future.done():
                future.set_result(message)
            return
        if "error" not in message:
            return
        # An error found before the request's id could be read (frame too large, nesting too
        # deep, unparsable): with one call in flight it is that call's; otherwise it cannot be
        # matched (that call then ends by timeout, or by the reconnect if the daemon closes).
        if len(conn.pending) == 1:
            _, future = conn.pending.popitem()
            if not future.done():
                future.set_result(message)
        else:
            conn.unmatched_errors.append(message)
            logger.warning("costd: error answer with id null and %d calls in flight: %s", len(conn.pending), message)

    def _fail(self, conn: _Connection, reason: str, final: bool = False) -> None:
        """Ends a connection: its waiting calls fail (and retry, unless ``final``)."""
        if self._conn is conn:
            self._conn = None
        conn.closed = True
        if self._notified is not None:
            self._notified.set()  # a subscription reader subscribes again
        pending, conn.pending = conn.pending, {}
        for future in pending.values():
            if future.done():
                continue
            try:
                if final:
                    future.set_exception(DaemonUnavailable(errno.ECONNABORTED, f"costd: {reason}"))
                else:
                    future.set_exception(_Lost(reason))
            except RuntimeError:  # its event loop is closed
                pass
        try:
            conn.writer.close()
        except Exception:
            pass

    # ----------------------------------------------------------------------------------------
    # Calls

    async def call(
        self,
        method: str,
        params: Optional[Mapping[str, Any]] = None,
        *,
        idempotent: Optional[bool] = None,
    ) -> Any:
        """Calls any method and returns its ``result``; see :meth:`costd.Client.call`."""
        prepared = _wire.prepare_call(method, params)
        may_repeat = _wire.retry_safe(method, prepared, idempotent)
        request_id = next(self._ids)
        frame = _wire.encode_frame(_wire.request_message(method, prepared, request_id), self.max_frame_bytes)
        for attempt in (1, 2):
            conn = await self._connection()
            future: "asyncio.Future[Dict[str, Any]]" = asyncio.get_running_loop().create_future()
            conn.pending[request_id] = future
            try:
                try:
                    conn.writer.write(frame)
                    async with conn.write_lock:  # concurrent drain() is not allowed before 3.10
                        await conn.writer.drain()
                except (OSError, RuntimeError) as exc:
                    self._fail(conn, f"send failed: {exc}")
                try:
                    if self.timeout is None:
                        answer = await future
                    else:
                        answer = await asyncio.wait_for(future, self.timeout)
                except _Lost as lost:
                    if attempt == 1 and may_repeat:
                        continue
                    raise DaemonUnavailable(errno.ECONNRESET, f"costd connection lost during {method}: {lost}") from lost
                except asyncio.TimeoutError:
                    raise Timeout(errno.ETIMEDOUT, f"costd: no answer to {method} within {self.timeout} s") from None
            finally:
                conn.pending.pop(request_id, None)
            try:
                return _wire.result_or_raise(answer)
            except ShuttingDown as shutting:
                conn.retired = True
                if attempt == 1 and may_repeat:
                    try:
                        await self._connection()
                    except DaemonUnavailable:
                        raise shutting from None
                    continue
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def notify(self, method: str, params: Optional[Mapping[str, Any]] = None) -> None:
        """Sends a notification (no ``id``); see :meth:`costd.Client.notify`."""
        prepared = _wire.prepare_call(method, params)
        frame = _wire.encode_frame({"jsonrpc": "2.0", "method": method, "params": prepared}, self.max_frame_bytes)
        conn = await self._connection()
        try:
            conn.writer.write(frame)
            async with conn.write_lock:
                await conn.writer.drain()
        except (OSError, RuntimeError) as exc:
            self._fail(conn, f"send failed: {exc}")
            raise DaemonUnavailable(errno.ECONNRESET, f"costd: notification not sent: {exc}") from exc

    # ----------------------------------------------------------------------------------------
    # Methods of the protocol (the same signatures as costd.Client).

    async def ping(self) -> PingResult:
        """``{"pong": true, "version", "uptimeSeconds", "store", "ledger"}``."""
        return cast(PingResult, await self.call("ping", {}))

    async def route(
        self,
        task: Optional[str] = None,
        prompt: Optional[Any] = None,
        *,
        inputTokens: Optional[int] = None,
        user: Optional[str] = None,
        feature: Optional[str] = None,
        model: Optional[str] = None,
        input_tokens: Optional[int] = None,
        **extra: Any,
    ) -> RouteResult:
        """Picks a model tier: ``{"model", "tier", "reason", "maxTokens", "detail", ...}``."""
        return cast(RouteResult, await self.call("route", collect_params("route", locals(), extra)))

    async def cache_get(self, model: str, prompt: Any, namespace: Optional[str] = None, **extra: Any) -> CacheGetResult:
        """Looks ``prompt`` (any JSON value) up: ``{"hit": true, "value", "layer"}`` or ``{"hit": false}``."""
        return cast(CacheGetResult, await self.call("cacheGet", collect_params("cacheGet", locals(), extra)))

    async def cache_set(
        self,
        model: str,
        prompt: Any,
        value: Any,
        ttl: Optional[float] = None,
        namespace: Optional[str] = None,
        **extra: Any,
    ) -> CacheSetResult:
        """Stores ``value`` (any JSON value) for ``ttl`` seconds: ``{"stored": true, "ttl"}``."""
        return cast(CacheSetResult, await self.call("cacheSet", collect_params("cacheSet", locals(), extra)))

    async def cache_delete(
        self, model: str, prompt: Any, namespace: Optional[str] = None, **extra: Any
    ) -> CacheDeleteResult:
        """``{"deleted": bool}``."""
        return cast(CacheDeleteResult, await self.call("cacheDelete", collect_params("cacheDelete", locals(), extra)))

    async def cache_flush(self, namespace: Optional[str] = None, **extra: Any) -> CacheFlushResult:
        """Drops every entry of ``namespace`` (every entry when ``None``): ``{"flushed": n}``."""
        return cast(CacheFlushResult, await self.call("cacheFlush", collect_params("cacheFlush", locals(), extra)))

    async def record(
        self,
        model: str,
        inputTokens: Optional[int] = None,
        outputTokens: Optional[int] = None,
        *,
        cachedInputTokens: Optional[int] = None,
        cacheWriteInputTokens: Optional[int] = None,
        images: Optional[int] = None,
        imageQuality: Optional[str] = None,
        batch: Optional[bool] = None,
        cached: Optional[bool] = None,
        user: Optional[str] = None,
        feature: Optional[str] = None,
        costUsd: Optional[float] = None,
        recordId: Optional[str] = None,
        reservation: Optional[str] = None,
        routeId: Optional[str] = None,
        hitId: Optional[str] = None,
        input_tokens: Optional[int] = None,
        output_tokens: Optional[int] = None,
        cached_input_tokens: Optional[int] = None,
        cache_write_input_tokens: Optional[int] = None,
        image_quality: Optional[str] = None,
        cost_usd: Optional[float] = None,
        record_id: Optional[str] = None,
        route_id: Optional[str] = None,
        hit_id: Optional[str] = None,
        **extra: Any,
    ) -> RecordResult:
        """Records a call's spend; see :meth:`costd.Client.record`."""
        return cast(RecordResult, await self.call("record", collect_params("record", locals(), extra)))

    async def report(
        self,
        date: Optional[str] = None,
        period: Optional[str] = None,
        days: Optional[int] = None,
        **extra: Any,
    ) -> ReportResult:
        """Spend, cache and savings of a day (or ``period="month"``); ``days=N`` adds ``daily``."""
        return cast(ReportResult, await self.call("report", collect_params("report", locals(), extra)))

    async def estimate(
        self,
        model: str,
        dailyRequests: Optional[float] = None,
        avgInputTokens: Optional[float] = None,
        avgOutputTokens: Optional[float] = None,
        days: Optional[int] = None,
        *,
        daily_requests: Optional[float] = None,
        avg_input_tokens: Optional[float] = None,
        avg_output_tokens: Optional[float] = None,
        **extra: Any,
    ) -> EstimateResult:
        """Projects the cost of a workload: ``{"model", "perRequestUsd", "dailyUsd", "monthlyUsd", "days"}``."""
        return cast(EstimateResult, await self.call("estimate", collect_params("estimate", locals(), extra)))

    async def cache_release(
        self, model: str, prompt: Any, lease: str, namespace: Optional[str] = None, **extra: Any
    ) -> CacheReleaseResult:
        """Gives a single-flight ``lease`` up (the call failed), so a waiting caller takes it at once: ``{"released": bool}``."""
        return cast(CacheReleaseResult, await self.call("cacheRelease", collect_params("cacheRelease", locals(), extra)))

    async def reserve(
        self,
        model: str,
        inputTokens: Optional[int] = None,
        maxOutputTokens: Optional[int] = None,
        *,
        user: Optional[str] = None,
        feature: Optional[str] = None,
        ttl: Optional[float] = None,
        input_tokens: Optional[int] = None,
        max_output_tokens: Optional[int] = None,
        **extra: Any,
    ) -> ReserveResult:
        """Sets a call's worst-case cost aside before it is made (refused with ``BudgetExceeded``
        past a hard budget): ``{"reservation", "amountUsd", "expiresAt", "day", "month"}``.
        Settle it with ``record(reservation=...)`` or give it back with ``release_reservation``."""
        return cast(ReserveResult, await self.call("reserve", collect_params("reserve", locals(), extra)))

    async def release_reservation(self, reservation: str, **extra: Any) -> ReleaseReservationResult:
        """Gives a reservation's money back without recording anything: ``{"released": bool}``."""
        return cast(
            ReleaseReservationResult,
            await self.call("releaseReservation", collect_params("releaseReservation", locals(), extra)),
        )

    async def tokens(
        self,
        text: Optional[str] = None,
        *,
        messages: Optional[Sequence[Mapping[str, Any]]] = None,
        model: Optional[str] = None,
        encoding: Optional[str] = None,
        **extra: Any,
    ) -> TokensResult:
        """Exact token count of ``text`` or chat ``messages``, as tiktoken counts: ``{"tokens", "encoding"}``."""
        return cast(TokensResult, await self.call("tokens", collect_params("tokens", locals(), extra)))

    async def subscribe(
        self, since: Optional[str] = None, *, ping_every: float = 60.0, reconnect_for: float = 30.0, **extra: Any
    ) -> AsyncIterator[Dict[str, Any]]:
        """:meth:`costd.Client.subscribe` for asyncio: an async iterator of the alerts."""
        own = AsyncClient(self.path, timeout=self.timeout)
        own._notified = asyncio.Event()
        last = since
        try:
            while True:
                deadline = time.monotonic() + reconnect_for
                while True:
                    try:
                        await own.call("subscribe", collect_params("subscribe", {"since": last}, extra))
                        break
                    except DaemonUnavailable:
                        if time.monotonic() > deadline:
                            raise
                        await asyncio.sleep(0.2)
                subscribed = own._conn
                while subscribed is not None and own._conn is subscribed and subscribed.usable:
                    while own._notifications:
                        message = own._notifications.popleft()
                        alert = message.get("params")
                        if message.get("method") == "alert" and isinstance(alert, dict):
                            last = alert.get("id", last)
                            yield alert
                    own._notified.clear()
                    if own._notifications:
                        continue
                    try:
                        await asyncio.wait_for(own._notified.wait(), ping_every)
                    except asyncio.TimeoutError:
                        await own.ping()  # keeps the connection from the idle timeout
        finally:
            await own.aclose()

    cacheGet = cache_get
    cacheSet = cache_set
    cacheDelete = cache_delete
    cacheFlush = cache_flush
    cacheRelease = cache_release
    releaseReservation = release_reservation
