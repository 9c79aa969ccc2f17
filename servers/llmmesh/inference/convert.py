"""Protobuf ⇄ ModelCall translation and request validation for the inference service."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llmmesh.common.cache_mode import CACHE_HEADER, CacheMode
from llmmesh.common.generation_options import sampling
from llmmesh.common.inference_messages import ROLES
from llmmesh.common.model_call import MAX_MODEL_NAME, ChatMessage, GenerationStats, ModelCall, ToolCallData, ToolDef
from llmmesh.common.priority import PRIORITY_HEADER, Priority
from llmmesh.common.structs import canonical_key_order, struct_to_dict
from llmmesh.common.v1 import common_pb2
from llmmesh.framework.errors import FieldViolation, InvalidArgument
from llmmesh.framework.validation import Violations
from llmmesh.inference.routes import Target, TargetState
from llmmesh.inference.v1 import inference_service_pb2 as pb

# Server-side ceilings; requests may ask for less, never more (the options' are in generation_options).
MAX_PROMPT_CHARS = 200_000
MAX_MESSAGES = 512
MAX_TOOLS = 64
MAX_EMBED_INPUTS = 256



def _schema(msg: Any, v: Violations) -> dict[str, Any] | None:
    if not msg.HasField("json_schema"):
        return None
    schema = canonical_key_order(struct_to_dict(msg.json_schema, "json_schema"))
    v.check(bool(schema) and ("type" in schema or "properties" in schema or "$ref" in schema
                              or "anyOf" in schema or "enum" in schema),
            "json_schema", "must be a JSON schema object (with type, properties, enum, anyOf or $ref)")
    return schema


def _tools(tools: Sequence[pb.Tool], v: Violations) -> tuple[ToolDef, ...]:
    v.check(len(tools) <= MAX_TOOLS, "tools", f"at most {MAX_TOOLS} tools")
    out = []
    for i, t in enumerate(tools):
        v.check(bool(t.name) and len(t.name) <= 64 and t.name.replace("_", "").replace("-", "").replace(".", "")
                .isalnum(), f"tools[{i}].name", "must be 1-64 characters of letters, digits, _ - .")
        out.append(ToolDef(t.name, t.description, struct_to_dict(t.parameters, f"tools[{i}].parameters")
                           or {"type": "object"}))
    return tuple(out)


def messages(msgs: Sequence[pb.Message], field: str, v: Violations) -> tuple[ChatMessage, ...]:
    v.check(len(msgs) <= MAX_MESSAGES, field, f"at most {MAX_MESSAGES} messages")
    out = []
    total = 0
    for i, m in enumerate(msgs):
        role = ROLES.get(m.role)
        v.check(role is not None, f"{field}[{i}].role",
                "must be one of ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT, ROLE_TOOL")
        total += len(m.content)
        calls = tuple(ToolCallData(c.id, c.name, struct_to_dict(c.arguments, f"{field}[{i}].tool_calls[{j}].arguments"))
                      for j, c in enumerate(m.tool_calls))
        out.append(ChatMessage(role or "user", m.content, calls, m.tool_call_id, m.name))
    v.check(total <= MAX_PROMPT_CHARS, field, f"total content is {total} characters; the limit is {MAX_PROMPT_CHARS}")
    return tuple(out)


def _model(name: str, v: Violations) -> str:
    v.check(len(name) <= MAX_MODEL_NAME, "model", f"at most {MAX_MODEL_NAME} characters")
    return name


def generate_call(req: pb.GenerateRequest) -> ModelCall:
    v = Violations()
    v.text(req.prompt, "prompt", required=True, max_chars=MAX_PROMPT_CHARS)
    v.text(req.system, "system", max_chars=MAX_PROMPT_CHARS)
    call = ModelCall(model=_model(req.model, v), prompt=req.prompt, system=req.system,
                     sampling=sampling(req.options, "options", v), json_schema=_schema(req, v))
    v.raise_if_any()
    return call


def chat_call(req: pb.CompleteChatRequest | pb.CompleteChatStreamRequest | pb.ChatTurn,
              history: tuple[ChatMessage, ...] = ()) -> ModelCall:
    v = Violations()
    new = messages(req.messages, "messages", v)
    v.check(bool(history or new), "messages", "at least one message is required")
    call = ModelCall(model=_model(req.model, v), messages=history + new, sampling=sampling(req.options, "options", v),
                     tools=_tools(req.tools, v), json_schema=_schema(req, v))
    v.raise_if_any()
    return call


def embed_inputs(req: pb.EmbedRequest) -> list[str]:
    v = Violations()
    _model(req.model, v)
    v.check(0 < len(req.inputs) <= MAX_EMBED_INPUTS, "inputs", f"between 1 and {MAX_EMBED_INPUTS} inputs")
    for i, text in enumerate(req.inputs):
        v.text(text, f"inputs[{i}]", required=True, max_chars=MAX_PROMPT_CHARS)
    v.raise_if_any()
    return list(req.inputs)


def done_message(s: GenerationStats) -> pb.GenerationDone:
    return pb.GenerationDone(
        model=s.model, backend=s.backend, done_reason=s.done_reason, prompt_tokens=s.prompt_tokens,
        output_tokens=s.output_tokens, time_to_first_token_ms=s.time_to_first_token_ms, total_ms=s.total_ms,
        tokens_per_second=s.tokens_per_second, failed_over=s.failed_over, attempts=s.attempts,
        backends=list(s.backends), cached=s.cached, queue_wait_ms=s.queue_wait_ms,
        requested_model=s.requested_model, fallback_from=list(s.fallback_from),
    )


_TARGET_STATES = {TargetState.ACTIVE: pb.ROUTE_TARGET_STATE_ACTIVE, TargetState.EJECTED: pb.ROUTE_TARGET_STATE_EJECTED}


def route_targets(targets: Sequence[tuple[str, int, Target]]) -> list[pb.RouteTarget]:
    return [pb.RouteTarget(route=route, stage=stage, configured_weight=t.configured_weight, weight=t.weight,
                           state=_TARGET_STATES[t.state], reason=t.reason) for route, stage, t in targets]


_CACHE_MODES = {common_pb2.CACHE_MODE_USE: CacheMode.USE, common_pb2.CACHE_MODE_BYPASS: CacheMode.BYPASS,
                common_pb2.CACHE_MODE_REFRESH: CacheMode.REFRESH}


def cache_mode(field: int, metadata: Mapping[str, str]) -> CacheMode:
    """The request's `cache` field, else its `x-llmmesh-cache` header, else USE."""
    if field in _CACHE_MODES:
        return _CACHE_MODES[field]
    if field != common_pb2.CACHE_MODE_UNSPECIFIED:
        raise InvalidArgument([FieldViolation("cache", "must be CACHE_MODE_USE, CACHE_MODE_BYPASS or "
                                                       "CACHE_MODE_REFRESH")])
    raw = metadata.get(CACHE_HEADER)
    if raw is None:
        return CacheMode.USE
    mode = CacheMode.parse(raw)
    if mode is None:
        raise InvalidArgument([FieldViolation(CACHE_HEADER, f"must be use, bypass or refresh, not {raw[:40]!r}")])
    return mode


_PRIORITIES = {common_pb2.PRIORITY_INTERACTIVE: Priority.INTERACTIVE, common_pb2.PRIORITY_BATCH: Priority.BATCH}


def priority(field: int, metadata: Mapping[str, str]) -> Priority | None:
    """The request's `priority` field, else its `x-llmmesh-priority` header, else None (the key's own)."""
    if field in _PRIORITIES:
        return _PRIORITIES[field]
    if field != common_pb2.PRIORITY_UNSPECIFIED:
        raise InvalidArgument([FieldViolation("priority", "must be PRIORITY_INTERACTIVE or PRIORITY_BATCH")])
    raw = metadata.get(PRIORITY_HEADER)
    if raw is None:
        return None
    found = Priority.parse(raw)
    if found is None:
        raise InvalidArgument([FieldViolation(PRIORITY_HEADER, f"must be interactive or batch, not {raw[:40]!r}")])
    return found
