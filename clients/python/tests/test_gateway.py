"""costd.openai_client's socket discovery and key handling (the calls themselves are tested
against real daemons in tests/integration/test_http_endpoint.py)."""

import pytest

import costd
from costd import gateway


def test_the_http_socket_is_found_the_way_the_daemon_picks_it(monkeypatch):
    for name in ("COSTD_HTTP_SOCKET", "COSTD_SOCKET", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(name, raising=False)
    assert costd.resolve_http_socket_path() == "/run/costd/http.sock"
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/7")
    assert costd.resolve_http_socket_path() == "/run/user/7/costd-http.sock"
    monkeypatch.setenv("COSTD_SOCKET", "/tmp/x/a.sock")
    assert costd.resolve_http_socket_path() == "/tmp/x/a-http.sock"
    monkeypatch.setenv("COSTD_HTTP_SOCKET", "/tmp/h.sock")
    assert costd.resolve_http_socket_path() == "/tmp/h.sock"
    assert costd.resolve_http_socket_path("/given.sock") == "/given.sock"


def test_a_program_without_a_key_sends_none(monkeypatch):
    openai = pytest.importorskip("openai")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    client = costd.openai_client("/nonexistent.sock")
    assert client.api_key == gateway.NO_KEY
    httpx = gateway._httpx_for(openai.DefaultHttpxClient)
    request = httpx.Request("POST", "http://costd/v1/chat/completions", headers={"Authorization": f"Bearer {gateway.NO_KEY}"})
    gateway._without_placeholder_key(request)
    assert "authorization" not in request.headers
    kept = httpx.Request("POST", "http://costd/v1/chat/completions", headers={"Authorization": "Bearer sk-real"})
    gateway._without_placeholder_key(kept)
    assert kept.headers["authorization"] == "Bearer sk-real"
    assert costd.openai_client("/nonexistent.sock", api_key="sk-mine").api_key == "sk-mine"
