"""A small client for the OpenAI-compatible chat-completions API with tool calling (stdlib only).

Speaks what llama.cpp's server, llama-cpp-python's server, vLLM and Ollama serve at
``{base_url}/chat/completions``. Replies are parsed into :class:`ChatReply` (text and
:class:`ToolCall` s, arguments kept as the raw JSON string the model wrote); token usage is summed.
Transport failures raise :class:`LLMError` subclasses; 5xx, 429, timeouts and refused connections are
retried with exponential backoff.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class LLMError(RuntimeError):
    """The chat server could not be used (base of the client's errors)."""


class LLMHTTPError(LLMError):
    """The server answered with an HTTP error status."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


class LLMTimeout(LLMError):
    """No answer within the client's timeout (after the retries)."""


class LLMConnectionError(LLMError):
    """The server could not be reached (after the retries)."""


class LLMResponseError(LLMError):
    """The server's answer is not a chat completion (not JSON, no choices, no message)."""


@dataclass(frozen=True)
class ToolCall:
    """One function call the model asked for; ``arguments`` is the JSON text as written by the model."""

    id: str
    name: str
    arguments: str

    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments as a JSON object (ValueError if they are not one)."""
        value = json.loads(self.arguments) if self.arguments.strip() else {}
        if not isinstance(value, dict):
            raise ValueError(f"arguments must be a JSON object, got {type(value).__name__}")
        return value


@dataclass(frozen=True)
class ChatReply:
    """``choices[0].message`` of a completion, with the request's usage."""

    content: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usage_reported: bool = True  # False: the server sent no usage (tokens are 0)

    def as_message(self) -> dict[str, Any]:
        """The assistant message to append to the conversation."""
        # content "" rather than null: some servers (llama-cpp-python) refuse a null assistant content
        message: dict[str, Any] = {"role": "assistant", "content": self.content or ""}
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.tool_calls
            ]
        return message


def _tool_calls(message: dict[str, Any]) -> list[ToolCall]:
    raw = message.get("tool_calls") or []
    if not raw and isinstance(message.get("function_call"), dict):  # the legacy single-call form
        raw = [{"id": "call_0", "function": message["function_call"]}]
    if not isinstance(raw, list):
        raise LLMResponseError(f"tool_calls is not a list: {raw!r:.200}")
    calls = []
    for k, item in enumerate(raw):
        function = item.get("function") if isinstance(item, dict) else None
        if not isinstance(function, dict):
            raise LLMResponseError(f"tool call {k} has no function: {item!r:.200}")
        arguments = function.get("arguments", "")
        if not isinstance(arguments, str):  # Ollama sends an object, not a JSON string
            arguments = json.dumps(arguments)
        calls.append(ToolCall(id=str(item.get("id") or f"call_{k}"), name=str(function.get("name") or ""),
                              arguments=arguments))
    return calls


def parse_completion(body: dict[str, Any]) -> ChatReply:
    """A :class:`ChatReply` from a chat-completion response body (LLMResponseError if it is none)."""
    choices = body.get("choices") if isinstance(body, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise LLMResponseError(f"no choices in response: {json.dumps(body)[:300]}")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise LLMResponseError(f"choice has no message: {json.dumps(choices[0])[:300]}")
    content = message.get("content")
    usage = body.get("usage")
    has_usage = isinstance(usage, dict)
    usage = usage if has_usage else {}
    return ChatReply(
        content=content if isinstance(content, str) else None,
        tool_calls=_tool_calls(message),
        finish_reason=choices[0].get("finish_reason"),
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        usage_reported=has_usage,
    )


class ChatClient:
    """POSTs chat completions to ``{base_url}/chat/completions`` (e.g. ``http://127.0.0.1:8080/v1``).

    ``requests``, ``prompt_tokens`` and ``completion_tokens`` add up over the client's life."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout_s: float = 120.0,
                 max_retries: int = 2, backoff_s: float = 0.5) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.requests = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def chat(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
             tool_choice: str | dict[str, Any] | None = None, temperature: float = 0.0,
             max_tokens: int = 512, **extra: Any) -> ChatReply:
        """One completion of ``messages`` (``tools``: OpenAI function tools; ``extra``: more body fields)."""
        body: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": temperature,
                                "max_tokens": max_tokens, **extra}
        if tools:
            body["tools"] = tools
            if tool_choice is not None:
                body["tool_choice"] = tool_choice
        reply = parse_completion(self._post(body))
        self.requests += 1
        self.prompt_tokens += reply.prompt_tokens
        self.completion_tokens += reply.completion_tokens
        return reply

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last: LLMError | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    text = response.read().decode("utf-8", errors="replace")
            except urllib.error.HTTPError as error:
                last = LLMHTTPError(error.code, error.read().decode("utf-8", errors="replace"))
                if error.code in RETRY_STATUS:
                    continue
                raise last from error
            except TimeoutError as error:
                last = LLMTimeout(f"no answer from {self.url} within {self.timeout_s} s")
                last.__cause__ = error
                continue
            except urllib.error.URLError as error:
                if isinstance(error.reason, TimeoutError):
                    last = LLMTimeout(f"no answer from {self.url} within {self.timeout_s} s")
                else:
                    last = LLMConnectionError(f"cannot reach {self.url}: {error.reason}")
                last.__cause__ = error
                continue
            except (ConnectionError, OSError) as error:  # reset mid-response, etc.
                last = LLMConnectionError(f"connection to {self.url} failed: {error}")
                last.__cause__ = error
                continue
            try:
                return json.loads(text)
            except json.JSONDecodeError as error:
                raise LLMResponseError(f"response is not JSON: {text[:300]!r}") from error
        assert last is not None
        raise last
