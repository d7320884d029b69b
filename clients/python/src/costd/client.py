"""The synchronous client: one connection, shared by threads under a lock."""

from __future__ import annotations

import errno
import itertools
import os
import collections
import socket
import threading
import time
from typing import Any, Deque, Dict, Iterator, Mapping, Optional, Sequence, cast

from . import _wire
from ._wire import PathLike, collect_params
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

__all__ = ["Client", "DEFAULT_TIMEOUT"]

#: Seconds to wait for the daemon to connect and answer one call.
DEFAULT_TIMEOUT = 30.0


class _Broken(Exception):
    """The connection broke; ``delivered`` says whether the request may have reached the daemon."""

    def __init__(self, reason: str, delivered: bool) -> None:
        super().__init__(reason)
        self.delivered = delivered


class Client:
    """A synchronous costd client.

    One Unix-socket connection, opened on first use and shared by every thread (calls are
    serialised by a lock). When the connection breaks (the daemon restarted), the next call
    reconnects; a call whose answer was lost is sent once more after reconnecting when that is
    safe: every method except ``record`` reads or sets state idempotently, and ``record`` always
    carries a ``recordId`` (one is generated when you give none), so the daemon counts it once.

    >>> with Client() as costd:             # $COSTD_SOCKET, $XDG_RUNTIME_DIR/costd.sock, ...
    ...     costd.record("gpt-4o", input_tokens=1000, output_tokens=500, user="ann")

    :param path: the socket; by default resolved like the daemon does.
    :param timeout: seconds to connect and to wait for one answer (``None``: wait forever).
    :param max_frame_bytes: refuse to send a larger frame (raises :class:`PayloadTooLarge`
        without contacting the daemon); ``None`` to leave the check to the daemon.
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
        self._lock = threading.RLock()
        self._sock: Optional[socket.socket] = None
        self._pid = os.getpid()
        self._ids = itertools.count(1)
        #: Notifications (a subscription's alerts) read while waiting for an answer.
        self._notifications: Deque[Dict[str, Any]] = collections.deque()

    # ----------------------------------------------------------------------------------------
    # Connection

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Clients made implicitly (LLMCache(), CostMonitor()) are rarely closed by hand.
        sock = getattr(self, "_sock", None)
        if sock is not None:
            try:
                sock.close()
            except Exception:
                pass

    def __repr__(self) -> str:
        return f"<costd.Client path={self.path!r} connected={self.connected}>"

    @property
    def connected(self) -> bool:
        """Whether a connection is open (it may still turn out broken on the next call)."""
        return self._sock is not None and self._pid == os.getpid()

    def close(self) -> None:
        """Closes the connection; the next call opens a new one."""
        with self._lock:
            self._drop()

    def connect(self) -> None:
        """Opens the connection now (calls open it on demand). Raises :class:`DaemonUnavailable`."""
        with self._lock:
            self._ensure()

    def _drop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def _ensure(self) -> socket.socket:
        if self._pid != os.getpid():
            # A forked child must not share the parent's stream.
            self._sock = None
            self._pid = os.getpid()
        if self._sock is not None:
            return self._sock
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except socket.timeout:
            sock.close()
            raise Timeout(errno.ETIMEDOUT, f"costd: timed out connecting to {self.path}") from None
        except OSError as exc:
            sock.close()
            raise DaemonUnavailable(
                exc.errno, f"costd is not reachable at {self.path}: {exc.strerror or exc}"
            ) from exc
        self._sock = sock
        self.connections_opened += 1
        return sock

    def _recv_exact(self, sock: socket.socket, size: int) -> bytes:
        chunks = []
        remaining = size
        while remaining:
            try:
                chunk = sock.recv(min(remaining, 1 << 20))
            except socket.timeout:
                raise
            except OSError as exc:
                raise _Broken(f"receive failed: {exc}", delivered=True) from exc
            if not chunk:
                raise _Broken("the daemon closed the connection", delivered=True)
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def _read_frame(self, sock: socket.socket) -> Any:
        (size,) = _wire.HEADER.unpack(self._recv_exact(sock, 4))
        body = self._recv_exact(sock, size)
        try:
            return _wire.decode_body(body)
        except ValueError as exc:
            raise _Broken(f"undecodable frame from costd: {exc}", delivered=True) from exc

    def _read_answer(self, sock: socket.socket, request_id: int) -> Dict[str, Any]:
        while True:
            message = self._read_frame(sock)
            if isinstance(message, dict):
                if "method" in message and "id" not in message:
                    self._notifications.append(message)  # an alert of a subscription
                    continue
                answer_id = message.get("id")
                if answer_id == request_id:
                    return message
                if answer_id is None and "error" in message:
                    # Errors found before the id could be read (frame too large, nesting,
                    # parse): with one call in flight, it is ours.
                    return message
            # An answer to something else (cannot happen with one call in flight): skip it.

    def _read_pending_error(self, sock: socket.socket) -> Optional[Dict[str, Any]]:
        """After a failed send: the error frame the daemon may have sent before closing
        (it rejects an oversized frame from its header alone)."""
        try:
            sock.settimeout(0.5)
            message = self._read_frame(sock)
        except Exception:
            return None
        if isinstance(message, dict) and "error" in message:
            return message
        return None

    def _peer_closed(self, sock: socket.socket) -> bool:
        """Whether the daemon has closed this connection (it restarted, or closed it after an
        oversized frame), seen without blocking before a request is sent on it."""
        try:
            sock.setblocking(False)  # a socket with a timeout would wait in recv
            return sock.recv(1, socket.MSG_PEEK) == b""
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True
        finally:
            sock.settimeout(self.timeout)

    def _exchange(self, frame: bytes, request_id: int) -> Dict[str, Any]:
        sock = self._ensure()
        if self._peer_closed(sock):
            self._drop()
            sock = self._ensure()
        try:
            sock.sendall(frame)
        except socket.timeout:
            self._drop()
            raise Timeout(errno.ETIMEDOUT, f"costd: timed out sending to {self.path}") from None
        except OSError as exc:
            pending = self._read_pending_error(sock)
            self._drop()
            if pending is not None:
                return pending
            raise _Broken(f"send failed: {exc}", delivered=False) from exc
        try:
            return self._read_answer(sock, request_id)
        except socket.timeout:
            self._drop()
            raise Timeout(errno.ETIMEDOUT, f"costd: no answer within {self.timeout} s") from None
        except _Broken:
            self._drop()
            raise

    # ----------------------------------------------------------------------------------------
    # Calls

    def call(
        self,
        method: str,
        params: Optional[Mapping[str, Any]] = None,
        *,
        idempotent: Optional[bool] = None,
    ) -> Any:
        """Calls any method (also ones added after this client was written) and returns its
        ``result``; raises the :class:`CostdError` subclass of an error answer.

        ``params`` is sent as given (wire names). A ``record`` without ``recordId`` gets one.
        ``idempotent`` says whether the call may be sent again when its answer was lost to a
        broken connection; by default only methods known to be safe are (``record`` with its
        ``recordId``). A request that provably never reached the daemon is always resent.
        """
        prepared = _wire.prepare_call(method, params)
        may_repeat = _wire.retry_safe(method, prepared, idempotent)
        with self._lock:
            request_id = next(self._ids)
            frame = _wire.encode_frame(
                _wire.request_message(method, prepared, request_id), self.max_frame_bytes
            )
            for attempt in (1, 2):
                try:
                    answer = self._exchange(frame, request_id)
                except _Broken as broken:
                    if attempt == 1 and (may_repeat or not broken.delivered):
                        continue
                    raise DaemonUnavailable(
                        errno.ECONNRESET, f"costd connection lost during {method}: {broken}"
                    ) from broken
                try:
                    return _wire.result_or_raise(answer)
                except ShuttingDown as shutting:
                    # This daemon is going away; a restarted one may take the call.
                    self._drop()
                    if attempt == 1 and may_repeat:
                        try:
                            self._ensure()
                        except DaemonUnavailable:
                            raise shutting from None
                        continue
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def notify(self, method: str, params: Optional[Mapping[str, Any]] = None) -> None:
        """Sends a notification (no ``id``): the daemon executes it (a ``record`` is counted)
        but never answers, so its errors are not seen. Raises :class:`DaemonUnavailable`
        only when the socket cannot be reached."""
        prepared = _wire.prepare_call(method, params)
        message = {"jsonrpc": "2.0", "method": method, "params": prepared}
        frame = _wire.encode_frame(message, self.max_frame_bytes)
        with self._lock:
            for attempt in (1, 2):
                sock = self._ensure()
                try:
                    sock.sendall(frame)
                    return
                except OSError as exc:
                    self._drop()
                    if attempt == 2:
                        raise DaemonUnavailable(exc.errno, f"costd: notification not sent: {exc}") from exc

    # ----------------------------------------------------------------------------------------
    # Methods of the protocol. Keyword arguments go by their wire names or snake_case aliases.

    def ping(self) -> PingResult:
        """``{"pong": true, "version", "uptimeSeconds", "store", "ledger"}``."""
        return cast(PingResult, self.call("ping", {}))

    def route(
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
        return cast(RouteResult, self.call("route", collect_params("route", locals(), extra)))

    def cache_get(self, model: str, prompt: Any, namespace: Optional[str] = None, **extra: Any) -> CacheGetResult:
        """Looks ``prompt`` (any JSON value) up: ``{"hit": true, "value", "layer"}`` or ``{"hit": false}``."""
        return cast(CacheGetResult, self.call("cacheGet", collect_params("cacheGet", locals(), extra)))

    def cache_set(
        self,
        model: str,
        prompt: Any,
        value: Any,
        ttl: Optional[float] = None,
        namespace: Optional[str] = None,
        **extra: Any,
    ) -> CacheSetResult:
        """Stores ``value`` (any JSON value) for ``ttl`` seconds: ``{"stored": true, "ttl"}``."""
        return cast(CacheSetResult, self.call("cacheSet", collect_params("cacheSet", locals(), extra)))

    def cache_delete(self, model: str, prompt: Any, namespace: Optional[str] = None, **extra: Any) -> CacheDeleteResult:
        """``{"deleted": bool}``."""
        return cast(CacheDeleteResult, self.call("cacheDelete", collect_params("cacheDelete", locals(), extra)))

    def cache_flush(self, namespace: Optional[str] = None, **extra: Any) -> CacheFlushResult:
        """Drops every entry of ``namespace`` (every entry when ``None``): ``{"flushed": n}``."""
        return cast(CacheFlushResult, self.call("cacheFlush", collect_params("cacheFlush", locals(), extra)))

    def record(
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
        """Records a call's spend (or, with ``cached=True``, what a cache hit saved).

        A ``recordId`` (uuid4) is generated when none is given, so a retry never counts twice.
        Returns ``{"recordId", "costUsd", "day", "month", "alerts", ...}``.
        """
        return cast(RecordResult, self.call("record", collect_params("record", locals(), extra)))

    def report(
        self,
        date: Optional[str] = None,
        period: Optional[str] = None,
        days: Optional[int] = None,
        **extra: Any,
    ) -> ReportResult:
        """Spend, cache and savings of a day (or ``period="month"``); ``days=N`` adds ``daily``."""
        return cast(ReportResult, self.call("report", collect_params("report", locals(), extra)))

    def estimate(
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
        return cast(EstimateResult, self.call("estimate", collect_params("estimate", locals(), extra)))

    def cache_release(
        self, model: str, prompt: Any, lease: str, namespace: Optional[str] = None, **extra: Any
    ) -> CacheReleaseResult:
        """Gives a single-flight ``lease`` up (the call failed), so a waiting caller takes it at once: ``{"released": bool}``."""
        return cast(CacheReleaseResult, self.call("cacheRelease", collect_params("cacheRelease", locals(), extra)))

    def reserve(
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
        return cast(ReserveResult, self.call("reserve", collect_params("reserve", locals(), extra)))

    def release_reservation(self, reservation: str, **extra: Any) -> ReleaseReservationResult:
        """Gives a reservation's money back without recording anything: ``{"released": bool}``."""
        return cast(
            ReleaseReservationResult,
            self.call("releaseReservation", collect_params("releaseReservation", locals(), extra)),
        )

    def tokens(
        self,
        text: Optional[str] = None,
        *,
        messages: Optional[Sequence[Mapping[str, Any]]] = None,
        model: Optional[str] = None,
        encoding: Optional[str] = None,
        **extra: Any,
    ) -> TokensResult:
        """Exact token count of ``text`` or chat ``messages``, as tiktoken counts: ``{"tokens", "encoding"}``."""
        return cast(TokensResult, self.call("tokens", collect_params("tokens", locals(), extra)))


    def subscribe(
        self, since: Optional[str] = None, *, ping_every: float = 60.0, reconnect_for: float = 30.0, **extra: Any
    ) -> Iterator[Dict[str, Any]]:
        """Budget alerts as they come: yields each ``alert`` notification's params, ``{"id",
        "scope", "period", "level", "spentUsd", "budgetUsd", "at"}``, those after ``since`` first.

        Runs on a connection of its own (this client's calls are not disturbed) and pings every
        ``ping_every`` seconds so that the daemon never closes it as idle. After a daemon restart
        it subscribes again from the last alert it yielded, so none is lost or repeated; it
        raises :class:`DaemonUnavailable` when the daemon stays away ``reconnect_for`` seconds.
        """
        own = Client(self.path, timeout=self.timeout)
        last = since
        try:
            while True:
                deadline = time.monotonic() + reconnect_for
                while True:
                    try:
                        own.call("subscribe", collect_params("subscribe", {"since": last}, extra))
                        break
                    except DaemonUnavailable:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.2)
                subscribed = own.connections_opened
                while own.connections_opened == subscribed:
                    while own._notifications:
                        message = own._notifications.popleft()
                        alert = message.get("params")
                        if message.get("method") == "alert" and isinstance(alert, dict):
                            last = alert.get("id", last)
                            yield alert
                    sock = own._sock
                    if sock is None:
                        break
                    try:
                        sock.settimeout(ping_every)
                        message = own._read_frame(sock)
                        if isinstance(message, dict) and "method" in message:
                            own._notifications.append(message)
                    except socket.timeout:
                        sock.settimeout(own.timeout)
                        own.ping()  # reconnects (and so subscribes again) if the daemon went away
                    except (_Broken, OSError):
                        own._drop()
                        break
        finally:
            own.close()

    # The wire names of the cache methods.
    cacheGet = cache_get
    cacheSet = cache_set
    cacheDelete = cache_delete
    cacheFlush = cache_flush
    cacheRelease = cache_release
    releaseReservation = release_reservation

