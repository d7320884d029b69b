"""The OpenAI SDK pointed at costd's HTTP endpoint, over its Unix socket.

costd serves an OpenAI-compatible API (``/v1/chat/completions``, ``/v1/embeddings``,
``/v1/responses``, Anthropic's ``/v1/messages``, streams included) on a Unix socket beside its
RPC socket. Calls made through it are routed, cached, budgeted and recorded by the daemon,
with no change to the program but the client it builds::

    import costd

    client = costd.openai_client()          # an openai.OpenAI over costd's HTTP socket
    reply = client.chat.completions.create(model="gpt-4o-mini", temperature=0,
                                           messages=[{"role": "user", "content": "hi"}])

The socket is found the way the daemon picks it: ``socket`` if given, else
``$COSTD_HTTP_SOCKET``, else beside ``$COSTD_SOCKET`` (``costd.sock`` -> ``costd-http.sock``),
else ``$XDG_RUNTIME_DIR/costd-http.sock``, else ``/run/costd/http.sock``. The API key is the
SDK's own (``api_key=`` or ``$OPENAI_API_KEY``); costd passes it upstream untouched and never
stores it. Programs that cannot take a client object use ``--http-listen`` and
``OPENAI_BASE_URL=http://127.0.0.1:PORT/v1`` instead.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Optional

from ._wire import PathLike

SYSTEM_HTTP_SOCKET_PATH = "/run/costd/http.sock"

#: The base URL the SDK is given; the host is not used (the transport dials the socket).
BASE_URL = "http://costd/v1"


def resolve_http_socket_path(socket: Optional[PathLike] = None) -> str:
    """The HTTP endpoint's socket, found the way the daemon picks it."""
    if socket is not None:
        return os.fspath(socket)
    env = os.environ.get("COSTD_HTTP_SOCKET")
    if env:
        return env
    rpc = os.environ.get("COSTD_SOCKET")
    if rpc:
        return (rpc[: -len(".sock")] if rpc.endswith(".sock") else rpc) + "-http.sock"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "costd-http.sock")
    return SYSTEM_HTTP_SOCKET_PATH


def _openai() -> Any:
    try:
        return importlib.import_module("openai")
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError('costd.openai_client needs the OpenAI SDK: pip install "costd[openai]"') from exc


def _httpx_for(client_class: Any) -> Any:
    """The httpx module the installed SDK is built on (``httpx``, or ``httpx2`` for openai 3)."""
    for base in client_class.__mro__:
        module = base.__module__.split(".")[0]
        if module.startswith("httpx"):
            return importlib.import_module(module)
    return importlib.import_module("httpx")  # pragma: no cover


#: The key given to an SDK that has none; removed from each request before it leaves, so that
#: costd adds the upstream's own key (``key_file``) to it.
NO_KEY = "costd-no-key"


def _without_placeholder_key(request: Any) -> None:
    if request.headers.get("authorization") == f"Bearer {NO_KEY}":
        del request.headers["authorization"]


async def _without_placeholder_key_async(request: Any) -> None:
    _without_placeholder_key(request)


def _build(client_class: Any, http_client_class: Any, transport: Any, hook: Any, kwargs: dict) -> Any:
    kwargs.setdefault("base_url", BASE_URL)
    # The SDK refuses to start without a key. A program that relies on costd's upstream
    # key_file has none: it gets a placeholder that never leaves this process.
    keyless = kwargs.get("api_key") is None and not os.environ.get("OPENAI_API_KEY")
    if keyless:
        kwargs["api_key"] = NO_KEY
    if "http_client" not in kwargs:
        kwargs["http_client"] = http_client_class(transport=transport, event_hooks={"request": [hook]} if keyless else {})
    return client_class(**kwargs)


def openai_client(socket: Optional[PathLike] = None, **kwargs: Any) -> Any:
    """An ``openai.OpenAI`` whose requests go to costd's HTTP endpoint on its Unix socket.

    Every keyword argument goes to ``openai.OpenAI`` (``api_key``, ``timeout``,
    ``max_retries``, ``default_headers`` such as ``{"x-costd-feature": "search"}``).
    """
    openai = _openai()
    transport = _httpx_for(openai.DefaultHttpxClient).HTTPTransport(uds=resolve_http_socket_path(socket))
    return _build(openai.OpenAI, openai.DefaultHttpxClient, transport, _without_placeholder_key, kwargs)


def async_openai_client(socket: Optional[PathLike] = None, **kwargs: Any) -> Any:
    """An ``openai.AsyncOpenAI`` over costd's HTTP socket (see :func:`openai_client`)."""
    openai = _openai()
    transport = _httpx_for(openai.DefaultAsyncHttpxClient).AsyncHTTPTransport(uds=resolve_http_socket_path(socket))
    return _build(openai.AsyncOpenAI, openai.DefaultAsyncHttpxClient, transport, _without_placeholder_key_async, kwargs)
