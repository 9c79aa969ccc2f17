"""A stand-in for `llmmesh.inference.transport.Transport`, for unit tests of the engine, the
inventory and the protocol adapters: each backend answers from a script, every request is
recorded, and no socket is opened.

A streamed answer is a list of wire lines (build them with `ollama_lines` / `openai_lines`); an
exception in it is raised where it stands, so `[BackendFailure(...)]` fails before the first token
and `[*lines[:3], BackendFailure(...)]` after three. `Hang()` waits until the reader gives up.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from prometheus_client import CollectorRegistry

from llmmesh.inference.engine import InferenceEngine
from llmmesh.inference.metrics import InferenceMetrics
from llmmesh.inference.pool import Backend
from llmmesh.settings import InferenceSettings


class Hang:
    """A line that never comes: the stream stays open until its reader is cancelled."""


Line = str | Exception | Hang
# A JSON document, or the exception its request raises.
Doc = dict[str, Any] | Exception


@dataclass(frozen=True)
class Sent:
    backend: str
    path: str
    body: dict[str, Any] | None


@dataclass
class FakeTransport:
    """`streams[backend]` answers that backend's streamed requests in order (the last one repeats);
    `docs[(backend, path)]` its JSON requests (a function of the request body, or a fixed answer)."""

    streams: dict[str, list[Sequence[Line]]] = field(default_factory=dict)
    docs: dict[tuple[str, str], Doc | Callable[[dict[str, Any] | None], Doc]] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)
    streamed: dict[str, int] = field(default_factory=dict)  # streamed requests per backend
    # Streams opened and not yet closed: a cancelled generation must leave none.
    open_streams: int = 0
    closed: bool = False

    def bodies(self, backend: str) -> list[dict[str, Any]]:
        return [s.body for s in self.sent if s.backend == backend and s.body is not None]

    @asynccontextmanager
    async def stream(self, backend: Backend, path: str, body: dict[str, Any]) -> AsyncIterator[AsyncIterator[str]]:
        self.sent.append(Sent(backend.name, path, body))
        n = self.streamed[backend.name] = self.streamed.get(backend.name, 0) + 1
        script = self.streams[backend.name]
        answer = script[min(n, len(script)) - 1]
        if answer and isinstance(answer[0], Exception):
            raise answer[0]  # refused before the body, like an HTTP 503
        self.open_streams += 1
        try:
            yield _lines(answer)
        finally:
            self.open_streams -= 1

    async def get_json(self, backend: Backend, path: str, timeout_s: float) -> dict[str, Any]:
        return self._doc(backend, path, None)

    async def post_json(self, backend: Backend, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._doc(backend, path, body)

    def _doc(self, backend: Backend, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        self.sent.append(Sent(backend.name, path, body))
        answer = self.docs[(backend.name, path)]
        doc = answer(body) if callable(answer) else answer
        if isinstance(doc, Exception):
            raise doc
        return doc

    async def close(self) -> None:
        self.closed = True


async def _lines(answer: Sequence[Line]) -> AsyncIterator[str]:
    for line in answer:
        if isinstance(line, Exception):
            raise line
        if isinstance(line, Hang):
            await asyncio.Event().wait()
        yield line


def ollama_lines(*tokens: str, done_reason: str = "stop", prompt_tokens: int = 7, output_tokens: int | None = None,
                 tool_calls: Sequence[dict[str, Any]] = ()) -> list[str]:
    """An Ollama /api/chat NDJSON body: one chunk per token, tool calls in a chunk of their own,
    then the final chunk with the counts."""
    chunks: list[dict[str, Any]] = [{"message": {"role": "assistant", "content": t}, "done": False} for t in tokens]
    if tool_calls:
        chunks.append({"message": {"role": "assistant", "content": "", "tool_calls": list(tool_calls)},
                       "done": False})
    chunks.append({"message": {"role": "assistant", "content": ""}, "done": True, "done_reason": done_reason,
                   "prompt_eval_count": prompt_tokens,
                   "eval_count": len(tokens) if output_tokens is None else output_tokens})
    return [json.dumps(c) for c in chunks]


def openai_lines(*tokens: str, finish_reason: str = "stop", prompt_tokens: int = 7,
                 output_tokens: int | None = None, tool_fragments: Sequence[dict[str, Any]] = ()) -> list[str]:
    """An OpenAI /v1/chat/completions SSE body: a delta per token, then each tool call fragment,
    the finish reason, the usage chunk and [DONE]."""
    chunks: list[dict[str, Any]] = [{"choices": [{"index": 0, "delta": {"content": t}}]} for t in tokens]
    chunks += [{"choices": [{"index": 0, "delta": {"tool_calls": [frag]}}]} for frag in tool_fragments]
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish_reason}]})
    completion = len(tokens) if output_tokens is None else output_tokens
    chunks.append({"choices": [], "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion}})
    return [f"data: {json.dumps(c)}" for c in chunks] + ["data: [DONE]"]


def fake_engine(transport: FakeTransport, *backends: str, models: Sequence[str] = ("m",),
                registry: CollectorRegistry | None = None, **settings: Any) -> InferenceEngine:
    """An engine over `backends` (`name` or a full backend spec), all healthy and serving `models`
    (as their inventory would say), with no backoff between attempts."""
    specs = tuple(b if "://" in b else f"{b}=http://{b}.invalid:11434" for b in backends)
    options = {"backoff_s": 0.0, **settings}
    engine = InferenceEngine(replace(InferenceSettings(), backends=specs, **options),
                             InferenceMetrics.create(registry or CollectorRegistry()),
                             transport=transport)  # type: ignore[arg-type]  # duck-typed Transport
    for backend in engine.pool.backends:
        backend.healthy = True
        backend.models = set(models)
    return engine
