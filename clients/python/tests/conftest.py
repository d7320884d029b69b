"""Fixtures: a real costd daemon on a temporary socket and state directory.

The daemon binary is ``$COSTD_BIN``, else ``<repo>/.build/debug/costd``, else
``/tmp/costd-snapshot/costd``. Every daemon a test starts is stopped (SIGTERM, then SIGKILL)
when the test ends, whatever its outcome.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

import costd

REPO = Path(__file__).resolve().parents[3]
FALLBACKS = [REPO / ".build" / "debug" / "costd", Path("/tmp/costd-snapshot/costd")]


def daemon_binary() -> str:
    env = os.environ.get("COSTD_BIN")
    if env:
        if not os.access(env, os.X_OK):
            pytest.fail(f"COSTD_BIN={env} is not an executable file")
        return env
    for candidate in FALLBACKS:
        if os.access(candidate, os.X_OK):
            return str(candidate)
    pytest.fail("no costd binary: set COSTD_BIN, or build it (swift build) so .build/debug/costd exists")
    raise AssertionError("unreachable")


class Daemon:
    """One costd process; ``restart`` keeps the socket path and state directory."""

    def __init__(self, binary: str, root: str, extra_args: Optional[List[str]] = None, config: Optional[str] = None):
        self.binary = binary
        self.root = root
        self.socket = os.path.join(root, "costd.sock")
        self.state_dir = os.path.join(root, "state")
        self.log_path = os.path.join(root, "costd.log")
        self.extra_args = list(extra_args or [])
        if config is not None:
            config_path = os.path.join(root, "costd.toml")
            Path(config_path).write_text(config)
            self.extra_args += ["--config", config_path]
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.starts = 0

    def start(self, timeout: float = 10.0) -> "Daemon":
        assert self.process is None or self.process.poll() is not None, "already running"
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(
                [self.binary, "--socket", self.socket, "--state-dir", self.state_dir, *self.extra_args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        finally:
            log.close()
        self.starts += 1
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"costd exited with {self.process.returncode} at start:\n{self.log()}")
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(self.socket)
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"costd did not accept connections within {timeout} s:\n{self.log()}")
                time.sleep(0.005)
            finally:
                probe.close()

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return process.returncode if process is not None else None
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise RuntimeError(f"costd ignored SIGTERM for {timeout} s:\n{self.log()}")

    def restart(self) -> "Daemon":
        self.stop()
        return self.start()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        try:
            return Path(self.log_path).read_text(errors="replace")[-4000:]
        except OSError:
            return ""


@pytest.fixture
def make_daemon() -> Iterator:
    """Factory for daemons with options: ``make_daemon("--daily-budget", "1", config=...)``."""
    binary = daemon_binary()
    made: List[Daemon] = []
    roots: List[str] = []

    def make(*args: str, config: Optional[str] = None, start: bool = True) -> Daemon:
        # A short path: Unix socket paths are limited to ~107 bytes.
        root = tempfile.mkdtemp(prefix="costd-py-", dir="/tmp")
        roots.append(root)
        daemon = Daemon(binary, root, list(args), config)
        made.append(daemon)
        return daemon.start() if start else daemon

    try:
        yield make
    finally:
        for daemon in made:
            try:
                daemon.stop()
            except Exception:
                if daemon.process is not None:
                    daemon.process.kill()
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def daemon(make_daemon) -> Daemon:
    """A running daemon with a $50 daily and $1000 monthly budget."""
    return make_daemon("--daily-budget", "50", "--monthly-budget", "1000")


@pytest.fixture
def client(daemon: Daemon) -> Iterator[costd.Client]:
    with costd.Client(daemon.socket, timeout=10) as c:
        yield c
