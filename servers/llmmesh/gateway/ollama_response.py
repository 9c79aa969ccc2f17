"""Inference protobuf -> Ollama's response shapes: chat and generate answers (whole, or as NDJSON
chunks ending in Ollama's final chunk), the model list, loaded models, a model's details,
embeddings.

Durations are in nanoseconds, as Ollama reports them: `total_duration` is the generation's,
`prompt_eval_duration` its time to the first token, `eval_duration` the rest; `load_duration` is
0 (the backends load models; the mesh does not see it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from llmmesh.common.structs import struct_to_dict
from llmmesh.gateway.errors import ApiError
from llmmesh.gateway.ollama_request import EmbedParams
from llmmesh.gateway.vectors import shorten
from llmmesh.inference.v1 import inference_service_pb2 as pb

NDJSON_HEADERS = {"content-type": "application/x-ndjson", "cache-control": "no-cache", "x-accel-buffering": "no"}
# The Ollama API version this front door speaks (clients gate features on it).
OLLAMA_VERSION = "0.12.6"
# Nothing is known of a model's file: Ollama's zero values, so strict clients still parse.
_EPOCH = "1970-01-01T00:00:00Z"
_DETAILS = {"parent_model": "", "format": "", "family": "", "families": None, "parameter_size": "",
            "quantization_level": ""}
Kind = Literal["chat", "generate"]


def created_at() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def done_reason(reason: str) -> str:
    # Ollama ends a tool-calling answer with "stop" (the calls came in an earlier chunk).
    return "length" if reason == "length" else "stop"


def final_fields(done: pb.GenerationDone) -> dict[str, Any]:
    total = round(done.total_ms * 1e6)
    first = min(total, round(done.time_to_first_token_ms * 1e6))
    return {"done": True, "done_reason": done_reason(done.done_reason), "total_duration": total,
            "load_duration": 0, "prompt_eval_count": done.prompt_tokens, "prompt_eval_duration": first,
            "eval_count": done.output_tokens, "eval_duration": total - first}


def tool_calls(calls: Sequence[pb.ToolCall]) -> list[dict[str, Any]]:
    """Ollama's `tool_calls`: arguments as an object."""
    return [{"id": c.id, "function": {"index": i, "name": c.name, "arguments": struct_to_dict(c.arguments)}}
            for i, c in enumerate(calls)]


def _message(content: str, calls: Sequence[pb.ToolCall] = ()) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = tool_calls(calls)
    return message


def _base(model: str, kind: Kind, text: str, calls: Sequence[pb.ToolCall] = ()) -> dict[str, Any]:
    head: dict[str, Any] = {"model": model, "created_at": created_at()}
    if kind == "chat":
        return {**head, "message": _message(text, calls), "done": False}
    return {**head, "response": text, "done": False}


def chat(resp: pb.CompleteChatResponse, model: str) -> dict[str, Any]:
    return {**_base(model, "chat", resp.message.content, resp.message.tool_calls), **final_fields(resp.done)}


def generate(text: str, done: pb.GenerationDone, model: str) -> dict[str, Any]:
    return {**_base(model, "generate", text), **final_fields(done)}


def load(model: str, kind: Kind, unload: bool) -> dict[str, Any]:
    """The answer to a request without a prompt or messages (Ollama loads or unloads the model)."""
    return {**_base(model, kind, ""), "done": True, "done_reason": "unload" if unload else "load"}


def line(data: dict[str, Any]) -> bytes:
    return orjson.dumps(data) + b"\n"


class NdjsonFramer:
    """A streamed chat or generate answer: one line per token delta (or tool-call event), then
    the final chunk with `done: true`, its reason, counts and durations."""

    headers = NDJSON_HEADERS

    def __init__(self, model: str, kind: Kind) -> None:
        self.model, self.kind = model, kind

    def start(self) -> list[bytes]:
        return []

    def delta(self, text: str) -> list[bytes]:
        return [line(_base(self.model, self.kind, text))]

    def tool_calls(self, calls: Sequence[pb.ToolCall]) -> list[bytes]:
        return [line(_base(self.model, self.kind, "", calls))]

    def done(self, done: pb.GenerationDone) -> list[bytes]:
        return [line({**_base(self.model, self.kind, ""), **final_fields(done)})]

    def error(self, error: ApiError) -> bytes:
        # Mid-stream errors are a line of their own, under HTTP 200 (Ollama's clients raise it).
        return line(error.ollama_body())


# ---------------------------------------------------------------------------------------------
# models


def _names(resp: pb.ListModelsResponse) -> list[tuple[str, pb.ModelInfo]]:
    """Every model, then every alias (a usable `model` value too), with the model it names."""
    return [(m.name, m) for m in resp.models] + [(a, m) for m in resp.models for a in m.aliases]


def _entry(name: str) -> dict[str, Any]:
    return {"name": name, "model": name, "modified_at": _EPOCH, "size": 0, "digest": "", "details": _DETAILS}


def tags(resp: pb.ListModelsResponse) -> dict[str, Any]:
    return {"models": [_entry(name) for name, _ in _names(resp)]}


def ps(resp: pb.ListModelsResponse) -> dict[str, Any]:
    """Models some backend has loaded now."""
    return {"models": [{**_entry(name), "expires_at": _EPOCH, "size_vram": 0, "context_length": m.context_window}
                       for name, m in _names(resp) if m.loaded_on]}


def find(resp: pb.ListModelsResponse, name: str) -> pb.ModelInfo | None:
    candidates = {name, name if ":" in name else f"{name}:latest"}
    return next((m for n, m in _names(resp) if n in candidates), None)


def show(info: pb.ModelInfo) -> dict[str, Any]:
    """What ListModels knows of a model: its context window and whether it calls tools natively."""
    model_info: dict[str, Any] = {"general.architecture": "llmmesh", "general.parameter_count": 0}
    if info.context_window:
        model_info["llmmesh.context_length"] = info.context_window
    return {"modelfile": "", "parameters": "", "template": "", "details": _DETAILS, "model_info": model_info,
            "capabilities": ["completion", "tools"] if info.native_tools else ["completion"],
            "modified_at": _EPOCH}


# ---------------------------------------------------------------------------------------------
# embeddings


def embed(resp: pb.EmbedResponse, params: EmbedParams) -> dict[str, Any]:
    return {"model": params.request.model,
            "embeddings": [shorten(e.values, params.dimensions) for e in resp.embeddings],
            "total_duration": 0, "load_duration": 0, "prompt_eval_count": resp.prompt_tokens}
