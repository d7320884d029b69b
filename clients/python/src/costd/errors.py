"""Exceptions raised by the costd clients.

Every JSON-RPC error answer becomes a :class:`CostdError` (or the subclass for its code);
a socket that cannot be reached becomes :class:`DaemonUnavailable`, a
:class:`ConnectionError`.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Type

__all__ = [
    "CostdError",
    "ParseError",
    "InvalidRequest",
    "MethodNotFound",
    "InvalidParams",
    "InternalError",
    "BudgetExceeded",
    "UnknownModel",
    "PayloadTooLarge",
    "BackendUnavailable",
    "LeaseMismatch",
    "Overloaded",
    "ShuttingDown",
    "DaemonUnavailable",
    "Timeout",
    "error_from_response",
]


class CostdError(Exception):
    """A JSON-RPC error answered by the daemon.

    ``code``, ``message`` and ``data`` are the fields of the answer's ``error`` object.
    """

    #: The JSON-RPC code this class stands for (the base class takes any code).
    default_code: int = 0

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(code, message, data)
        self.code = code
        self.message = message
        self.data = data

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, data={self.data!r})"


class ParseError(CostdError):
    """-32700: the frame was not valid JSON or UTF-8."""

    default_code = -32700


class InvalidRequest(CostdError):
    """-32600: not a valid JSON-RPC request."""

    default_code = -32600


class MethodNotFound(CostdError):
    """-32601: the daemon has no such method (``data["method"]`` names it)."""

    default_code = -32601


class InvalidParams(CostdError):
    """-32602: a parameter is missing, of the wrong type or out of range."""

    default_code = -32602


class InternalError(CostdError):
    """-32603: a bug in the daemon."""

    default_code = -32603


class BudgetExceeded(CostdError):
    """-32000: a hard budget refuses the work."""

    default_code = -32000


class UnknownModel(CostdError):
    """-32001: no price for ``data["model"]`` and no ``costUsd`` given."""

    default_code = -32001


class PayloadTooLarge(CostdError):
    """-32002: a frame, string, array, nesting depth or batch over its limit (``data["limit"]``)."""

    default_code = -32002


class BackendUnavailable(CostdError):
    """-32003: the ledger cannot write to disk (or a required Redis is down)."""

    default_code = -32003


class LeaseMismatch(CostdError):
    """-32004, reserved: no costd sends it. A ``cacheSet`` whose lease has expired still stores
    and answers ``"leaseHeld": false``. Kept so that code catching it goes on importing."""

    default_code = -32004


class Overloaded(CostdError):
    """-32005: too many connections."""

    default_code = -32005


class ShuttingDown(CostdError):
    """-32006: the daemon is stopping."""

    default_code = -32006


class DaemonUnavailable(ConnectionError):
    """The daemon's socket cannot be reached, or the connection broke and could not be
    safely retried."""


class Timeout(DaemonUnavailable, TimeoutError):
    """No answer within the client's timeout."""


_BY_CODE: Dict[int, Type[CostdError]] = {
    cls.default_code: cls
    for cls in (
        ParseError,
        InvalidRequest,
        MethodNotFound,
        InvalidParams,
        InternalError,
        BudgetExceeded,
        UnknownModel,
        PayloadTooLarge,
        BackendUnavailable,
        LeaseMismatch,
        Overloaded,
        ShuttingDown,
    )
}


def error_class(code: int) -> Type[CostdError]:
    """The exception class for a JSON-RPC error code (:class:`CostdError` for unknown codes)."""
    return _BY_CODE.get(code, CostdError)


def error_from_response(error: Optional[Mapping[str, Any]]) -> CostdError:
    """Builds the exception for the ``error`` member of a JSON-RPC answer."""
    if not isinstance(error, Mapping):
        return InternalError(-32603, f"malformed error object from costd: {error!r}")
    code = error.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        return InternalError(-32603, f"malformed error object from costd: {dict(error)!r}", error.get("data"))
    message = error.get("message")
    return error_class(code)(code, str(message) if message is not None else "", error.get("data"))
