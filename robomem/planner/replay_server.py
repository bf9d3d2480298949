"""A REPLAY server, not a model: a real HTTP server on 127.0.0.1 that answers OpenAI-style
``POST /v1/chat/completions`` requests with recorded or scripted responses, in order.

For deterministic tests of the LLM client and planner over a real socket: every request body is kept
(``requests``) so tests can check what was sent; a scripted item may be an HTTP error or a slow answer
(to exercise retries and timeouts), or a function of the request. When a response carries no ``usage``,
the server fills one in with :func:`robomem.core.render.estimate_tokens` (~4 characters per token) of
the request's messages and tools, marked ``"estimated": true``: a replay server has no tokenizer.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from robomem.core.render import estimate_tokens


@dataclass
class Scripted:
    """One scripted answer: a JSON body (dict) or raw text, an HTTP status, a delay before answering."""

    body: dict[str, Any] | str | None = None
    status: int = 200
    delay_s: float = 0.0


Item = dict[str, Any] | Scripted | Callable[[dict[str, Any]], "dict[str, Any] | Scripted"]
_ids = itertools.count(1)


def tool_call(name: str, arguments: dict[str, Any] | str, call_id: str | None = None) -> dict[str, Any]:
    """A ``tool_calls`` entry; ``arguments`` as a dict is JSON-encoded, a string is sent as written."""
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id or f"call_{next(_ids)}", "type": "function", "function": {"name": name, "arguments": text}}


def completion(content: str | None = None, tool_calls: Iterable[dict[str, Any]] = (),
               usage: dict[str, int] | None = None) -> dict[str, Any]:
    """A chat-completion body with one choice."""
    calls = list(tool_calls)
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = calls
    body: dict[str, Any] = {"object": "chat.completion", "choices": [
        {"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}]}
    if usage is not None:
        body["usage"] = usage
    return body


def estimated_usage(request: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
    prompt = json.dumps(request.get("messages", [])) + json.dumps(request.get("tools", []))
    message = (reply.get("choices") or [{}])[0].get("message", {})
    done = estimate_tokens(json.dumps(message))
    return {"prompt_tokens": estimate_tokens(prompt), "completion_tokens": done,
            "total_tokens": estimate_tokens(prompt) + done, "estimated": True}


class ReplayServer:
    """Serves ``script`` items in order at ``base_url`` (``http://127.0.0.1:<port>/v1``); 410 once spent."""

    def __init__(self, script: Iterable[Item] = (), host: str = "127.0.0.1", port: int = 0) -> None:
        self._script: list[Item] = list(script)
        self._lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []  # request bodies, in arrival order
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> ReplayServer:
        """A server replaying the recorded response bodies in a JSON file (a list of bodies)."""
        return cls(json.loads(Path(path).read_text()), **kwargs)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def push(self, *items: Item) -> None:
        with self._lock:
            self._script.extend(items)

    @property
    def remaining(self) -> int:
        with self._lock:
            return len(self._script)

    def _next(self, request: dict[str, Any]) -> Scripted:
        with self._lock:
            self.requests.append(request)
            item = self._script.pop(0) if self._script else Scripted({"error": "replay script exhausted"}, 410)
        if callable(item):
            item = item(request)
        if not isinstance(item, Scripted):
            item = Scripted(item)
        if item.status == 200 and isinstance(item.body, dict) and "choices" in item.body:
            body = {"id": f"chatcmpl-replay-{next(_ids)}", "created": int(time.time()),
                    "model": request.get("model", "replay"), **item.body}
            if "usage" not in body:
                body["usage"] = estimated_usage(request, body)
            item = Scripted(body, item.status, item.delay_s)
        return item

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass

            def _send(self, status: int, body: dict[str, Any] | str | None) -> None:
                data = (body if isinstance(body, str) else json.dumps(body or {})).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": "replay", "object": "model"}]})
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": f"no route {self.path}"})
                    return
                try:
                    request = json.loads(raw)
                except json.JSONDecodeError:
                    self._send(400, {"error": "request is not JSON"})
                    return
                with server._lock:
                    server.paths.append(self.path)
                    server.headers.append(dict(self.headers))
                item = server._next(request)
                if item.delay_s:
                    time.sleep(item.delay_s)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (timeouts)
                    self._send(item.status, item.body)

        return Handler

    def start(self) -> ReplayServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="replay-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
