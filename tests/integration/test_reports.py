"""``costctl report`` as people see it: the HTML page (rendered by headless Chromium) and the
terminal report under a real pseudo-terminal, piped, with NO_COLOR, and with ``--watch``.

Chromium is Debian's ``chromium`` package (/usr/bin/chromium); the HTML rendering test is
skipped, saying so, only when it is not installed. The screenshot is decoded by the small
pure-Python PNG reader below (no Pillow).
"""

from __future__ import annotations

import errno
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import zlib
from collections import Counter
from html.parser import HTMLParser
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import pytest

import costd

GPT4O = 0.0075  # 1000 input + 500 output tokens of gpt-4o
GPT4O_MINI = 0.00045  # the same tokens on gpt-4o-mini
TOTAL = 2 * GPT4O + GPT4O_MINI
DAILY_BUDGET = 0.05  # the day is then about 31% spent: the budget bar has full blocks
ODD_USER = '<b>Zoë & "co"</b>'

ANSI_SGR = re.compile(rb"\x1b\[[0-9;]*m")
ANSI_ANY = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
CLEAR_HOME = b"\x1b[H\x1b[J"
SPARK = "▁▂▃▄▅▆▇"
SPARKLINE = re.compile(f"[{SPARK}█]{{7,}}")


def money(amount: float) -> List[str]:
    """Ways a report may print an amount of USD: $0.01545, $0.0155, $0.02 ..."""
    forms = {f"${amount:.{d}f}" for d in (2, 4, 6)}
    forms.add("$" + (f"{amount:.6f}".rstrip("0").rstrip(".")))
    return sorted(forms)


def assert_has_money(text: str, amount: float, what: str) -> None:
    forms = money(amount)
    assert any(form in text for form in forms), f"{what}: none of {forms} in:\n{text[:3000]}"


@pytest.fixture(scope="module")
def reported(make_module_daemon):
    """A daemon with a known day: 3 billed calls on 2 models, 1 cached call, cache hit + miss."""
    daemon = make_module_daemon("--daily-budget", str(DAILY_BUDGET), "--monthly-budget", "60")
    with costd.Client(daemon.socket, timeout=10) as client:
        client.record("gpt-4o", 1000, 500, user="ann", feature="search")
        client.record("gpt-4o", 1000, 500, user="ann", feature="search")
        client.record("gpt-4o-mini", 1000, 500, user=ODD_USER, feature="chat")
        client.record("gpt-4o", 1000, 500, cached=True, user="ann", feature="search")
        client.cache_set("gpt-4o", "question", "answer")
        assert client.cache_get("gpt-4o", "question")["hit"]
        assert not client.cache_get("gpt-4o", "other question")["hit"]
        report = client.report()
    assert report["totalCostUsd"] == pytest.approx(TOTAL, abs=1e-9), report
    return daemon


def report_env(**extra: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NO_COLOR", "FORCE_COLOR", "CLICOLOR", "CLICOLOR_FORCE", "COSTD_SOCKET")}
    env.update(TERM="xterm-256color", COLUMNS="100", LINES="60", LANG=env.get("LANG", "C.UTF-8"))
    env.update(extra)
    return env


# --------------------------------------------------------------------------------------------
# HTML


class _Refs(HTMLParser):
    """Collects every URL-valued attribute and every <script> / <link> tag."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: List[Tuple[str, str, str]] = []
        self.scripts: List[Dict[str, Optional[str]]] = []
        self.links: List[Dict[str, Optional[str]]] = []
        self.tags: Dict[str, int] = {}

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "srcset", "action", "poster", "data"):
                self.urls.append((tag, name, value or ""))
        if tag == "script":
            self.scripts.append(dict(attrs))
        if tag == "link":
            self.links.append(dict(attrs))

    handle_startendtag = handle_starttag


def write_html(costctl_bin: str, daemon, directory: str) -> Tuple[str, str]:
    path = os.path.join(directory, "report.html")
    done = subprocess.run(
        [costctl_bin, "report", "--socket", daemon.socket, "--html", path],
        capture_output=True, text=True, timeout=20, env=report_env(),
    )
    assert done.returncode == 0, done
    with open(path, encoding="utf-8") as f:
        return path, f.read()


def test_html_report_is_self_contained(costctl_bin, reported, tmp_path):
    _, page = write_html(costctl_bin, reported, str(tmp_path))

    assert page.lstrip().lower().startswith("<!doctype html"), page[:200]
    assert page.rstrip().lower().endswith("</html>"), page[-200:]
    refs = _Refs()
    refs.feed(page)
    refs.close()
    # Nothing is fetched: no URL attribute other than an in-page fragment or a data: URL.
    outside = [u for u in refs.urls if not (u[2].startswith("#") or u[2].startswith("data:"))]
    assert not outside, f"references outside the page: {outside}"
    assert not [s for s in refs.scripts if s.get("src")], refs.scripts
    assert not refs.links or all((l.get("href") or "").startswith("data:") for l in refs.links), refs.links
    assert not re.search(r"<script[^>]*\ssrc\s*=", page, re.I)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert not re.search(r"""url\(\s*["']?\s*(?:https?:)?//""", page, re.I), "CSS fetches a URL"
    assert "@import" not in page

    # Charts are inline SVG.
    assert "<svg" in page and refs.tags.get("svg", 0) >= 2, refs.tags
    assert refs.tags.get("rect", 0) >= 5, refs.tags

    # The figures recorded.
    assert_has_money(page, TOTAL, "total spend")
    assert_has_money(page, DAILY_BUDGET, "daily budget")
    assert_has_money(page, GPT4O, "cache savings")
    for name in ("gpt-4o", "gpt-4o-mini", "ann", "search", "chat"):
        assert re.search(rf">\s*{re.escape(name)}\s*<", page), f"{name} is not a label in the page"
    # Names are escaped, never markup.
    assert ODD_USER not in page
    assert "&lt;b&gt;Zoë &amp;" in page, "the user name is not HTML-escaped"


def test_html_report_renders_in_chromium(costctl_bin, reported, tmp_path):
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(chromium, os.X_OK):
        pytest.skip("chromium is not installed (apt-get install chromium): cannot render the HTML report")
    path, _ = write_html(costctl_bin, reported, str(tmp_path))
    png_path = str(tmp_path / "report.png")
    profile = tempfile.mkdtemp(prefix="costd-chromium-", dir="/tmp")
    command = [
        chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--no-first-run", "--no-default-browser-check",
        "--hide-scrollbars", f"--user-data-dir={profile}", f"--screenshot={png_path}",
        "--window-size=1000,1400", "file://" + path,
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        output = b"(timed out after 20 s)"
    finally:
        # Chromium's helpers share its process group, which this test made: end them all.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
        shutil.rmtree(profile, ignore_errors=True)
    log = output.decode(errors="replace")[-2000:]
    assert os.path.exists(png_path), f"chromium wrote no screenshot:\n{log}"

    with open(png_path, "rb") as f:
        width, height, pixels = decode_png(f.read())
    assert (width, height) == (1000, 1400), (width, height)

    counts = Counter(pixels)  # exact colour -> pixels
    ink = sum(n for rgb, n in counts.items() if min(rgb) < 235)  # darker than the background
    colours = Counter()
    vivid = Counter()  # saturated colours: charts, not text or borders
    for (r, g, b), n in counts.items():
        colours[(r >> 3, g >> 3, b >> 3)] += n
        if max(r, g, b) - min(r, g, b) >= 60:
            vivid[(r >> 5, g >> 5, b >> 5)] += n
    assert ink >= 500, f"only {ink} non-white pixels: a blank page?\n{log}"
    assert len(colours) >= 8, f"only {len(colours)} distinct colours: {sorted(colours.items())[:20]}"
    chart_colours = [k for k, n in vivid.items() if n >= 100]
    assert len(chart_colours) >= 3, f"the charts are missing: saturated colours {vivid}"


# A small PNG reader: 8-bit RGB or RGBA, not interlaced (what Chromium writes).


def decode_png(data: bytes) -> Tuple[int, int, List[Tuple[int, int, int]]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    pos, idat, header = 8, [], None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat.append(chunk)
        elif kind == b"IEND":
            break
    assert header is not None, "no IHDR"
    width, height, depth, colour_type, _, _, interlace = header
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, f"unsupported PNG {header}"
    bpp = 3 if colour_type == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    assert len(raw) == height * (stride + 1), "truncated image data"
    prev = bytearray(stride)
    pixels: List[Tuple[int, int, int]] = []
    at = 0
    for _ in range(height):
        kind, line = raw[at], bytearray(raw[at + 1:at + 1 + stride])
        at += 1 + stride
        if kind == 1:  # Sub
            for x in range(bpp, stride):
                line[x] = (line[x] + line[x - bpp]) & 0xFF
        elif kind == 2:  # Up
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev))
        elif kind == 3:  # Average
            for x in range(stride):
                left = line[x - bpp] if x >= bpp else 0
                line[x] = (line[x] + ((left + prev[x]) >> 1)) & 0xFF
        elif kind == 4:  # Paeth
            for x in range(stride):
                a = line[x - bpp] if x >= bpp else 0
                b = prev[x]
                c = prev[x - bpp] if x >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        else:
            assert kind == 0, f"bad PNG filter {kind}"
        pixels.extend(zip(line[0::bpp], line[1::bpp], line[2::bpp]))
        prev = line
    return width, height, pixels


# --------------------------------------------------------------------------------------------
# Terminal


def run_in_pty(
    argv: Sequence[str],
    env: Dict[str, str],
    duration: float = 10.0,
    on_output: Optional[Callable[[bytes], None]] = None,
) -> Tuple[bytes, Optional[int]]:
    """Runs argv on a new pseudo-terminal (100x60) until it exits or ``duration`` passes; then
    it is stopped. Returns everything it wrote and its wait status (None: it was still running)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: never return into pytest
        try:
            import fcntl
            import termios

            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 60, 100, 0, 0))
            os.execve(argv[0], list(argv), env)
        finally:
            os._exit(127)
    output = b""
    status: Optional[int] = None
    closed = False
    try:
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError as error:  # EIO: the child closed the terminal
                if error.errno != errno.EIO:
                    raise
                chunk = b""
            if not chunk:
                closed = True
                break
            output += chunk
            if on_output is not None:
                on_output(output)
    finally:
        # The terminal closed: the child is exiting, reap it. Otherwise stop it.
        end = time.monotonic() + (5 if closed else 0)
        done, code = os.waitpid(pid, os.WNOHANG)
        while not done and time.monotonic() < end:
            time.sleep(0.01)
            done, code = os.waitpid(pid, os.WNOHANG)
        if done:
            status = code
        else:
            os.kill(pid, signal.SIGTERM)
            end = time.monotonic() + 5
            while not done and time.monotonic() < end:
                time.sleep(0.02)
                done, code = os.waitpid(pid, os.WNOHANG)
            if not done:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        os.close(fd)
    return output, status


def wait_exit(pid_status: Optional[int]) -> int:
    assert pid_status is not None, "costctl was still running"
    assert os.WIFEXITED(pid_status), f"costctl died: status {pid_status}"
    return os.WEXITSTATUS(pid_status)


def plain(output: bytes) -> str:
    return ANSI_ANY.sub("", output.decode("utf-8", errors="replace"))


def assert_full_report(text: str) -> None:
    assert "By model" in text, text
    for name in ("gpt-4o", "gpt-4o-mini", "ann"):
        assert name in text, f"{name} missing:\n{text}"
    assert_has_money(text, TOTAL, "total spend")
    assert_has_money(text, GPT4O, "cache savings")
    assert "█" in text, "no bar"
    lines = [line for line in text.splitlines() if SPARKLINE.search(line) and any(c in line for c in SPARK)]
    assert lines, f"no sparkline (a run of {SPARK}█):\n{text}"


def test_terminal_report_in_colour_on_a_tty(costctl_bin, reported):
    output, status = run_in_pty([costctl_bin, "report", "--socket", reported.socket], report_env())
    assert wait_exit(status) == 0, output
    assert ANSI_SGR.search(output), f"no colour escapes on a terminal: {output[:400]!r}"
    text = plain(output)
    assert_full_report(text)
    budget = [line for line in text.splitlines() if line.strip().startswith("Budget")]
    assert len(budget) == 1, text
    assert budget[0].count("█") >= 5, f"no budget bar: {budget[0]!r}"
    assert f"{100 * TOTAL / DAILY_BUDGET:.1f}%" in budget[0], budget[0]
    assert_has_money(budget[0], DAILY_BUDGET, "budget line")


def test_terminal_report_respects_no_color(costctl_bin, reported):
    output, status = run_in_pty(
        [costctl_bin, "report", "--socket", reported.socket], report_env(NO_COLOR="1")
    )
    assert wait_exit(status) == 0, output
    assert b"\x1b" not in output, f"escapes despite NO_COLOR: {output[:400]!r}"
    assert_full_report(output.decode("utf-8"))


def test_terminal_report_piped_has_no_colour(costctl_bin, reported):
    done = subprocess.run(
        [costctl_bin, "report", "--socket", reported.socket],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20, env=report_env(),
    )
    assert done.returncode == 0, done
    assert b"\x1b" not in done.stdout, f"escapes in piped output: {done.stdout[:400]!r}"
    assert_full_report(done.stdout.decode("utf-8"))


def test_watch_redraws_and_shows_new_records(costctl_bin, make_daemon):
    daemon = make_daemon("--daily-budget", "3")
    marker = "during-the-watch"
    with costd.Client(daemon.socket, timeout=10) as client:
        client.record("gpt-4o", 1000, 500, user="ann", feature="before")
        recorded_at: List[int] = []

        def record_after_first_frame(output: bytes) -> None:
            # Once the first frame is complete on the screen, record something new.
            if not recorded_at and output.count(CLEAR_HOME) >= 1 and b"/day" in output:
                client.record("gpt-4o-mini", 1000, 500, user="zed", feature=marker)
                recorded_at.append(len(output))

        started = time.monotonic()
        output, status = run_in_pty(
            [costctl_bin, "report", "--socket", daemon.socket, "--watch", "--interval", "0.5"],
            report_env(), duration=2.5, on_output=record_after_first_frame,
        )
        elapsed = time.monotonic() - started

    assert status is None, f"--watch exited by itself (status {status}): {plain(output)[-800:]}"
    assert elapsed < 10, elapsed
    assert recorded_at, f"the first frame never completed: {output[:600]!r}"
    assert output.count(CLEAR_HOME) >= 3, f"{output.count(CLEAR_HOME)} redraws in 2.5 s"
    frames = [plain(frame) for frame in output.split(CLEAR_HOME)[1:]]
    assert marker not in frames[0] and "gpt-4o-mini" not in frames[0], frames[0]
    later = [frame for frame in frames[1:] if marker in frame]
    assert later, "the record made during --watch never appeared:\n" + frames[-1]
    assert "gpt-4o-mini" in later[-1] and "zed" in later[-1], later[-1]
    assert_has_money(later[-1], GPT4O + GPT4O_MINI, "the new total")
    assert ANSI_SGR.search(output), "no colour in --watch on a terminal"
