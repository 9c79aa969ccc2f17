"""Anthropic's Messages API: POST /v1/messages (JSON, or SSE events with `stream`), and GET
/v1/models in Anthropic's shape for requests that carry `anthropic-version`.

The stream is Anthropic's: message_start, ping, content_block_start / content_block_delta
(text_delta; input_json_delta for tool_use) / content_block_stop, message_delta (stop_reason,
usage.output_tokens), message_stop; a mid-stream fault is an `error` event. Requests are checked
as Anthropic checks them where the mesh could get it wrong: max_tokens is required, and a final
assistant message (a continuation's prefill) must not end with whitespace.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from aiohttp import web

from llmmesh.simulator.engine import Dialect, Summary, read_json, serve_generation, work_endpoint
from llmmesh.simulator.generation import count_tokens
from llmmesh.simulator.genrequest import BadRequest, GenRequest
from llmmesh.simulator.state import SimulatorState
from llmmesh.simulator.stats import RequestRecord

VERSION_HEADER = "anthropic-version"
_ids = itertools.count(1)
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 429: "rate_limit_error", 503: "overloaded_error", 529: "overloaded_error"}


def anthropic_error(status: int, message: str) -> web.Response:
    body = {"type": "error", "error": {"type": _ERROR_TYPES.get(status, "api_error"), "message": message}}
    return web.json_response(body, status=status)


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps({'type': name, **data}, separators=(',', ':'))}\n\n".encode()


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text")
    raise BadRequest(f"{where}: content must be a string or a list of blocks")


def _messages(body: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise BadRequest("messages: at least one message is required")
    out: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        out.append({"role": "system", "content": _text(system, "system")})
    for i, msg in enumerate(raw):
        if not isinstance(msg, dict) or msg.get("role") not in ("user", "assistant"):
            raise BadRequest(f"messages.{i}.role: must be user or assistant")
        content = msg.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(blocks, list):
            raise BadRequest(f"messages.{i}.content: must be a string or a list of blocks")
        text = "".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")
        if msg["role"] == "assistant":
            calls = [{"function": {"name": b["name"], "arguments": b.get("input") or {}}}
                     for b in blocks if b.get("type") == "tool_use"]
            out.append({"role": "assistant", "content": text, **({"tool_calls": calls} if calls else {})})
            continue
        for b in blocks:
            if b.get("type") == "tool_result":
                out.append({"role": "tool", "content": _text(b.get("content") or "", f"messages.{i}.tool_result")})
        if text or not any(b.get("type") == "tool_result" for b in blocks):
            out.append({"role": "user", "content": text})
    last = raw[-1]
    if last.get("role") == "assistant" and out[-1]["content"] != out[-1]["content"].rstrip():
        raise BadRequest("messages: final assistant content cannot end with trailing whitespace")
    return tuple(out)


def _tools(body: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    tools = body.get("tools") or []
    if not isinstance(tools, list) or not all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in tools):
        raise BadRequest("tools: every tool needs a name")
    choice = body.get("tool_choice") or {}
    if choice.get("type") == "tool":
        tools = [t for t in tools if t["name"] == choice.get("name")]
        if not tools:
            raise BadRequest("tool_choice: names no tool")
    return tuple({"type": "function", "function": {"name": t["name"], "description": t.get("description", ""),
                                                   "parameters": t.get("input_schema") or {"type": "object"}}}
                 for t in tools)


def parse_messages(body: dict[str, Any]) -> GenRequest:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model: Field required")
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise BadRequest("max_tokens: Field required (a positive integer)")
    stop = body.get("stop_sequences") or []
    if not isinstance(stop, list) or not all(isinstance(s, str) and s.strip() for s in stop):
        raise BadRequest("stop_sequences: each must be a string with non-whitespace characters")
    temperature = body.get("temperature")
    if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, int | float)
                                    or not 0 <= temperature <= 1):
        raise BadRequest("temperature: must be between 0 and 1")
    return GenRequest(kind="chat", model=model, stream=bool(body.get("stream", False)), messages=_messages(body),
                      num_predict=max_tokens, stop=tuple(stop), temperature=temperature, tools=_tools(body),
                      sim_fault=str(body.get("sim_fault") or ""))


class MessagesDialect(Dialect):
    content_type = "text/event-stream"

    def __init__(self, req: GenRequest) -> None:
        super().__init__(req)
        self.id = f"msg_sim{next(_ids):06d}"
        self._started = False
        self._open_text: int | None = None  # index of the text block being streamed
        self._blocks = 0

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        message = {"id": self.id, "type": "message", "role": "assistant", "content": [], "model": self.req.model,
                   "stop_reason": None, "stop_sequence": None,
                   "usage": {"input_tokens": max(1, count_tokens(self.req.full_text())), "output_tokens": 1}}
        return _event("message_start", {"message": message}) + _event("ping", {})

    def _close_text(self) -> bytes:
        if self._open_text is None:
            return b""
        index, self._open_text = self._open_text, None
        return _event("content_block_stop", {"index": index})

    def token_frame(self, token: str) -> bytes:
        out = self._start()
        if self._open_text is None:
            self._open_text, self._blocks = self._blocks, self._blocks + 1
            out += _event("content_block_start", {"index": self._open_text, "content_block": {"type": "text",
                                                                                              "text": ""}})
        return out + _event("content_block_delta", {"index": self._open_text,
                                                    "delta": {"type": "text_delta", "text": token}})

    def tools_frame(self, calls: tuple[dict[str, Any], ...]) -> bytes:
        out = self._start() + self._close_text()
        for i, call in enumerate(calls):
            index, self._blocks = self._blocks, self._blocks + 1
            fn = call["function"]
            block = {"type": "tool_use", "id": f"toolu_{self.id}_{i}", "name": fn["name"], "input": {}}
            out += _event("content_block_start", {"index": index, "content_block": block})
            args = json.dumps(fn["arguments"])
            for part in (args[:len(args) // 2], args[len(args) // 2:]):  # streamed in pieces, as Anthropic does
                out += _event("content_block_delta", {"index": index,
                                                      "delta": {"type": "input_json_delta", "partial_json": part}})
            out += _event("content_block_stop", {"index": index})
        return out

    @staticmethod
    def _stop_reason(summary: Summary) -> str:
        if summary.answer.tool_calls:
            return "tool_use"
        return "max_tokens" if summary.answer.done_reason == "length" else "end_turn"

    def final_frames(self, summary: Summary) -> list[bytes]:
        head = self._start() + self._close_text()
        delta = _event("message_delta", {"delta": {"stop_reason": self._stop_reason(summary), "stop_sequence": None},
                                         "usage": {"output_tokens": summary.eval_count}})
        return [*([head] if head else []), delta, _event("message_stop", {})]

    def error_frame(self, message: str) -> bytes:
        return _event("error", {"error": {"type": "api_error", "message": message}})

    def full_body(self, summary: Summary) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "text", "text": summary.text}] if summary.text else []
        content += [{"type": "tool_use", "id": f"toolu_{self.id}_{i}", "name": c["function"]["name"],
                     "input": c["function"]["arguments"]} for i, c in enumerate(summary.answer.tool_calls)]
        return {"id": self.id, "type": "message", "role": "assistant", "model": self.req.model, "content": content,
                "stop_reason": self._stop_reason(summary), "stop_sequence": None,
                "usage": {"input_tokens": summary.answer.prompt_tokens, "output_tokens": summary.eval_count}}

    @staticmethod
    def error_response(status: int, message: str) -> web.Response:
        return anthropic_error(status, message)


@work_endpoint
async def messages(request: web.Request, state: SimulatorState, record: RequestRecord) -> web.StreamResponse:
    try:
        req = parse_messages(await read_json(request))
    except BadRequest as exc:
        state.stats.finish(record, "bad_request", 400)
        return anthropic_error(400, str(exc))
    return await serve_generation(request, state, record, req, MessagesDialect(req))


def models_listing(names: list[str]) -> dict[str, Any]:
    data = [{"type": "model", "id": n, "display_name": n, "created_at": "2025-01-01T00:00:00Z"} for n in names]
    return {"data": data, "has_more": False, "first_id": names[0] if names else None,
            "last_id": names[-1] if names else None}


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/messages", messages)
