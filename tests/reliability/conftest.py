"""Fixtures for the reliability tests: real costd daemons and real redis-servers on Unix sockets
in temporary directories, always stopped, even when a test fails."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "clients" / "python" / "src"))
sys.path.insert(0, str(ROOT / "tests" / "support"))

from redis_server import Redis  # noqa: E402


def costd_binary() -> str:
    return os.environ.get("COSTD_BIN") or str(ROOT / ".build" / "debug" / "costd")


def wait_for_socket(path: str, process: subprocess.Popen | None = None, timeout: float = 20) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}")
        try:
            with socket.socket(socket.AF_UNIX) as probe:
                probe.connect(path)
            return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"{path} never accepted a connection")


class Daemon:
    def __init__(self, root: str, name: str, config: str = "", args: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.name = name
        self.socket = os.path.join(root, f"{name}.sock")
        self.state = os.path.join(root, f"{name}-state")
        self.log_path = os.path.join(root, f"{name}.log")
        self.config = os.path.join(root, f"{name}.toml")
        Path(self.config).write_text(config)
        self.args = args or []
        self.env = env or {}
        self.process: subprocess.Popen | None = None

    def start(self) -> "Daemon":
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [costd_binary(), "--socket", self.socket, "--state-dir", self.state, "--config", self.config, *self.args],
            stdout=log, stderr=log, env={**os.environ, **self.env},
        )
        wait_for_socket(self.socket, self.process)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    @property
    def log(self) -> str:
        return Path(self.log_path).read_text(errors="replace") if os.path.exists(self.log_path) else ""

    def resident_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))


@pytest.fixture
def workdir() -> Iterator[str]:
    root = tempfile.mkdtemp(prefix="costd-rel-")
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def make_daemon(workdir: str) -> Iterator[Callable[..., Daemon]]:
    daemons: list[Daemon] = []

    def make(name: str = "costd", config: str = "", args: list[str] | None = None, env: dict[str, str] | None = None) -> Daemon:
        daemon = Daemon(workdir, name, config, args, env)
        daemons.append(daemon)
        return daemon.start()

    yield make
    for daemon in daemons:
        daemon.kill()


@pytest.fixture
def redis(workdir: str) -> Iterator[Redis]:
    server = Redis(workdir).start()
    yield server
    server.kill()


class NotifyListener:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, root: str) -> None:
        self.path = os.path.join(root, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []
        self.running = True
        self.thread = threading.Thread(target=self.listen, daemon=True)
        self.thread.start()

    def listen(self) -> None:
        while self.running:
            try:
                self.messages.append((time.time(), self.sock.recv(4096).decode()))
            except socket.timeout:
                continue
            except OSError:
                return

    def count(self, message: str, since: float) -> int:
        return sum(1 for when, text in list(self.messages) if text == message and when >= since)

    def close(self) -> None:
        self.running = False
        self.thread.join()
        self.sock.close()


@pytest.fixture
def notify_listener(workdir: str) -> Iterator[NotifyListener]:
    listener = NotifyListener(workdir)
    yield listener
    listener.close()
