"""A client made on first use, shared by the adapters (LangChain, LiteLLM): they work with no
arguments on the default socket, or with a given client."""

from __future__ import annotations

import threading
from typing import Optional

from .client import Client


class LazyClient:
    """The given :class:`Client`, or one on ``socket`` (the default socket when ``None``) made
    on first use. ``socket`` is where async calls go too: a given client's path."""

    def __init__(self, client: Optional[Client], socket: Optional[str]) -> None:
        self.socket = socket if socket is not None or client is None else client.path
        self._client = client
        self._lock = threading.Lock()

    def get(self) -> Client:
        with self._lock:
            if self._client is None:
                self._client = Client(self.socket)
            return self._client
