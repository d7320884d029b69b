"""Fixtures for the integration tests: real costd daemons and the real costctl binary.

The binaries are ``$COSTD_BIN`` and ``$COSTCTL_BIN``, else ``<repo>/.build/debug/costd`` and
``<repo>/.build/debug/costctl``. Every daemon runs on its own temporary socket and state
directory and is stopped (SIGTERM, then SIGKILL) when its test ends, whatever the outcome;
the temporary directory is removed. A daemon that does not exit 0 on SIGTERM fails the test.

    COSTD_BIN=/path/costd COSTCTL_BIN=/path/costctl python3 -m pytest -q tests/integration
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator, List, Optional

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "support"))

from fake_upstream import FakeUpstream  # noqa: E402
from redis_server import Redis  # noqa: E402


def _binary(env_name: str, name: str) -> str:
    path = os.environ.get(env_name)
    if path:
        if not os.access(path, os.X_OK):
            pytest.fail(f"{env_name}={path} is not an executable file", pytrace=False)
        return path
    fallback = REPO / ".build" / "debug" / name
    if os.access(fallback, os.X_OK):
        return str(fallback)
    pytest.fail(f"no {name} binary: set {env_name}, or build {fallback}", pytrace=False)
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def costd_bin() -> str:
    return _binary("COSTD_BIN", "costd")


@pytest.fixture(scope="session")
def costctl_bin() -> str:
    return _binary("COSTCTL_BIN", "costctl")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the daemon may still lose a race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """One costd process on a temporary socket and state directory."""

    def __init__(self, binary: str, root: str, args: List[str]):
        self.binary = binary
        self.root = root
        self.socket = os.path.join(root, "costd.sock")
        # The HTTP endpoint's socket, beside the RPC socket by default.
        self.http_socket = os.path.join(root, "costd-http.sock")
        self.state_dir = os.path.join(root, "state")
        self.log_path = os.path.join(root, "costd.log")
        self.args = list(args)
        self.process: Optional[subprocess.Popen] = None
        self.metrics_port: Optional[int] = None

    @property
    def metrics_url(self) -> str:
        assert self.metrics_port is not None, "started without --metrics-listen"
        return f"http://127.0.0.1:{self.metrics_port}"

    def start(self, metrics: bool = False, timeout: float = 10.0) -> "Daemon":
        # A free port can be taken between our probe and the daemon's bind: then costd exits
        # at start, and we try another port.
        attempts = 5 if metrics else 1
        for attempt in range(attempts):
            args = list(self.args)
            if metrics:
                self.metrics_port = free_port()
                args += ["--metrics-listen", f"127.0.0.1:{self.metrics_port}"]
            try:
                return self._start(args, timeout)
            except _ExitedAtStart:
                if attempt == attempts - 1 or "in use" not in self.log():
                    raise
        raise AssertionError("unreachable")

    def _start(self, args: List[str], timeout: float) -> "Daemon":
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "--socket", self.socket, "--state-dir", self.state_dir, *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + timeout
        socket_ready = False
        metrics_ready = self.metrics_port is None or "--metrics-listen" not in args
        while True:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise _ExitedAtStart(f"costd exited with {code} at start:\n{self.log()}")
            if not socket_ready:
                socket_ready = _accepts(socket.AF_UNIX, self.socket)
            if socket_ready and not metrics_ready:
                metrics_ready = _accepts(socket.AF_INET, ("127.0.0.1", self.metrics_port))
            if socket_ready and metrics_ready:
                # costd binds the Unix socket before the metrics port, and exits when the
                # port is taken: make sure it is still alive after both accepted.
                time.sleep(0.02)
                if self.process.poll() is None:
                    return self
                continue
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"costd did not accept connections within {timeout} s:\n{self.log()}")
            time.sleep(0.01)

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is not None:
            return process.returncode
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise RuntimeError(f"costd ignored SIGTERM for {timeout} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return Path(self.log_path).read_text(errors="replace")[-4000:]
        except OSError:
            return ""


class _ExitedAtStart(RuntimeError):
    pass


def _accepts(family: int, address) -> bool:
    probe = socket.socket(family, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(address)
        return True
    except OSError:
        return False
    finally:
        probe.close()


def _daemon_factory(costd_bin: str) -> Iterator[Callable[..., Daemon]]:
    made: List[Daemon] = []
    roots: List[str] = []

    def make(*args: str, metrics: bool = False) -> Daemon:
        # A short path under /tmp: Unix socket paths are limited to ~107 bytes.
        root = tempfile.mkdtemp(prefix="costd-it-", dir="/tmp")
        roots.append(root)
        daemon = Daemon(costd_bin, root, list(args))
        made.append(daemon)
        return daemon.start(metrics=metrics)

    problems: List[str] = []
    try:
        yield make
    finally:
        for daemon in made:
            was_running = daemon.process is not None and daemon.process.poll() is None
            try:
                code = daemon.stop()
            except Exception as exc:  # pragma: no cover - a daemon that ignored SIGTERM
                if daemon.process is not None:
                    daemon.process.kill()
                    daemon.process.wait()
                problems.append(str(exc))
                continue
            if was_running and code != 0:
                problems.append(f"costd exited with {code} on SIGTERM (expected 0):\n{daemon.log()}")
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def make_daemon(costd_bin: str) -> Iterator[Callable[..., Daemon]]:
    """``make_daemon("--daily-budget", "5", metrics=True)`` starts a daemon; all stop at the end."""
    yield from _daemon_factory(costd_bin)


@pytest.fixture(scope="module")
def make_module_daemon(costd_bin: str) -> Iterator[Callable[..., Daemon]]:
    """Like ``make_daemon``, for daemons shared by the tests of one module."""
    yield from _daemon_factory(costd_bin)


@pytest.fixture
def fake_upstream() -> Iterator[FakeUpstream]:
    """A fake OpenAI/Anthropic provider on 127.0.0.1 (see tests/support/fake_upstream.py)."""
    server = FakeUpstream().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_server() -> Iterator[Redis]:
    """A real redis-server on a Unix socket in a temporary directory."""
    root = tempfile.mkdtemp(prefix="costd-redis-", dir="/tmp")
    server = Redis(root).start()
    try:
        yield server
    finally:
        server.kill()
        shutil.rmtree(root, ignore_errors=True)
