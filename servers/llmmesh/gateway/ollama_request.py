"""Ollama request JSON -> inference protobuf: `POST /api/chat`, `/api/generate`, `/api/embed` and
`/api/embeddings` bodies.

Types are checked here (a wrong type is a 400); value ranges are the inference service's job.
`options` the contract carries (temperature, num_predict, seed, stop, num_ctx, top_p,
frequency_penalty) map onto GenerationOptions; the others (top_k, repeat_penalty, mirostat,
num_gpu, …) are accepted and ignored, as Ollama ignores options a model does not use. So are
`keep_alive` (models are loaded and unloaded by the backends; the contract has no field for it),
`think`, `truncate`, `raw`, `template` and `context`. What a client would miss is refused:
`images`, `suffix` and `logprobs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmmesh.common.structs import dict_to_struct
from llmmesh.common.v1 import common_pb2
from llmmesh.gateway.errors import invalid
from llmmesh.gateway.json_fields import array, boolean, clamp_int32, is_int, is_number, obj, string, strings
from llmmesh.gateway.openai_request import function_tools, tool_call
from llmmesh.inference.v1 import inference_service_pb2 as pb

_ROLES = {"system": pb.ROLE_SYSTEM, "user": pb.ROLE_USER, "assistant": pb.ROLE_ASSISTANT, "tool": pb.ROLE_TOOL}
_NUMBER_OPTIONS = ("temperature", "top_p", "frequency_penalty")
_INT_OPTIONS = {"num_predict": "max_tokens", "seed": "seed", "num_ctx": "num_ctx"}


@dataclass(frozen=True)
class ChatParams:
    # The streamed form (its fields are CompleteChatRequest's) when the client asked for a stream.
    request: pb.CompleteChatRequest | pb.CompleteChatStreamRequest
    stream: bool
    # No messages: Ollama's way to load (or, with keep_alive 0, unload) a model without generating.
    load_only: bool
    unload: bool


@dataclass(frozen=True)
class GenerateParams:
    request: pb.GenerateRequest
    stream: bool
    load_only: bool
    unload: bool


@dataclass(frozen=True)
class EmbedParams:
    request: pb.EmbedRequest
    dimensions: int | None


def _body(value: object) -> Mapping[str, Any]:
    body = obj(value, "body")
    string(body, "model", "model", required=True)
    if not body["model"]:
        raise invalid("model", "model is required")
    return body


def _unloads(body: Mapping[str, Any]) -> bool:
    """`keep_alive`: a number of seconds or a duration string; 0 asks to unload the model."""
    value = body.get("keep_alive")
    if value is None:
        return False
    if not (is_number(value) or isinstance(value, str)):
        raise invalid("keep_alive", "Invalid type for 'keep_alive': expected a number or a duration string.",
                      "invalid_type")
    return value == 0 or (isinstance(value, str) and value.strip() in ("0", "0s", "0m", "0h"))


def _refuse_unsupported(body: Mapping[str, Any], *keys: str) -> None:
    for key in keys:
        if body.get(key):
            raise invalid(key, f"'{key}' is not supported by this server.", "unsupported_value")


def options(body: Mapping[str, Any]) -> common_pb2.GenerationOptions:
    o = common_pb2.GenerationOptions()
    raw = body.get("options")
    if raw is None:
        return o
    given = obj(raw, "options")
    for key in _NUMBER_OPTIONS:
        value = given.get(key)
        if value is not None:
            if not is_number(value):
                raise invalid(f"options.{key}", f"Invalid type for 'options.{key}': expected a number.",
                              "invalid_type")
            setattr(o, key, float(value))
    for key, field in _INT_OPTIONS.items():
        value = given.get(key)
        if value is None:
            continue
        if not is_int(value):
            raise invalid(f"options.{key}", f"Invalid type for 'options.{key}': expected an integer.", "invalid_type")
        if key == "num_predict" and value < 0:
            continue  # Ollama's -1 (no limit) and -2 (fill the context): the server's own bound applies
        setattr(o, field, value if key == "seed" else clamp_int32(value))
    if given.get("stop") is not None:
        o.stop.extend(strings(given["stop"], "options.stop"))
    return o


def json_schema(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """`format`: "json" (any JSON object) or a JSON schema."""
    fmt = body.get("format")
    if fmt is None or fmt == "":
        return None
    if fmt == "json":
        return {"type": "object"}
    if isinstance(fmt, Mapping):
        return dict(fmt)
    raise invalid("format", "Invalid value for 'format': expected \"json\" or a JSON schema object.")


def messages(value: object) -> list[pb.Message]:
    """Ollama's messages. Its tool calls carry no ids and its tool results name the tool
    (`tool_name`); ids are made up here and each result is paired with the earliest unanswered call
    of that tool (else the earliest unanswered one), so OpenAI-compatible backends get them too."""
    out: list[pb.Message] = []
    pending: list[pb.ToolCall] = []
    for i, item in enumerate(array(value or [], "messages")):
        param = f"messages[{i}]"
        m = obj(item, param)
        role = m.get("role")
        if role not in _ROLES:
            raise invalid(f"{param}.role", f"Invalid value for '{param}.role': expected one of "
                          f"{', '.join(_ROLES)}.")
        _refuse_unsupported(m, "images")
        msg = pb.Message(role=_ROLES[role], content=string(m, "content", f"{param}.content"))
        if role == "assistant":
            for j, call in enumerate(array(m.get("tool_calls") or [], f"{param}.tool_calls")):
                parsed = tool_call(call, f"{param}.tool_calls[{j}]")
                parsed.id = parsed.id or f"call_{i}_{j}"
                msg.tool_calls.append(parsed)
                pending.append(parsed)
        elif role == "tool":
            name = string(m, "tool_name", f"{param}.tool_name") or string(m, "name", f"{param}.name")
            answered = next((c for c in pending if c.name == name), pending[0] if pending else None)
            if answered is not None:
                pending.remove(answered)
                msg.tool_call_id, name = answered.id, name or answered.name
            msg.name = name
        out.append(msg)
    return out


def chat_params(body: object) -> ChatParams:
    body = _body(body)
    _refuse_unsupported(body, "logprobs")
    stream = boolean(body, "stream", True)
    request = (pb.CompleteChatStreamRequest if stream else pb.CompleteChatRequest)(
        model=body["model"], messages=messages(body.get("messages")), options=options(body),
        tools=function_tools(body))
    schema = json_schema(body)
    if schema is not None:
        request.json_schema.CopyFrom(dict_to_struct(schema))
    return ChatParams(request, stream, not request.messages, _unloads(body))


def generate_params(body: object) -> GenerateParams:
    body = _body(body)
    _refuse_unsupported(body, "images", "suffix", "logprobs")
    request = pb.GenerateRequest(model=body["model"], prompt=string(body, "prompt", "prompt"),
                                 system=string(body, "system", "system"), options=options(body))
    schema = json_schema(body)
    if schema is not None:
        request.json_schema.CopyFrom(dict_to_struct(schema))
    return GenerateParams(request, boolean(body, "stream", True), not request.prompt, _unloads(body))


def embed_params(body: object, key: str = "input") -> EmbedParams:
    """/api/embed (`input`: a string or strings) or, with key="prompt", the legacy /api/embeddings."""
    body = _body(body)
    _unloads(body)  # checked, not carried
    inputs = strings(body[key], key) if body.get(key) is not None else []
    dims = body.get("dimensions")
    if dims is not None and (not is_int(dims) or dims < 1):
        raise invalid("dimensions", "Invalid value for 'dimensions': expected a positive integer.")
    return EmbedParams(pb.EmbedRequest(model=body["model"], inputs=inputs), dims)
