"""Wire formats: Ollama's native API (NDJSON), the OpenAI-compatible API (SSE), and Anthropic's
Messages API (SSE, in anthropic.py).

One adapter per backend: it knows the backend's configuration (the API base its paths sit under,
how its server treats a continuation) and its credentials. It builds the HTTP request for a
ModelCall, the headers that authenticate it, and turns the streamed body into backend-neutral
events. A `prefix` is text already delivered to the client by a backend that failed mid-stream: it
is sent as a trailing assistant message, and the events hold only what follows it
(llmmesh.inference.continuation).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import orjson

from llmmesh.common.backends import DEFAULT_CONTINUATION, BackendConfig, Continuation, Protocol
from llmmesh.common.model_call import (
    AttemptEvent,
    BackendDone,
    ChatMessage,
    ModelCall,
    TextDelta,
    ToolCallData,
    ToolCalls,
    ToolDef,
)
from llmmesh.inference.continuation import continued, sent_prefix
from llmmesh.inference.credentials import Credentials
from llmmesh.inference.failures import BackendFailure


def _tools(tools: tuple[ToolDef, ...]) -> list[dict[str, Any]]:
    return [
        {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
        for t in tools
    ]


def _messages(call: ModelCall, prefix: str, *, openai: bool) -> list[dict[str, Any]]:
    msgs = list(call.as_messages())
    if prefix:
        msgs.append(ChatMessage("assistant", prefix))
    out = []
    for m in msgs:
        entry: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.tool_calls:
            entry["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                if openai else {"function": {"name": c.name, "arguments": c.arguments}}
                for c in m.tool_calls
            ]
        if m.role == "tool":
            if openai:
                entry["tool_call_id"] = m.tool_call_id
            if m.name:
                entry["tool_name" if not openai else "name"] = m.name
        out.append(entry)
    return out


def args(raw: Any) -> dict[str, Any]:
    """Tool call arguments as a dict, whether they came as an object or as JSON text."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str) and raw.strip():
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError:
            return {"_raw": raw}
        return parsed if isinstance(parsed, dict) else {"_value": parsed}
    return {}


class Adapter:
    """What every wire format shares: paths under the backend's API base, credentials, the
    continuation behaviour, and stream chunks that may carry an error."""

    protocol: Protocol
    # Paths as the protocol's default server has them (the config maps them under its base).
    _inventory_paths: tuple[str, ...] = ()

    def __init__(self, config: BackendConfig | None = None, credentials: Credentials | None = None) -> None:
        self.config = config or BackendConfig("backend", "http://localhost", self.protocol,
                                              continuation=DEFAULT_CONTINUATION[self.protocol])
        self.credentials = credentials or Credentials()
        # AUTO until the inventory learns what the server is (llmmesh.inference.inventory).
        self.continuation = self.config.continuation

    def path(self, path: str) -> str:
        return self.config.api_path(path)

    @property
    def inventory_paths(self) -> tuple[str, ...]:
        return tuple(self.path(p) for p in self._inventory_paths)

    @property
    def headers(self) -> dict[str, str]:
        """What authenticates a request (none without a key)."""
        return {"authorization": f"Bearer {self.credentials.key}"} if self.credentials.key else {}

    def redact(self, text: str) -> str:
        return self.credentials.redact(text)

    def request(self, call: ModelCall, prefix: str) -> tuple[str, dict[str, Any]]:
        path, body = self._request(call, sent_prefix(prefix))
        return self.path(path), body

    def _request(self, call: ModelCall, prefix: str) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def events(self, backend: str, lines: AsyncIterator[str], prefix: str = "") -> AsyncIterator[AttemptEvent]:
        """The attempt's events; after a `prefix`, only the text new to the caller. An echo is
        stripped unless the server is known to continue (AUTO strips: without an echo, nothing is)."""
        echo = self.continuation in (Continuation.ECHO, Continuation.AUTO)
        return continued(self._events(backend, lines), prefix, echo)

    def _events(self, backend: str, lines: AsyncIterator[str]) -> AsyncIterator[AttemptEvent]:
        raise NotImplementedError

    def embed_request(self, model: str, inputs: list[str]) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def embed_result(self, doc: dict[str, Any]) -> tuple[list[list[float]], int]:
        raise NotImplementedError

    def inventory(self, listing: dict[str, Any], loaded: dict[str, Any] | None) -> tuple[set[str], set[str]]:
        """(models served, models loaded) from the answers to `inventory_paths`."""
        raise NotImplementedError

    def json_line(self, backend: str, line: str) -> dict[str, Any]:
        try:
            doc = orjson.loads(line)  # once per streamed token: orjson is several times faster
        except orjson.JSONDecodeError:
            raise BackendFailure(backend, self.redact(f"malformed stream chunk: {line[:80]!r}")) from None
        if not isinstance(doc, dict):
            raise BackendFailure(backend, "stream chunk is not a JSON object")
        if "error" in doc:
            err = doc["error"]
            message = err.get("message", str(err)) if isinstance(err, dict) else str(err)
            raise BackendFailure(backend, self.redact(f"error in stream: {message}"))
        return doc

    def digests(self, listing: dict[str, Any]) -> dict[str, str]:
        """Each listed model's content digest (a model pulled again gets a new one), where the API
        gives one."""
        return {}


class OllamaProtocol(Adapter):
    protocol = Protocol.OLLAMA
    _inventory_paths = ("/api/tags", "/api/ps")

    def _request(self, call: ModelCall, prefix: str) -> tuple[str, dict[str, Any]]:
        s = call.sampling
        options = {k: v for k, v in {
            "temperature": s.temperature, "num_predict": s.max_tokens, "seed": s.seed,
            "stop": list(s.stop) or None, "num_ctx": s.num_ctx, "top_p": s.top_p,
            "frequency_penalty": s.frequency_penalty,
        }.items() if v is not None}
        body: dict[str, Any] = {"model": call.model, "stream": True, "options": options}
        if call.json_schema is not None:
            body["format"] = call.json_schema
        if not call.messages and not prefix:
            body.update(prompt=call.prompt, system=call.system)
            return "/api/generate", body
        body["messages"] = _messages(call, prefix, openai=False)
        if call.tools:
            body["tools"] = _tools(call.tools)
        return "/api/chat", body

    async def _events(self, backend: str, lines: AsyncIterator[str]) -> AsyncIterator[AttemptEvent]:
        # Ollama sends tool calls in a chunk before the final one, whose done_reason stays "stop".
        saw_tool_calls = False
        async for line in lines:
            if not line.strip():
                continue
            doc = self.json_line(backend, line)
            message = doc.get("message") or {}
            text = doc.get("response") or message.get("content") or ""
            if text:
                yield TextDelta(text)
            calls = message.get("tool_calls") or []
            if calls:
                saw_tool_calls = True
                yield ToolCalls(tuple(
                    ToolCallData(c.get("id") or f"call_{i}", c["function"]["name"],
                                 args(c["function"].get("arguments")))
                    for i, c in enumerate(calls)
                ))
            if doc.get("done"):
                reason = "tool_calls" if saw_tool_calls else doc.get("done_reason") or "stop"
                yield BackendDone(reason, int(doc.get("prompt_eval_count") or 0), int(doc.get("eval_count") or 0))
                return
        raise BackendFailure(backend, "stream ended without a final chunk")

    def embed_request(self, model: str, inputs: list[str]) -> tuple[str, dict[str, Any]]:
        return self.path("/api/embed"), {"model": model, "input": inputs}

    def embed_result(self, doc: dict[str, Any]) -> tuple[list[list[float]], int]:
        return doc["embeddings"], int(doc.get("prompt_eval_count") or 0)

    def inventory(self, tags: dict[str, Any], ps: dict[str, Any] | None) -> tuple[set[str], set[str]]:
        models = {m["name"] for m in tags.get("models", [])}
        loaded = {m["name"] for m in (ps or {}).get("models", [])}
        return models, loaded

    def digests(self, tags: dict[str, Any]) -> dict[str, str]:
        return {m["name"]: str(m["digest"]) for m in tags.get("models", []) if m.get("digest")}


# What /v1/models says owns a model, for servers whose continuation is known (see continuation.py).
OWNER_CONTINUATION = {"llamacpp": Continuation.ECHO, "vllm": Continuation.FLAG}


class OpenAIProtocol(Adapter):
    protocol = Protocol.OPENAI
    _inventory_paths = ("/v1/models",)

    def _request(self, call: ModelCall, prefix: str) -> tuple[str, dict[str, Any]]:
        s = call.sampling
        body: dict[str, Any] = {
            "model": call.model, "stream": True, "stream_options": {"include_usage": True},
            "messages": _messages(call, prefix, openai=True),
        }
        body.update({k: v for k, v in {
            "temperature": s.temperature, "max_tokens": s.max_tokens, "seed": s.seed,
            "stop": list(s.stop) or None, "top_p": s.top_p, "frequency_penalty": s.frequency_penalty,
        }.items() if v is not None})
        if call.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema", "json_schema": {"name": "output", "schema": call.json_schema, "strict": True},
            }
        if call.tools:
            body["tools"] = _tools(call.tools)
        if prefix and self.continuation is Continuation.FLAG:
            # vLLM's chat template otherwise opens a new assistant turn after the prefix.
            body.update(continue_final_message=True, add_generation_prompt=False)
        return "/v1/chat/completions", body

    async def _events(self, backend: str, lines: AsyncIterator[str]) -> AsyncIterator[AttemptEvent]:
        # Tool call fragments arrive indexed, arguments as string pieces: assemble before emitting.
        pending: dict[int, dict[str, str]] = {}
        reason = ""
        usage: dict[str, Any] = {}
        async for line in lines:
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                if pending:
                    yield ToolCalls(tuple(
                        ToolCallData(p["id"] or f"call_{i}", p["name"], args(p["arguments"]))
                        for i, p in sorted(pending.items())
                    ))
                yield BackendDone("tool_calls" if pending else reason or "stop",
                                  int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
                return
            doc = self.json_line(backend, data)
            usage = doc.get("usage") or usage
            for choice in doc.get("choices") or []:
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    yield TextDelta(delta["content"])
                for frag in delta.get("tool_calls") or []:
                    slot = pending.setdefault(int(frag.get("index", 0)), {"id": "", "name": "", "arguments": ""})
                    slot["id"] = frag.get("id") or slot["id"]
                    fn = frag.get("function") or {}
                    slot["name"] += fn.get("name") or ""
                    slot["arguments"] += fn.get("arguments") or ""
                reason = choice.get("finish_reason") or reason
        raise BackendFailure(backend, "stream ended without [DONE]")

    def embed_request(self, model: str, inputs: list[str]) -> tuple[str, dict[str, Any]]:
        return self.path("/v1/embeddings"), {"model": model, "input": inputs}

    def embed_result(self, doc: dict[str, Any]) -> tuple[list[list[float]], int]:
        data = sorted(doc["data"], key=lambda d: d.get("index", 0))
        return [d["embedding"] for d in data], int((doc.get("usage") or {}).get("prompt_tokens") or 0)

    def inventory(self, tags: dict[str, Any], ps: dict[str, Any] | None) -> tuple[set[str], set[str]]:
        models = {m["id"] for m in tags.get("data", [])}
        # An OpenAI-compatible server holds what it lists in memory.
        return models, set(models)

    @staticmethod
    def continuation_of(models: dict[str, Any]) -> Continuation | None:
        """The continuation behaviour /v1/models tells, by who owns the models (llama.cpp: `llamacpp`,
        vLLM: `vllm`); None when it does not."""
        owners = {m.get("owned_by") for m in models.get("data", []) if isinstance(m, dict)}
        found = {OWNER_CONTINUATION[o] for o in owners if o in OWNER_CONTINUATION}
        return found.pop() if len(found) == 1 else None


# Any adapter: the engine and the inventory use only what Adapter declares.
WireProtocol = Adapter
