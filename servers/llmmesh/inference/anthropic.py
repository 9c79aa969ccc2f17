"""Anthropic's Messages API (`#anthropic`): POST /v1/messages streamed as SSE events, GET /v1/models.

- The system prompt is top-level `system`; system messages anywhere in a chat join it.
- Messages alternate user/assistant: consecutive ones of a role merge into one of content blocks.
  Assistant tool calls are `tool_use` blocks; tool results are `tool_result` blocks in a user
  message, matched to their call by id (or, without one, by name and order).
- `max_tokens` is required: the call's, else the configured default (LLMMESH_ANTHROPIC_MAX_TOKENS).
  Temperature is clamped to Anthropic's 0-1; `seed`, `num_ctx` and `frequency_penalty` do not exist
  there and are left out; whitespace-only stop sequences (refused) too.
- Structured output: a JSON schema of an object becomes a forced tool whose `input_schema` is the
  schema; its `input_json_delta` fragments stream as the answer's text, so callers see JSON text
  as from any backend (the patterns validate it as they do everywhere). Where a tool cannot carry
  it (a schema that is no object, the call also offering tools, a continuation, which a forced tool
  cannot take) the schema goes into the system prompt instead.
- Continuation: Anthropic continues a trailing assistant message (a prefill) without echo.
- No embeddings API: embedding on an Anthropic backend is UNIMPLEMENTED there.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

from llmmesh.common.backends import BackendConfig, Protocol
from llmmesh.common.model_call import AttemptEvent, BackendDone, ModelCall, TextDelta, ToolCallData, ToolCalls
from llmmesh.inference.credentials import Credentials
from llmmesh.inference.failures import BackendFailure, Unsupported
from llmmesh.inference.protocols import Adapter, args
from llmmesh.settings import InferenceSettings

API_VERSION = "2023-06-01"
# The forced tool that carries structured output; forced only in calls that offer no tools of their own.
OUTPUT_TOOL = "llmmesh_structured_output"
_STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
                 "pause_turn": "stop", "refusal": "stop", "model_context_window_exceeded": "length"}
_TOOL_ID = re.compile(r"[^A-Za-z0-9_-]")


def _tool_id(raw: str, n: int) -> str:
    """Anthropic's ids match ^[A-Za-z0-9_-]+$; another backend's may not."""
    return _TOOL_ID.sub("_", raw) or f"toolu_{n}"


def _schema_instruction(schema: dict[str, Any]) -> str:
    return ("Answer with one JSON value only, no prose and no code fence, valid against this JSON schema:\n"
            + json.dumps(schema, separators=(",", ":")))


class _Conversation:
    """The system text and the merged messages of a call."""

    def __init__(self) -> None:
        self.system: list[str] = []
        self.messages: list[dict[str, Any]] = []
        self._unanswered: list[tuple[str, str]] = []  # (id, name) of the last tool calls

    def add(self, role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if self.messages and self.messages[-1]["role"] == role:
            self.messages[-1]["content"].extend(blocks)
        else:
            self.messages.append({"role": role, "content": blocks})

    def tool_uses(self, text: str, calls: tuple[ToolCallData, ...]) -> None:
        uses = [{"type": "tool_use", "id": _tool_id(c.id, i), "name": c.name, "input": c.arguments}
                for i, c in enumerate(calls)]
        self._unanswered = [(u["id"], u["name"]) for u in uses]
        self.add("assistant", ([{"type": "text", "text": text}] if text else []) + uses)

    def tool_result(self, call_id: str, name: str, content: str) -> None:
        found = next((i for i, (cid, n) in enumerate(self._unanswered)
                      if (call_id and cid == _tool_id(call_id, 0)) or (not call_id and n == name)), None)
        if found is None and not call_id and self._unanswered:
            found = 0
        if found is None:  # no call to answer: the result is plain text
            self.add("user", [{"type": "text", "text": f"Result of tool {name or call_id}: {content}"}])
            return
        use_id, _ = self._unanswered.pop(found)
        self.add("user", [{"type": "tool_result", "tool_use_id": use_id, "content": content}])


def _conversation(call: ModelCall) -> _Conversation:
    conv = _Conversation()
    if call.system:
        conv.system.append(call.system)
    if not call.messages:
        conv.add("user", [{"type": "text", "text": call.prompt}])
    for m in call.messages:
        if m.role == "system":
            conv.system.append(m.content)
        elif m.role == "tool":
            conv.tool_result(m.tool_call_id, m.name, m.content)
        elif m.role == "assistant" and m.tool_calls:
            conv.tool_uses(m.content, m.tool_calls)
        elif m.content:  # Anthropic refuses empty text blocks
            conv.add("assistant" if m.role == "assistant" else "user", [{"type": "text", "text": m.content}])
    return conv


class AnthropicProtocol(Adapter):
    protocol = Protocol.ANTHROPIC
    _inventory_paths = ("/v1/models?limit=1000",)

    def __init__(self, config: BackendConfig | None = None, credentials: Credentials | None = None,
                 max_tokens: int = InferenceSettings.anthropic_max_tokens) -> None:
        super().__init__(config, credentials)
        self.max_tokens = max_tokens

    @property
    def headers(self) -> dict[str, str]:
        key = {"x-api-key": self.credentials.key} if self.credentials.key else {}
        return {**key, "anthropic-version": API_VERSION}

    def _request(self, call: ModelCall, prefix: str) -> tuple[str, dict[str, Any]]:
        s = call.sampling
        conv = _conversation(call)
        schema = call.json_schema
        forced = schema is not None and schema.get("type") == "object" and not call.tools and not prefix
        if schema is not None and not forced:
            conv.system.append(_schema_instruction(schema))
        if prefix:
            conv.add("assistant", [{"type": "text", "text": prefix}])
        body: dict[str, Any] = {"model": call.model, "max_tokens": s.max_tokens or self.max_tokens, "stream": True,
                                "messages": conv.messages}
        if conv.system:
            body["system"] = "\n\n".join(conv.system)
        body.update({k: v for k, v in {
            "temperature": None if s.temperature is None else min(max(s.temperature, 0.0), 1.0),
            "top_p": s.top_p, "stop_sequences": [x for x in s.stop if x.strip()] or None,
        }.items() if v is not None})
        if call.tools:
            body["tools"] = [{"name": t.name, "description": t.description, "input_schema": t.parameters}
                             for t in call.tools]
        if forced:
            body["tools"] = [{"name": OUTPUT_TOOL, "description": "Give the answer as this tool's input.",
                              "input_schema": schema}]
            body["tool_choice"] = {"type": "tool", "name": OUTPUT_TOOL}
        return "/v1/messages", body

    async def _events(self, backend: str, lines: AsyncIterator[str]) -> AsyncIterator[AttemptEvent]:
        blocks: dict[int, dict[str, Any]] = {}
        calls: list[ToolCallData] = []
        prompt_tokens = output_tokens = 0
        reason = ""
        async for line in lines:
            if not line.startswith("data:"):
                continue  # `event:` lines name what the data's `type` says too
            doc = self.json_line(backend, line[5:].strip())
            kind = doc.get("type")
            if kind == "message_start":
                usage = (doc.get("message") or {}).get("usage") or {}
                prompt_tokens = sum(int(usage.get(k) or 0) for k in (
                    "input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))
                output_tokens = int(usage.get("output_tokens") or 0)
            elif kind == "content_block_start":
                blocks[int(doc.get("index", 0))] = {**(doc.get("content_block") or {}), "json": ""}
            elif kind == "content_block_delta":
                block = blocks.get(int(doc.get("index", 0)), {})
                delta = doc.get("delta") or {}
                if delta.get("type") == "text_delta" and delta.get("text"):
                    yield TextDelta(delta["text"])
                elif delta.get("type") == "input_json_delta" and delta.get("partial_json"):
                    if block.get("name") == OUTPUT_TOOL:
                        yield TextDelta(delta["partial_json"])
                    else:
                        block["json"] = block.get("json", "") + delta["partial_json"]
            elif kind == "content_block_stop":
                block = blocks.get(int(doc.get("index", 0)), {})
                if block.get("type") == "tool_use" and block.get("name") != OUTPUT_TOOL:
                    arguments = args(block["json"]) if block["json"] else (block.get("input") or {})
                    calls.append(ToolCallData(block.get("id") or f"toolu_{len(calls)}", block.get("name", ""),
                                              arguments))
            elif kind == "message_delta":
                reason = (doc.get("delta") or {}).get("stop_reason") or reason
                output_tokens = int((doc.get("usage") or {}).get("output_tokens") or output_tokens)
            elif kind == "message_stop":
                if calls:
                    yield ToolCalls(tuple(calls))
                done = "tool_calls" if calls else _STOP_REASONS.get(reason, "stop")
                # The forced output tool stops with tool_use: for the caller that is a finished answer.
                yield BackendDone("stop" if done == "tool_calls" and not calls else done, prompt_tokens, output_tokens)
                return
        raise BackendFailure(backend, "stream ended without message_stop")

    def embed_request(self, model: str, inputs: list[str]) -> tuple[str, dict[str, Any]]:
        raise Unsupported(self.config.name, "the Anthropic API has no embeddings")

    def embed_result(self, doc: dict[str, Any]) -> tuple[list[list[float]], int]:
        raise Unsupported(self.config.name, "the Anthropic API has no embeddings")

    def inventory(self, listing: dict[str, Any], loaded: dict[str, Any] | None) -> tuple[set[str], set[str]]:
        models = {m["id"] for m in listing.get("data", [])}
        return models, set(models)  # a hosted API serves every model it lists at once
