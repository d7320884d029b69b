"""Framing, socket resolution and parameter helpers shared by the sync and async clients."""

from __future__ import annotations

import json
import os
import re
import struct
import uuid
from typing import Any, Dict, FrozenSet, Mapping, Optional, Sequence, Union

from .errors import CostdError, PayloadTooLarge, error_from_response

#: 4-byte unsigned big-endian length prefix.
HEADER = struct.Struct(">I")
#: The daemon's default ``--max-frame-bytes`` (4 MiB).
DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024
#: The systemd socket unit's path, the last resort of socket resolution.
SYSTEM_SOCKET_PATH = "/run/costd/costd.sock"

PathLike = Union[str, "os.PathLike[str]"]


def resolve_socket_path(path: Optional[PathLike] = None) -> str:
    """The socket path, found the way the daemon finds it.

    ``path`` if given, else ``$COSTD_SOCKET``, else ``$XDG_RUNTIME_DIR/costd.sock``, else
    ``/run/costd/costd.sock``. Empty variables count as unset.
    """
    if path is not None:
        return os.fspath(path)
    env = os.environ.get("COSTD_SOCKET")
    if env:
        return env
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "costd.sock")
    return SYSTEM_SOCKET_PATH


def encode_frame(message: Any, max_frame_bytes: Optional[int] = DEFAULT_MAX_FRAME_BYTES) -> bytes:
    """One frame: the length prefix and the UTF-8 JSON of ``message``.

    Raises :class:`PayloadTooLarge` (without touching the socket) when the body is over
    ``max_frame_bytes``, ``ValueError`` for values JSON cannot carry (NaN, lone surrogates)
    and ``TypeError`` for objects that are not JSON.
    """
    text = json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        body = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"costd: a string holds a lone surrogate and is not valid UTF-8: {exc}") from None
    if max_frame_bytes is not None and len(body) > max_frame_bytes:
        raise PayloadTooLarge(
            -32002,
            f"payload too large: frame of {len(body)} bytes; the limit is {max_frame_bytes} (checked by the client)",
            {"limit": max_frame_bytes, "client": True},
        )
    return HEADER.pack(len(body)) + body


def request_message(method: str, params: Optional[Mapping[str, Any]], request_id: Any) -> Dict[str, Any]:
    message: Dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def decode_body(body: bytes) -> Any:
    return json.loads(body.decode("utf-8"))


def result_or_raise(response: Any) -> Any:
    """The ``result`` of an answer, or the :class:`CostdError` of its ``error``."""
    if not isinstance(response, dict):
        raise CostdError(-32603, f"unexpected answer from costd: {response!r}")
    if "error" in response and response["error"] is not None:
        raise error_from_response(response["error"])
    if "result" not in response:
        raise CostdError(-32603, f"answer from costd without result or error: {response!r}")
    return response["result"]


# --------------------------------------------------------------------------------------------
# Parameters: wire names (camelCase) and their snake_case aliases.

_CAMEL_RE = re.compile(r"_([a-z0-9])")
_SNAKE_RE = re.compile(r"(?<=[a-z0-9])([A-Z])")


def to_camel(name: str) -> str:
    """``input_tokens`` -> ``inputTokens`` (names without underscores are unchanged)."""
    return _CAMEL_RE.sub(lambda m: m.group(1).upper(), name)


def to_snake(name: str) -> str:
    """``inputTokens`` -> ``input_tokens``."""
    return _SNAKE_RE.sub(lambda m: "_" + m.group(1).lower(), name)


class _Unset:
    _instance: Optional["_Unset"] = None

    def __new__(cls) -> "_Unset":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


#: Marks an argument that was not given, where ``None`` (JSON null) is a valid value.
UNSET: Any = _Unset()

#: Parameters whose ``None`` means JSON null, not "not given".
_NULLABLE: FrozenSet[str] = frozenset(
    {"cacheGet.prompt", "cacheSet.prompt", "cacheSet.value", "cacheDelete.prompt"}
)

#: The wire names of each method's documented parameters.
METHOD_PARAMS: Dict[str, Sequence[str]] = {
    "ping": (),
    "route": ("task", "prompt", "inputTokens", "user", "feature", "model"),
    "cacheGet": ("model", "prompt", "namespace"),
    "cacheSet": ("model", "prompt", "value", "ttl", "namespace"),
    "cacheDelete": ("model", "prompt", "namespace"),
    "cacheFlush": ("namespace",),
    "record": (
        "model",
        "inputTokens",
        "outputTokens",
        "cachedInputTokens",
        "cacheWriteInputTokens",
        "images",
        "imageQuality",
        "batch",
        "cached",
        "user",
        "feature",
        "costUsd",
        "recordId",
        "reservation",
        "routeId",
        "hitId",
    ),
    "report": ("date", "period", "days"),
    "estimate": ("model", "dailyRequests", "avgInputTokens", "avgOutputTokens", "days"),
    "cacheRelease": ("model", "prompt", "namespace", "lease"),
    "reserve": ("model", "inputTokens", "maxOutputTokens", "user", "feature", "ttl"),
    "releaseReservation": ("reservation",),
    "subscribe": ("since",),
    "tokens": ("text", "messages", "model", "encoding"),
}


def _given(method: str, name: str, value: Any) -> bool:
    if value is UNSET:
        return False
    return value is not None or f"{method}.{name}" in _NULLABLE


def collect_params(method: str, args: Mapping[str, Any], extra: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Builds the ``params`` object of ``method`` from a method's arguments.

    ``args`` maps both wire names and their snake_case aliases to values (typically the
    method's ``locals()``); ``extra`` holds keyword arguments the method does not declare
    (parameters added to the protocol later), whose snake_case names are sent in camelCase.
    Giving a parameter under both names with different values is a ``TypeError``.
    """
    params: Dict[str, Any] = {}

    def put(wire: str, given_as: str, value: Any) -> None:
        if wire in params and params[wire] != value:
            raise TypeError(f"{method}(): parameter {wire!r} given twice (also as {given_as!r}) with different values")
        params[wire] = value

    for wire in METHOD_PARAMS.get(method, ()):
        for name in (wire, to_snake(wire)) if to_snake(wire) != wire else (wire,):
            value = args.get(name, UNSET)
            if _given(method, wire, value):
                put(wire, name, value)
    for name, value in (extra or {}).items():
        if value is UNSET or value is None:
            continue
        put(to_camel(name), name, value)
    return params


def new_record_id() -> str:
    return str(uuid.uuid4())


def prepare_call(method: str, params: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """A copy of ``params`` ready to send: ``record`` always gets a ``recordId``, so that a
    retry after a broken connection can never count a call twice."""
    prepared: Dict[str, Any] = dict(params) if params else {}
    if method == "record" and prepared.get("recordId") is None:
        prepared["recordId"] = new_record_id()
    return prepared


#: Methods that are safe to send again when the answer was lost (they read, or set a state
#: that a second send sets again).
IDEMPOTENT_METHODS: FrozenSet[str] = frozenset(
    {"ping", "route", "cacheGet", "cacheSet", "cacheDelete", "cacheFlush", "report", "estimate", "tokens"}
)


def retry_safe(method: str, params: Mapping[str, Any], idempotent: Optional[bool]) -> bool:
    """Whether a call whose answer was lost may be sent again."""
    if idempotent is not None:
        return idempotent
    if method == "record":
        return isinstance(params.get("recordId"), str)
    return method in IDEMPOTENT_METHODS

