"""OpenAI request JSON -> inference protobuf: `POST /v1/chat/completions` and `/v1/embeddings` bodies.

Requests are checked for *types* here (a wrong type is a 400 naming the parameter); value ranges
are the inference service's job, and its field violations come back mapped onto OpenAI parameter
names (errors.chat_param). Parameters with no inference equivalent that change nothing a client
relies on (`user`, `metadata`, penalties, `parallel_tool_calls`, …) are accepted and ignored;
ones whose absence a client would notice (`n` > 1, `logprobs`) are refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf import struct_pb2

from llmmesh.common.structs import dict_to_struct
from llmmesh.common.v1 import common_pb2
from llmmesh.gateway.errors import invalid
from llmmesh.gateway.json_fields import array, clamp_int32, is_int, is_number, obj, string, strings
from llmmesh.inference.v1 import inference_service_pb2 as pb

_ROLES = {
    "system": pb.ROLE_SYSTEM,
    "developer": pb.ROLE_SYSTEM,
    "user": pb.ROLE_USER,
    "assistant": pb.ROLE_ASSISTANT,
    "tool": pb.ROLE_TOOL,
    "function": pb.ROLE_TOOL,
}


@dataclass(frozen=True)
class ChatParams:
    """A parsed `POST /v1/chat/completions` body."""

    # The streamed form (its fields are CompleteChatRequest's) when the client asked for a stream.
    request: pb.CompleteChatRequest | pb.CompleteChatStreamRequest
    stream: bool
    include_usage: bool
    # Which of max_tokens / max_completion_tokens the client sent (for error `param`s).
    max_tokens_param: str = "max_tokens"


@dataclass(frozen=True)
class EmbedParams:
    request: pb.EmbedRequest
    encoding_format: str  # "float" | "base64"
    dimensions: int | None


# ---------------------------------------------------------------------------------------------
# chat.completions request


def _content(value: object, param: str) -> str:
    """`content` as a string or an array of text parts (other part types are not supported)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    parts = []
    for i, part in enumerate(array(value, param)):
        part = obj(part, f"{param}[{i}]")
        kind = part.get("type")
        if kind in ("text", "refusal") and isinstance(part.get(kind), str):
            parts.append(part[kind])
        else:
            raise invalid(f"{param}[{i}].type", f"Content part type {kind!r} is not supported: only text parts are.",
                          "unsupported_value")
    return "".join(parts)


def tool_call(value: object, param: str) -> pb.ToolCall:
    """One `tool_calls` entry; `arguments` as a JSON object string (OpenAI) or an object (Ollama)."""
    call = obj(value, param)
    if call.get("type", "function") != "function":
        raise invalid(f"{param}.type", "Only tool calls of type 'function' are supported.", "unsupported_value")
    fn = obj(call.get("function"), f"{param}.function")
    name = string(fn, "name", f"{param}.function.name", required=True)
    raw = fn.get("arguments") or "{}"
    try:
        args = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        raise invalid(f"{param}.function.arguments", "Tool call arguments must be a JSON object string.") from None
    if not isinstance(args, Mapping):
        raise invalid(f"{param}.function.arguments", "Tool call arguments must be a JSON object string.")
    return pb.ToolCall(id=string(call, "id", f"{param}.id"), name=name, arguments=dict_to_struct(args))


def messages(value: object) -> list[pb.Message]:
    out: list[pb.Message] = []
    names: dict[str, str] = {}  # tool_call_id -> function name, for tool results
    items = array(value, "messages")
    if not items:
        raise invalid("messages", "'messages' must contain at least one message.", "empty_array")
    for i, item in enumerate(items):
        param = f"messages[{i}]"
        m = obj(item, param)
        role_name = m.get("role")
        if role_name not in _ROLES:
            raise invalid(f"{param}.role", f"Invalid value for '{param}.role': expected one of "
                          f"{', '.join(sorted(_ROLES))}.")
        msg = pb.Message(role=_ROLES[role_name], content=_content(m.get("content"), f"{param}.content"))
        if role_name == "assistant":
            for j, call in enumerate(array(m.get("tool_calls") or [], f"{param}.tool_calls")):
                parsed = tool_call(call, f"{param}.tool_calls[{j}]")
                msg.tool_calls.append(parsed)
                if parsed.id:
                    names[parsed.id] = parsed.name
        elif role_name == "tool":
            msg.tool_call_id = string(m, "tool_call_id", f"{param}.tool_call_id", required=True)
            msg.name = names.get(msg.tool_call_id, "")
        elif role_name == "function":  # the deprecated form of a tool result
            msg.name = string(m, "name", f"{param}.name", required=True)
        out.append(msg)
    return out


def function_tools(body: Mapping[str, Any]) -> list[pb.Tool]:
    """`tools`: function tools with a JSON schema each (OpenAI and Ollama share the shape)."""
    out = []
    for i, item in enumerate(array(body.get("tools") or [], "tools")):
        t = obj(item, f"tools[{i}]")
        if t.get("type", "function") != "function":
            raise invalid(f"tools[{i}].type", "Only tools of type 'function' are supported.", "unsupported_value")
        fn = obj(t.get("function"), f"tools[{i}].function")
        params = fn.get("parameters")
        out.append(pb.Tool(
            name=string(fn, "name", f"tools[{i}].function.name", required=True),
            description=string(fn, "description", f"tools[{i}].function.description"),
            parameters=(dict_to_struct(obj(params, f"tools[{i}].function.parameters"))
                        if params is not None else None),
        ))
    return out


def _apply_tool_choice(body: Mapping[str, Any], tools: list[pb.Tool]) -> list[pb.Tool]:
    """`auto` offers the tools; `none` offers none; a named function offers only that one (the
    model is not forced to call it). `required` cannot be honoured by the backends: refused."""
    choice = body.get("tool_choice")
    if choice is None or choice == "auto":
        return tools
    if choice == "none":
        return []
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        name = string(obj(choice.get("function"), "tool_choice.function"), "name", "tool_choice.function.name",
                       required=True)
        chosen = [t for t in tools if t.name == name]
        if not chosen:
            raise invalid("tool_choice", f"Tool choice {name!r} is not among the 'tools'.")
        return chosen
    if choice == "required":
        raise invalid("tool_choice", "tool_choice 'required' is not supported: use 'auto', 'none' or a named "
                      "function.", "unsupported_value")
    raise invalid("tool_choice", "Invalid value for 'tool_choice': expected 'auto', 'none' or "
                  "{'type': 'function', 'function': {'name': ...}}.")


def _schema(body: Mapping[str, Any]) -> struct_pb2.Struct | None:
    fmt = body.get("response_format")
    if fmt is None:
        return None
    fmt = obj(fmt, "response_format")
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return dict_to_struct({"type": "object"})
    if kind == "json_schema":
        spec = obj(fmt.get("json_schema"), "response_format.json_schema")
        schema = spec.get("schema")
        return dict_to_struct(obj(schema, "response_format.json_schema.schema") if schema is not None
                         else {"type": "object"})
    raise invalid("response_format.type", "Invalid value for 'response_format.type': expected 'text', "
                  "'json_object' or 'json_schema'.")


def _options(body: Mapping[str, Any]) -> tuple[common_pb2.GenerationOptions, str]:
    o = common_pb2.GenerationOptions()
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if value is not None:
            if not is_number(value):
                raise invalid(key, f"Invalid type for '{key}': expected a number.", "invalid_type")
            setattr(o, key, float(value))
    param = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    for key in (param, "seed"):
        value = body.get(key)
        if value is not None:
            if not is_int(value):
                raise invalid(key, f"Invalid type for '{key}': expected an integer.", "invalid_type")
            if key == "seed":
                o.seed = value
            else:
                o.max_tokens = clamp_int32(value)
    stop = body.get("stop")
    if stop is not None:
        o.stop.extend(strings(stop, "stop"))
    return o, param


def chat_params(body: object) -> ChatParams:
    body = obj(body, "body")
    n = body.get("n")
    if n is not None and n != 1:
        raise invalid("n", "Only n=1 is supported.", "unsupported_value")
    if body.get("logprobs") or body.get("top_logprobs"):
        raise invalid("logprobs", "logprobs are not supported.", "unsupported_value")
    stream = body.get("stream") or False
    if not isinstance(stream, bool):
        raise invalid("stream", "Invalid type for 'stream': expected a boolean.", "invalid_type")
    include_usage = False
    if body.get("stream_options") is not None:
        if not stream:
            raise invalid("stream_options", "The 'stream_options' parameter is only allowed when 'stream' is "
                          "enabled.")
        include_usage = bool(obj(body["stream_options"], "stream_options").get("include_usage"))
    options, max_tokens_param = _options(body)
    request = (pb.CompleteChatStreamRequest if stream else pb.CompleteChatRequest)(
        model=string(body, "model", "model", required=True),
        messages=messages(body.get("messages")),
        options=options,
        tools=_apply_tool_choice(body, function_tools(body)),
    )
    schema = _schema(body)
    if schema is not None:
        request.json_schema.CopyFrom(schema)
    return ChatParams(request, stream, include_usage, max_tokens_param)


# ---------------------------------------------------------------------------------------------
# embeddings request


def embed_params(body: object) -> EmbedParams:
    body = obj(body, "body")
    raw = body.get("input")
    if isinstance(raw, str):
        inputs = [raw]
    else:
        inputs = array(raw, "input") if raw is not None else []
        if inputs and not all(isinstance(x, str) for x in inputs):
            raise invalid("input", "Only string inputs are supported (not token arrays).", "unsupported_value")
    fmt = body.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise invalid("encoding_format", "Invalid value for 'encoding_format': expected 'float' or 'base64'.")
    dims = body.get("dimensions")
    if dims is not None and (not is_int(dims) or dims < 1):
        raise invalid("dimensions", "Invalid value for 'dimensions': expected a positive integer.")
    request = pb.EmbedRequest(model=string(body, "model", "model", required=True), inputs=inputs)
    return EmbedParams(request, fmt, dims)
