"""Python client for costd, the local LLM cost sidecar.

costd caches LLM responses, routes requests to model tiers and keeps a durable spend ledger
with budgets. This package talks to it over its Unix socket (length-prefixed JSON-RPC 2.0)
with the standard library only::

    import costd

    with costd.Client() as c:                      # $COSTD_SOCKET, $XDG_RUNTIME_DIR/costd.sock,
        c.record("gpt-4o", input_tokens=1000,      # or /run/costd/costd.sock
                 output_tokens=500, user="ann")
        print(c.report()["totalCostUsd"])
"""

from ._wire import DEFAULT_MAX_FRAME_BYTES, SYSTEM_SOCKET_PATH, resolve_socket_path
from .aio import AsyncClient
from .client import DEFAULT_TIMEOUT, Client
from .compat import CostMonitor, LLMCache
from .errors import (
    BackendUnavailable,
    BudgetExceeded,
    CostdError,
    DaemonUnavailable,
    InternalError,
    InvalidParams,
    InvalidRequest,
    LeaseMismatch,
    MethodNotFound,
    Overloaded,
    ParseError,
    PayloadTooLarge,
    ShuttingDown,
    Timeout,
    UnknownModel,
    error_from_response,
)
from .gateway import async_openai_client, openai_client, resolve_http_socket_path
from .llm import acached_completion, cached, cached_completion, to_jsonable, usage_from_response

__version__ = "0.2.0"  # the daemon's (Sources/CostdCore/Version.swift); a test keeps them equal

__all__ = [
    "Client",
    "AsyncClient",
    "LLMCache",
    "CostMonitor",
    "cached_completion",
    "acached_completion",
    "cached",
    "to_jsonable",
    "usage_from_response",
    "resolve_socket_path",
    "openai_client",
    "async_openai_client",
    "resolve_http_socket_path",
    "DEFAULT_TIMEOUT",
    "DEFAULT_MAX_FRAME_BYTES",
    "SYSTEM_SOCKET_PATH",
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
    "__version__",
]
