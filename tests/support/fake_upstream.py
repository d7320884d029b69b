"""A fake LLM provider for costd's tests and benchmark: OpenAI's and Anthropic's shapes.

It answers ``POST /v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``,
``/v1/responses`` and ``/v1/messages``, streamed (server-sent events) or not, and ``GET
/v1/models``. Answers are deterministic: the reply to a prompt is ``"echo: " + prompt`` and the
usage is computed from the request (``prompt_tokens`` = bytes of the messages' JSON // 4 + 1,
``completion_tokens`` = words of the reply + 1), so a test can check the spend exactly.

Behaviour is chosen per request by the ``x-fake`` header (or a ``fake`` field in the body):

- ``error-500`` / ``error-400`` / ``error-429``: an OpenAI-shaped error with that status;
- ``slow-stream``: a stream of 200 events, 20 ms apart (for clients that hang up);
- ``drop``: the connection is closed after half of the stream;
- ``no-usage``: a non-streamed answer without ``usage``;
- ``delay-MS``: wait MS milliseconds before answering.

Every request is kept in ``server.requests`` (path, headers, JSON body), and every stream a
client abandoned is counted in ``server.abandoned``. Run alone, it prints its port::

    python3 tests/http/fake_upstream.py --port 0
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple


def prompt_text(body: Dict[str, Any]) -> str:
    parts: List[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):
            for element in value:
                collect(element if isinstance(element, str) else element.get("content", element.get("text")))
        elif isinstance(value, dict):
            collect(value.get("content", value.get("text")))

    for field in ("system", "messages", "prompt", "input"):
        collect(body.get(field))
    return " ".join(parts)


def usage_counts(body: Dict[str, Any], reply: str) -> Tuple[int, int]:
    prompt = json.dumps(body.get("messages") or body.get("prompt") or body.get("input") or "", separators=(",", ":"))
    return len(prompt) // 4 + 1, len(reply.split()) + 1


class FakeUpstream(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int = 0):
        super().__init__(("127.0.0.1", port), _Handler)
        self.requests: List[Dict[str, Any]] = []
        self.abandoned = 0
        self.lock = threading.Lock()
        self.thread: Optional[threading.Thread] = None

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "FakeUpstream":
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def calls(self, path: Optional[str] = None) -> List[Dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if path is None or r["path"] == path]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeUpstream

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._remember(None)
        if self.path == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model", "owned_by": "fake"}]})
        else:
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._json(400, {"error": {"message": "bad json", "type": "invalid_request_error"}})
            return
        self._remember(body)
        behaviour = self.headers.get("x-fake") or body.get("fake") or ""
        if behaviour.startswith("delay-"):
            time.sleep(int(behaviour[6:]) / 1000)
        if behaviour.startswith("error-"):
            status = int(behaviour[6:])
            self._json(status, {"error": {"message": f"fake upstream error {status}", "type": "server_error" if status >= 500 else "invalid_request_error", "code": f"fake_{status}"}})
            return
        path = self.path.split("?")[0]
        reply = "echo: " + prompt_text(body)
        model = body.get("model", "unknown")
        if path == "/v1/embeddings":
            inputs = body.get("input")
            inputs = inputs if isinstance(inputs, list) else [inputs]
            prompt_tokens, _ = usage_counts(body, "")
            self._json(200, {"object": "list", "model": model,
                             "data": [{"object": "embedding", "index": i, "embedding": [0.25, -0.5, float(len(str(x)))]} for i, x in enumerate(inputs)],
                             "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}})
            return
        if path not in ("/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/messages"):
            self._json(404, {"error": {"message": f"no route {path}", "type": "invalid_request_error"}})
            return
        prompt_tokens, completion_tokens = usage_counts(body, reply)
        if body.get("stream"):
            self._stream(path, body, model, reply, prompt_tokens, completion_tokens, behaviour)
            return
        usage: Optional[Dict[str, Any]]
        if path == "/v1/chat/completions":
            answer: Dict[str, Any] = {"id": "chatcmpl-fake", "object": "chat.completion", "created": 1700000000, "model": model,
                      "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}]}
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}
        elif path == "/v1/completions":
            answer = {"id": "cmpl-fake", "object": "text_completion", "created": 1700000000, "model": model,
                      "choices": [{"index": 0, "text": reply, "finish_reason": "stop", "logprobs": None}]}
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}
        elif path == "/v1/responses":
            answer = {"id": "resp-fake", "object": "response", "created_at": 1700000000, "model": model, "status": "completed",
                      "output": [{"type": "message", "id": "msg-fake", "role": "assistant", "status": "completed",
                                  "content": [{"type": "output_text", "text": reply, "annotations": []}]}]}
            usage = {"input_tokens": prompt_tokens, "output_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens,
                     "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}
        else:
            answer = {"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                      "content": [{"type": "text", "text": reply}], "stop_reason": "end_turn", "stop_sequence": None}
            usage = {"input_tokens": prompt_tokens, "output_tokens": completion_tokens}
        if behaviour != "no-usage":
            answer["usage"] = usage
        self._json(200, answer)

    def _remember(self, body: Optional[Dict[str, Any]]) -> None:
        with self.server.lock:
            self.server.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})

    def _json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("x-request-id", "req-fake")
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, path: str, body: Dict[str, Any], model: str, reply: str, prompt_tokens: int, completion_tokens: int, behaviour: str) -> None:
        events = _events(path, body, model, reply, prompt_tokens, completion_tokens)
        if behaviour == "slow-stream":
            first, last = events[:2], events[-3:]
            events = first + [events[2]] * 200 + last
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        try:
            for index, event in enumerate(events):
                if behaviour == "drop" and index == len(events) // 2:
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                data = event.encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
                if behaviour == "slow-stream":
                    time.sleep(0.02)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            with self.server.lock:
                self.server.abandoned += 1
        self.close_connection = True


def _events(path: str, body: Dict[str, Any], model: str, reply: str, prompt_tokens: int, completion_tokens: int) -> List[str]:
    words = reply.split(" ")
    pieces = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
    def sse(data: Any, event: Optional[str] = None) -> str:
        text = data if isinstance(data, str) else json.dumps(data)
        return (f"event: {event}\n" if event else "") + f"data: {text}\n\n"
    if path == "/v1/messages":
        out = [sse({"type": "message_start", "message": {"id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": [],
                                                           "stop_reason": None, "usage": {"input_tokens": prompt_tokens, "output_tokens": 1}}}, "message_start"),
               sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}, "content_block_start")]
        out += [sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}, "content_block_delta") for p in pieces]
        out += [sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
                sse({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": completion_tokens}}, "message_delta"),
                sse({"type": "message_stop"}, "message_stop")]
        return out
    if path == "/v1/responses":
        usage = {"input_tokens": prompt_tokens, "output_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens,
                 "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}
        response = {"id": "resp-fake", "object": "response", "created_at": 1700000000, "model": model, "status": "in_progress", "output": []}
        out = [sse({"type": "response.created", "sequence_number": 0, "response": response}, "response.created")]
        out += [sse({"type": "response.output_text.delta", "sequence_number": i + 1, "item_id": "msg-fake", "output_index": 0, "content_index": 0, "delta": p},
                    "response.output_text.delta") for i, p in enumerate(pieces)]
        done = dict(response, status="completed", usage=usage,
                    output=[{"type": "message", "id": "msg-fake", "role": "assistant", "status": "completed", "content": [{"type": "output_text", "text": reply, "annotations": []}]}])
        out += [sse({"type": "response.output_text.done", "sequence_number": len(pieces) + 1, "item_id": "msg-fake", "output_index": 0, "content_index": 0, "text": reply}, "response.output_text.done"),
                sse({"type": "response.completed", "sequence_number": len(pieces) + 2, "response": done}, "response.completed")]
        return out
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    chat = path == "/v1/chat/completions"
    base = {"id": "chatcmpl-fake" if chat else "cmpl-fake", "object": "chat.completion.chunk" if chat else "text_completion", "created": 1700000000, "model": model}
    def chunk(choice: Dict[str, Any]) -> Dict[str, Any]:
        data = dict(base, choices=[dict(choice, index=0)])
        if include_usage:
            data["usage"] = None
        return data
    out = []
    if chat:
        out.append(sse(chunk({"delta": {"role": "assistant", "content": ""}, "finish_reason": None})))
    out += [sse(chunk({"delta": {"content": p}, "finish_reason": None} if chat else {"text": p, "finish_reason": None})) for p in pieces]
    out.append(sse(chunk({"delta": {}, "finish_reason": "stop"} if chat else {"text": "", "finish_reason": "stop"})))
    if include_usage:
        out.append(sse(dict(base, choices=[], usage={"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens})))
    out.append(sse("[DONE]"))
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = FakeUpstream(args.port)
    print(server.port, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
