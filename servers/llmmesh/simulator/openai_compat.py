"""The OpenAI-compatible API as Ollama serves it: /v1/chat/completions (SSE), /v1/models,
/v1/embeddings."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from aiohttp import web

from llmmesh.simulator.anthropic_api import VERSION_HEADER, models_listing
from llmmesh.simulator.engine import Dialect, Summary, read_json, serve_generation, serve_single_shot, work_endpoint
from llmmesh.simulator.generation import count_tokens
from llmmesh.simulator.genrequest import BadRequest, GenRequest, parse_openai_chat
from llmmesh.simulator.native import embed_vectors, health_guard
from llmmesh.simulator.state import STATE, SimulatorState
from llmmesh.simulator.stats import RequestRecord

_ids = itertools.count(1)
_DONE = b"data: [DONE]\n\n"


def openai_error(status: int, message: str) -> web.Response:
    kind = {400: "invalid_request_error", 401: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return web.json_response(body, status=status)


def _sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def openai_tool_calls(calls: tuple[dict[str, Any], ...], call_id: str) -> list[dict[str, Any]]:
    """Ollama-shape tool calls -> OpenAI shape (arguments as a JSON string)."""
    return [
        {
            "index": i,
            "id": f"call_{call_id}_{i}",
            "type": "function",
            "function": {"name": c["function"]["name"], "arguments": json.dumps(c["function"]["arguments"])},
        }
        for i, c in enumerate(calls)
    ]


class OpenAIChatDialect(Dialect):
    content_type = "text/event-stream"

    def __init__(self, req: GenRequest, include_usage: bool) -> None:
        super().__init__(req)
        self.include_usage = include_usage
        self.number = next(_ids)
        self.id = f"chatcmpl-{self.number}"
        self.created = int(time.time())

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.req.model,
            "system_fingerprint": "fp_ollama",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }

    @staticmethod
    def _finish_reason(summary: Summary) -> str:
        return "tool_calls" if summary.answer.tool_calls else summary.answer.done_reason

    @staticmethod
    def _usage(summary: Summary) -> dict[str, int]:
        prompt, completion = summary.answer.prompt_tokens, summary.eval_count
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def token_frame(self, token: str) -> bytes:
        return _sse(self._chunk({"role": "assistant", "content": token}, None))

    def tools_frame(self, calls: tuple[dict[str, Any], ...]) -> bytes:
        delta = {"role": "assistant", "content": "", "tool_calls": openai_tool_calls(calls, str(self.number))}
        return _sse(self._chunk(delta, None))

    def final_frames(self, summary: Summary) -> list[bytes]:
        frames = [_sse(self._chunk({"role": "assistant", "content": ""}, self._finish_reason(summary)))]
        if self.include_usage:
            usage_chunk = {**self._chunk({}, None), "choices": [], "usage": self._usage(summary)}
            frames.append(_sse(usage_chunk))
        frames.append(_DONE)
        return frames

    def error_frame(self, message: str) -> bytes:
        return _sse({"error": {"message": message, "type": "api_error", "param": None, "code": None}})

    def full_body(self, summary: Summary) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": summary.text}
        if summary.answer.tool_calls:
            message["tool_calls"] = openai_tool_calls(summary.answer.tool_calls, str(self.number))
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.req.model,
            "system_fingerprint": "fp_ollama",
            "choices": [{"index": 0, "message": message, "finish_reason": self._finish_reason(summary)}],
            "usage": self._usage(summary),
        }

    @staticmethod
    def error_response(status: int, message: str) -> web.Response:
        return openai_error(status, message)


@work_endpoint
async def chat_completions(request: web.Request, state: SimulatorState, record: RequestRecord) -> web.StreamResponse:
    try:
        body = await read_json(request)
        req = parse_openai_chat(body)
        options = body.get("stream_options") or {}
        include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
    except BadRequest as exc:
        state.stats.finish(record, "bad_request", 400)
        return openai_error(400, str(exc))
    return await serve_generation(request, state, record, req, OpenAIChatDialect(req, include_usage))


@work_endpoint
async def embeddings(request: web.Request, state: SimulatorState, record: RequestRecord) -> web.StreamResponse:
    try:
        body = await read_json(request)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("model is required")
        value = body.get("input")
        inputs = [value] if isinstance(value, str) else value
        if not isinstance(inputs, list) or not inputs or not all(isinstance(v, str) for v in inputs):
            raise BadRequest("input must be a string or a non-empty list of strings")
        dims = body.get("dimensions") or state.config.embedding_dim
        if isinstance(dims, bool) or not isinstance(dims, int) or not 1 <= dims <= state.config.embedding_dim:
            raise BadRequest(f"dimensions must be an integer between 1 and {state.config.embedding_dim}")
    except BadRequest as exc:
        state.stats.finish(record, "bad_request", 400)
        return openai_error(400, str(exc))

    def build() -> dict[str, Any]:
        vectors = embed_vectors(model, inputs, state.config.embedding_dim, dims)
        tokens = sum(count_tokens(t) for t in inputs)
        return {
            "object": "list",
            "data": [{"object": "embedding", "embedding": v, "index": i} for i, v in enumerate(vectors)],
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    return await serve_single_shot(
        request, state, record, model, "\n".join(inputs), str(body.get("sim_fault") or ""), openai_error, build
    )


# Who /v1/models says owns the models: the server a continuation behaviour stands for.
_OWNERS = {"echo": "llamacpp", "flag": "vllm"}


async def models(request: web.Request) -> web.Response:
    if (failed := await health_guard(request)) is not None:
        return failed
    state = request.app[STATE]
    if VERSION_HEADER in request.headers:
        return web.json_response(models_listing(list(state.catalog.names)))
    created = int(time.time())
    owner = _OWNERS.get(state.config.continuation, "library")
    data = [{"id": n, "object": "model", "created": created, "owned_by": owner} for n in state.catalog.names]
    return web.json_response({"object": "list", "data": data})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_get("/v1/models", models)
