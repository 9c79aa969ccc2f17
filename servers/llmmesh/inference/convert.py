"""Protobuf ⇄ ModelCall translation and request validation for the inference service."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import json_format, struct_pb2

from llmmesh.common.v1 import common_pb2
from llmmesh.framework.errors import FieldViolation, InvalidArgument
from llmmesh.framework.validation import Violations
from llmmesh.inference.model_call import (
    ChatMessage,
    GenerationStats,
    ModelCall,
    Sampling,
    ToolCallData,
    ToolDef,
)
from llmmesh.inference.v1 import inference_service_pb2 as pb

# Server-side ceilings; requests may ask for less, never more.
MAX_OUTPUT_TOKENS = 8192
MAX_PROMPT_CHARS = 200_000
MAX_MESSAGES = 512
MAX_STOP = 16
MAX_TOOLS = 64
MAX_EMBED_INPUTS = 256
MAX_CONTEXT = 262_144
MAX_NAME = 256

_ROLES = {pb.ROLE_SYSTEM: "system", pb.ROLE_USER: "user", pb.ROLE_ASSISTANT: "assistant", pb.ROLE_TOOL: "tool"}
_ROLE_ENUM = {v: k for k, v in _ROLES.items()}


def struct_to_dict(value: struct_pb2.Struct, field: str = "arguments") -> dict[str, Any]:
    """A Struct as plain JSON. Struct keeps every number as a double, so whole numbers come back
    as ints: JSON schemas (`maxLength: 200`) and tool arguments mean integers there.

    A Struct can hold NaN or ±Infinity, which JSON cannot: that is the caller's invalid `field`
    (INVALID_ARGUMENT), not a server failure."""
    try:
        return _whole_numbers(json_format.MessageToDict(value))
    except (json_format.SerializeToJsonError, ValueError):  # ValueError: nested in a Struct
        raise InvalidArgument([FieldViolation(field, "numbers must be finite (no NaN or Infinity)")]) from None


def _whole_numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    return value


def dict_to_struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(dict(value))
    return out


def sampling(options: common_pb2.GenerationOptions, field: str, v: Violations) -> Sampling:
    o = options
    if o.HasField("temperature"):
        v.check(0.0 <= o.temperature <= 2.0, f"{field}.temperature", "must be between 0 and 2")
    if o.HasField("top_p"):
        v.check(0.0 < o.top_p <= 1.0, f"{field}.top_p", "must be in (0, 1]")
    if o.HasField("frequency_penalty"):
        v.check(-2.0 <= o.frequency_penalty <= 2.0, f"{field}.frequency_penalty", "must be between -2 and 2")
    if o.HasField("max_tokens"):
        v.check(1 <= o.max_tokens <= MAX_OUTPUT_TOKENS, f"{field}.max_tokens",
                f"must be between 1 and the server maximum {MAX_OUTPUT_TOKENS}")
    if o.HasField("num_ctx"):
        v.check(256 <= o.num_ctx <= MAX_CONTEXT, f"{field}.num_ctx", f"must be between 256 and {MAX_CONTEXT}")
    v.check(len(o.stop) <= MAX_STOP, f"{field}.stop", f"at most {MAX_STOP} stop sequences")
    for i, s in enumerate(o.stop):
        v.check(0 < len(s) <= 64, f"{field}.stop[{i}]", "must be 1 to 64 characters")
    return Sampling(
        temperature=o.temperature if o.HasField("temperature") else None,
        max_tokens=o.max_tokens if o.HasField("max_tokens") else None,
        seed=o.seed if o.HasField("seed") else None,
        stop=tuple(o.stop),
        num_ctx=o.num_ctx if o.HasField("num_ctx") else None,
        top_p=o.top_p if o.HasField("top_p") else None,
        frequency_penalty=o.frequency_penalty if o.HasField("frequency_penalty") else None,
    )


def canonical_key_order(schema: Any) -> Any:
    """A JSON schema with a deterministic property order.

    google.protobuf.Struct is a map: the caller's key order is lost in transit and comes back in a
    per-process hash order. Constrained decoding writes properties in schema order, and order
    matters to a model (a judge should reason before it scores), so each object's `properties`
    are put back as `required` lists them, then the rest by name; other keys are sorted."""
    if isinstance(schema, list):
        return [canonical_key_order(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: canonical_key_order(schema[key]) for key in sorted(schema)}
    props = out.get("properties")
    if isinstance(props, dict):
        required = [name for name in schema.get("required", []) if isinstance(name, str) and name in props]
        rest = sorted(name for name in props if name not in required)
        out["properties"] = {name: props[name] for name in [*required, *rest]}
    return out


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
        role = _ROLES.get(m.role)
        v.check(role is not None, f"{field}[{i}].role",
                "must be one of ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT, ROLE_TOOL")
        total += len(m.content)
        calls = tuple(ToolCallData(c.id, c.name, struct_to_dict(c.arguments, f"{field}[{i}].tool_calls[{j}].arguments"))
                      for j, c in enumerate(m.tool_calls))
        out.append(ChatMessage(role or "user", m.content, calls, m.tool_call_id, m.name))
    v.check(total <= MAX_PROMPT_CHARS, field, f"total content is {total} characters; the limit is {MAX_PROMPT_CHARS}")
    return tuple(out)


def _model(name: str, v: Violations) -> str:
    v.check(len(name) <= MAX_NAME, "model", f"at most {MAX_NAME} characters")
    return name


def generate_call(req: pb.GenerateRequest) -> ModelCall:
    v = Violations()
    v.text(req.prompt, "prompt", required=True, max_chars=MAX_PROMPT_CHARS)
    v.text(req.system, "system", max_chars=MAX_PROMPT_CHARS)
    call = ModelCall(model=_model(req.model, v), prompt=req.prompt, system=req.system,
                     sampling=sampling(req.options, "options", v), json_schema=_schema(req, v))
    v.raise_if_any()
    return call


def chat_call(req: pb.CompleteChatRequest | pb.ChatTurn, history: tuple[ChatMessage, ...] = ()) -> ModelCall:
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
        backends=list(s.backends),
    )


def tool_calls_message(calls: tuple[ToolCallData, ...]) -> list[pb.ToolCall]:
    return [pb.ToolCall(id=c.id, name=c.name, arguments=dict_to_struct(c.arguments)) for c in calls]


def role_enum(role: str) -> int:
    return _ROLE_ENUM[role]
