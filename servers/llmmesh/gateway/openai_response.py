"""Inference protobuf -> the OpenAI response shapes: chat completions and their stream chunks,
the model list, embeddings."""

from __future__ import annotations

import base64
import json
import struct
import time
import uuid
from collections.abc import Sequence
from typing import Any

import orjson

from llmmesh.common.structs import struct_to_dict
from llmmesh.gateway.errors import ApiError
from llmmesh.gateway.openai_request import EmbedParams
from llmmesh.gateway.vectors import shorten
from llmmesh.inference.v1 import inference_service_pb2 as pb

# done_reason of the inference service -> finish_reason.
_FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls", "cancelled": "stop"}


# ---------------------------------------------------------------------------------------------
# chat.completions responses


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def now() -> int:
    return int(time.time())


def finish_reason(done_reason: str, has_tool_calls: bool) -> str:
    return "tool_calls" if has_tool_calls else _FINISH.get(done_reason, "stop")


def usage(done: pb.GenerationDone) -> dict[str, int]:
    return {"prompt_tokens": done.prompt_tokens, "completion_tokens": done.output_tokens,
            "total_tokens": done.prompt_tokens + done.output_tokens}


def tool_calls(calls: Sequence[pb.ToolCall], first_index: int | None = None) -> list[dict[str, Any]]:
    """OpenAI `tool_calls`: arguments as a JSON string. Stream deltas also carry `index`."""
    out = []
    for i, c in enumerate(calls):
        entry: dict[str, Any] = {}
        if first_index is not None:
            entry["index"] = first_index + i
        entry |= {"id": c.id or f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                  "function": {"name": c.name, "arguments": json.dumps(struct_to_dict(c.arguments))}}
        out.append(entry)
    return out


def completion(resp: pb.CompleteChatResponse, model: str) -> dict[str, Any]:
    calls = tool_calls(resp.message.tool_calls)
    message: dict[str, Any] = {"role": "assistant", "content": resp.message.content or (None if calls else ""),
                               "refusal": None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": now(),
        "model": resp.done.model or model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": finish_reason(resp.done.done_reason, bool(calls))}],
        "usage": usage(resp.done),
    }


SSE_HEADERS = {"content-type": "text/event-stream", "cache-control": "no-cache", "x-accel-buffering": "no"}


class SseFramer:
    """A streamed completion as `chat.completion.chunk` SSE (one id, created and model): a first
    chunk with `delta.role`, one per token delta or tool-call event, a final one with
    `finish_reason`, the `usage` chunk when `stream_options.include_usage`, then `data: [DONE]`."""

    headers = SSE_HEADERS

    def __init__(self, model: str, include_usage: bool) -> None:
        self.id, self.created, self.model = completion_id(), now(), model
        self.include_usage = include_usage
        self._tool_index = 0
        # A token's chunk differs from the next only in its text: encoded once around a placeholder,
        # then only the text is encoded per delta.
        head, _, tail = _event(self.chunk({"content": _HOLE})).partition(orjson.dumps(_HOLE))
        self._delta_head, self._delta_tail = head, tail

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self.include_usage:
            out["usage"] = None
        return out

    def usage_chunk(self, done: pb.GenerationDone) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "system_fingerprint": None, "choices": [], "usage": usage(done)}

    def start(self) -> list[bytes]:
        return [_event(self.chunk({"role": "assistant", "content": ""}))]

    def delta(self, text: str) -> list[bytes]:
        return [self._delta_head + orjson.dumps(text) + self._delta_tail]

    def tool_calls(self, calls: Sequence[pb.ToolCall]) -> list[bytes]:
        entries = tool_calls(calls, first_index=self._tool_index)
        self._tool_index += len(entries)
        return [_event(self.chunk({"tool_calls": entries}))]

    def done(self, done: pb.GenerationDone) -> list[bytes]:
        frames = [_event(self.chunk({}, finish_reason(done.done_reason, self._tool_index > 0)))]
        if self.include_usage:
            frames.append(_event(self.usage_chunk(done)))
        return [*frames, b"data: [DONE]\n\n"]

    def error(self, error: ApiError) -> bytes:
        return _event(error.openai_body())


_HOLE = "\x00llmmesh-delta\x00"


def _event(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


# ---------------------------------------------------------------------------------------------
# models and embeddings


def models(resp: pb.ListModelsResponse) -> dict[str, Any]:
    """Every model, then every alias (a usable `model` value too)."""
    data = [model_entry(m.name) for m in resp.models]
    data += [model_entry(alias) for m in resp.models for alias in m.aliases]
    return {"object": "list", "data": data}


def model_entry(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "llmmesh"}


def embeddings(resp: pb.EmbedResponse, params: EmbedParams) -> dict[str, Any]:
    data = []
    for i, e in enumerate(resp.embeddings):
        values = shorten(e.values, params.dimensions)
        encoded: list[float] | str = values
        if params.encoding_format == "base64":
            encoded = base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
        data.append({"object": "embedding", "index": i, "embedding": encoded})
    return {"object": "list", "data": data, "model": resp.model or params.request.model,
            "usage": {"prompt_tokens": resp.prompt_tokens, "total_tokens": resp.prompt_tokens}}
