"""A real redis-server on a Unix socket in a temporary directory, for tests (started with an
append-only file synced always, no RDB snapshots)."""
from __future__ import annotations

import os
import signal
import subprocess
import time


class Redis:
    def __init__(self, root: str) -> None:
        self.root = root
        self.socket = os.path.join(root, "redis.sock")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return "unix://" + self.socket

    def start(self) -> "Redis":
        self.process = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", self.socket, "--unixsocketperm", "700", "--dir", self.root,
             "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--logfile", os.path.join(self.root, "redis.log")],
        )
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.cli("PING").strip() == "PONG":
                return self
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def cli(self, *args: str) -> str:
        result = subprocess.run(["redis-cli", "-s", self.socket, *args], capture_output=True, text=True, timeout=10)
        return result.stdout

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.kill()
            self.process.wait()

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)
