"""Ollama's native API: /api/chat, /api/generate (NDJSON), /api/embed, /api/tags, /api/ps, ..."""

from __future__ import annotations

import json
import zlib
from typing import Any, Literal

from aiohttp import web

from llmmesh.simulator.embeddings import embed_text
from llmmesh.simulator.engine import (
    ClientGone,
    Dialect,
    Summary,
    bad_request,
    hang,
    not_found_message,
    read_json,
    serve_generation,
    serve_single_shot,
    work_endpoint,
)
from llmmesh.simulator.faults import FaultSpecError, health_status, parse_fault_spec
from llmmesh.simulator.generation import count_tokens
from llmmesh.simulator.genrequest import BadRequest, GenRequest, parse_native
from llmmesh.simulator.models import model_details, normalize_name, now_rfc3339
from llmmesh.simulator.state import STATE, SimulatorState
from llmmesh.simulator.stats import RequestRecord


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _counters(summary: Summary) -> dict[str, Any]:
    return {
        "total_duration": summary.total_ns,
        "load_duration": summary.load_ns,
        "prompt_eval_count": summary.answer.prompt_tokens,
        "prompt_eval_duration": summary.prompt_eval_ns,
        "eval_count": summary.eval_count,
        "eval_duration": summary.eval_ns,
    }


class ChatDialect(Dialect):
    def _base(self, message: dict[str, Any], done: bool) -> dict[str, Any]:
        return {"model": self.req.model, "created_at": now_rfc3339(), "message": message, "done": done}

    def token_frame(self, token: str) -> bytes:
        return _line(self._base({"role": "assistant", "content": token}, False))

    def tools_frame(self, calls: tuple[dict[str, Any], ...]) -> bytes:
        return _line(self._base({"role": "assistant", "content": "", "tool_calls": list(calls)}, False))

    def final_frames(self, summary: Summary) -> list[bytes]:
        body = self._base({"role": "assistant", "content": ""}, True)
        return [_line({**body, "done_reason": summary.answer.done_reason, **_counters(summary)})]

    def error_frame(self, message: str) -> bytes:
        return _line({"error": message})

    def full_body(self, summary: Summary) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": summary.text}
        if summary.answer.tool_calls:
            message["tool_calls"] = list(summary.answer.tool_calls)
        return {**self._base(message, True), "done_reason": summary.answer.done_reason, **_counters(summary)}


class GenerateDialect(Dialect):
    def _base(self, text: str, done: bool) -> dict[str, Any]:
        return {"model": self.req.model, "created_at": now_rfc3339(), "response": text, "done": done}

    def _context(self, summary: Summary) -> list[int]:
        # Ollama returns the token ids of prompt + answer; fake ids, one per counted token.
        words = (self.req.full_text() + summary.text).split()
        return [zlib.crc32(w.encode()) % 32000 for w in words]

    def token_frame(self, token: str) -> bytes:
        return _line(self._base(token, False))

    def tools_frame(self, calls: tuple[dict[str, Any], ...]) -> bytes:  # generate has no tools
        return _line(self._base("", False))

    def final_frames(self, summary: Summary) -> list[bytes]:
        return [_line(self._final(summary, ""))]

    def _final(self, summary: Summary, text: str) -> dict[str, Any]:
        return {
            **self._base(text, True),
            "done_reason": summary.answer.done_reason,
            "context": self._context(summary),
            **_counters(summary),
        }

    def error_frame(self, message: str) -> bytes:
        return _line({"error": message})

    def full_body(self, summary: Summary) -> dict[str, Any]:
        return self._final(summary, summary.text)


async def _load_only(state: SimulatorState, record: RequestRecord, req: GenRequest) -> web.Response:
    """Empty prompt / no messages: Ollama just loads (or, with keep_alive 0, unloads) the model."""
    if not state.catalog.has(req.model):
        state.stats.finish(record, "not_found", 404)
        return Dialect.error_response(404, not_found_message(req.model))
    state.catalog.touch(req.model, req.keep_alive_s)
    reason = "unload" if req.keep_alive_s == 0 else "load"
    body: dict[str, Any] = {"model": req.model, "created_at": now_rfc3339(), "done": True, "done_reason": reason}
    if req.kind == "chat":
        body["message"] = {"role": "assistant", "content": ""}
    else:
        body["response"] = ""
    if req.stream:
        return web.Response(body=_line(body), content_type="application/x-ndjson")
    return web.json_response(body)


async def _native(
    request: web.Request, state: SimulatorState, record: RequestRecord, kind: Literal["chat", "generate"]
) -> web.StreamResponse:
    try:
        req = parse_native(kind, await read_json(request))
    except BadRequest as exc:
        return bad_request(state, record, exc, Dialect.error_response)
    if req.is_load_only:
        return await _load_only(state, record, req)
    if kind == "chat" and req.tools and _lacks_tools(state, req.model):
        # Ollama's answer for a model whose template has no tool calling.
        return bad_request(state, record, BadRequest(f"registry.ollama.ai/library/{req.model} does not support tools"),
                           Dialect.error_response)
    dialect = ChatDialect(req) if kind == "chat" else GenerateDialect(req)
    return await serve_generation(request, state, record, req, dialect)


def _lacks_tools(state: SimulatorState, model: str) -> bool:
    return normalize_name(model) in {normalize_name(m) for m in state.config.no_tools}


@work_endpoint
async def chat(request: web.Request, state: SimulatorState, record: RequestRecord) -> web.StreamResponse:
    return await _native(request, state, record, "chat")


@work_endpoint
async def generate(request: web.Request, state: SimulatorState, record: RequestRecord) -> web.StreamResponse:
    return await _native(request, state, record, "generate")


def _embed_inputs(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise BadRequest(f"{key} must be a string or a list of strings")


def _dimensions(body: dict[str, Any], default: int) -> int:
    dims = body.get("dimensions")
    if dims is None:
        return default
    if isinstance(dims, bool) or not isinstance(dims, int) or not 1 <= dims <= default:
        raise BadRequest(f"dimensions must be an integer between 1 and {default}")
    return dims


def embed_vectors(model: str, inputs: list[str], full_dim: int, dim: int) -> list[list[float]]:
    vectors = [embed_text(model, text, full_dim) for text in inputs]
    if dim == full_dim:
        return vectors
    out = []  # truncate, then renormalise, like Ollama's "dimensions"
    for vec in vectors:
        cut = vec[:dim]
        norm = sum(v * v for v in cut) ** 0.5 or 1.0
        out.append([v / norm for v in cut])
    return out


@work_endpoint
async def embed(request: web.Request, state: SimulatorState, record: RequestRecord) -> web.StreamResponse:
    try:
        body = await read_json(request)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("model is required")
        inputs = _embed_inputs(body, "input")
        dim = _dimensions(body, state.config.embedding_dim)
        sim_fault = body.get("sim_fault") or ""
    except BadRequest as exc:
        return bad_request(state, record, exc, Dialect.error_response)

    def build() -> dict[str, Any]:
        record.tokens = 0
        return {
            "model": model,
            "embeddings": embed_vectors(model, inputs, state.config.embedding_dim, dim),
            "total_duration": 1_000_000 + 10_000 * len(inputs),
            "load_duration": 40_000,
            "prompt_eval_count": sum(count_tokens(t) for t in inputs),
        }

    return await serve_single_shot(
        request, state, record, model, "\n".join(inputs), str(sim_fault), Dialect.error_response, build
    )


@work_endpoint
async def embeddings_legacy(request: web.Request, state: SimulatorState, record: RequestRecord) -> web.StreamResponse:
    """The deprecated /api/embeddings: one prompt in, ``{"embedding": [...]}`` out."""
    try:
        body = await read_json(request)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("model is required")
        prompt = body.get("prompt") or ""
        if not isinstance(prompt, str):
            raise BadRequest("prompt must be a string")
    except BadRequest as exc:
        return bad_request(state, record, exc, Dialect.error_response)

    def build() -> dict[str, Any]:
        return {"embedding": embed_text(model, prompt, state.config.embedding_dim)}

    return await serve_single_shot(
        request, state, record, model, prompt, str(body.get("sim_fault") or ""), Dialect.error_response, build
    )


# -- health / listing endpoints ---------------------------------------------------------------


async def health_guard(request: web.Request) -> web.Response | None:
    """Apply a ``health=`` fault (instance or header); None means answer normally."""
    state = request.app[STATE]
    state.stats.count_endpoint(request.path)
    try:
        spec = state.faults.spec.merge(parse_fault_spec(request.headers.get("x-sim-fault", "")))
    except FaultSpecError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    if spec.health == "hang":
        try:
            await hang(request, state)
        except ClientGone:
            pass
        return web.Response(status=503)  # only sent if the server is shutting down
    status = health_status(spec)
    if status is not None:
        return web.json_response({"error": f"simulated fault: health {spec.health}"}, status=status)
    return None


async def root(request: web.Request) -> web.Response:
    request.app[STATE].stats.count_endpoint("/")
    return web.Response(text="Ollama is running")


async def version(request: web.Request) -> web.Response:
    if (failed := await health_guard(request)) is not None:
        return failed
    return web.json_response({"version": request.app[STATE].config.version})


async def tags(request: web.Request) -> web.Response:
    if (failed := await health_guard(request)) is not None:
        return failed
    return web.json_response({"models": request.app[STATE].catalog.tags()})


async def ps(request: web.Request) -> web.Response:
    if (failed := await health_guard(request)) is not None:
        return failed
    return web.json_response({"models": request.app[STATE].catalog.running()})


async def show(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.stats.count_endpoint(request.path)
    try:
        body = await read_json(request)
    except BadRequest as exc:
        return web.json_response({"error": str(exc)}, status=400)
    model = body.get("model") or body.get("name")
    if not isinstance(model, str) or not state.catalog.has(model):
        return web.json_response({"error": not_found_message(str(model))}, status=404)
    details = model_details(model)
    arch = details["family"]
    return web.json_response(
        {
            "modelfile": f"FROM {model}\n",
            "parameters": "",
            "template": "{{ .Prompt }}",
            "details": details,
            "model_info": {"general.architecture": arch, "general.parameter_count": 0,
                           f"{arch}.context_length": state.catalog.context_length},
            "capabilities": ["completion"] if _lacks_tools(state, model) else ["completion", "tools"],
            "modified_at": state.catalog.modified_at,
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", root)
    app.router.add_get("/api/version", version)
    app.router.add_get("/api/tags", tags)
    app.router.add_get("/api/ps", ps)
    app.router.add_post("/api/show", show)
    app.router.add_post("/api/chat", chat)
    app.router.add_post("/api/generate", generate)
    app.router.add_post("/api/embed", embed)
    app.router.add_post("/api/embeddings", embeddings_legacy)
