"""The protocol torture test, against a real daemon with small limits."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import costd

HERE = Path(__file__).resolve().parent
LIMITS = "[limits]\nmax_frame_bytes = 65536\nmax_string_bytes = 4096\n"


def test_torture(make_daemon) -> None:
    daemon = make_daemon("torture", config=LIMITS)
    frames = int(os.environ.get("COSTD_TORTURE_FRAMES", "100000"))
    result = subprocess.run(
        [sys.executable, str(HERE / "torture.py"), "--socket", daemon.socket, "--frames", str(frames),
         "--p99-ms", os.environ.get("COSTD_TORTURE_P99_MS", "10")],
        capture_output=True, text=True, timeout=900,
    )
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    # Still up, still answering, and it stops cleanly: nothing crashed.
    with costd.Client(daemon.socket) as client:
        assert client.ping()["pong"] is True
    assert daemon.stop() == 0
