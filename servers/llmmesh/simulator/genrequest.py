"""One normalised generation request, parsed from the native or the OpenAI-compatible API."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from llmmesh.simulator.models import KeepAliveError, parse_keep_alive


class BadRequest(ValueError):
    """The request body is malformed (HTTP 400)."""


@dataclass(frozen=True)
class GenRequest:
    kind: Literal["chat", "generate"]
    model: str
    stream: bool
    messages: tuple[dict[str, Any], ...] = ()  # chat: {"role", "content", ["tool_calls"]}
    system: str = ""  # generate
    prompt: str = ""  # generate
    num_predict: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    temperature: float | None = None  # accepted, does not change the output
    format: str | dict[str, Any] | None = None  # None, "json" or a JSON schema
    tools: tuple[dict[str, Any], ...] = ()
    keep_alive_s: float | None = 300.0
    sim_fault: str = ""  # body field "sim_fault" for callers that cannot set headers
    raw: bool = False
    continue_final_message: bool = False  # vLLM's flag: go on from a trailing assistant message

    @property
    def is_load_only(self) -> bool:
        """Ollama loads the model and answers done_reason "load" for an empty prompt."""
        if self.kind == "chat":
            return not self.messages
        return not self.prompt and not self.system

    def full_text(self) -> str:
        """What scripts match against by default (see scripts.py)."""
        if self.kind == "chat":
            return "\n".join(str(m.get("content") or "") for m in self.messages)
        return f"{self.system}\n{self.prompt}" if self.system else self.prompt

    def last_text(self) -> str:
        if self.kind == "chat":
            return str(self.messages[-1].get("content") or "") if self.messages else ""
        return self.prompt

    def last_role(self) -> str:
        return str(self.messages[-1].get("role", "")) if self.messages else ""

    def prompt_key(self) -> str:
        """Canonical text of the input; generation is a pure function of (model, seed, this)."""
        if self.kind == "chat":
            return json.dumps(list(self.messages), sort_keys=True, ensure_ascii=False)
        return json.dumps([self.system, self.prompt], ensure_ascii=False)


def decode_body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise BadRequest("missing request body")
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"invalid JSON body: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def _get(body: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise BadRequest(f"invalid type for field {key!r}")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _model(body: Mapping[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model is required")
    return model


def _stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return tuple(value)
    raise BadRequest("stop must be a string or a list of strings")


def _keep_alive(body: Mapping[str, Any]) -> float | None:
    try:
        return parse_keep_alive(body.get("keep_alive"))
    except KeepAliveError as exc:
        raise BadRequest(str(exc)) from None


def _format(value: Any) -> str | dict[str, Any] | None:
    if value in (None, ""):
        return None
    if value == "json" or isinstance(value, dict):
        return value
    raise BadRequest('format must be "json" or a JSON schema object')


def _tools(value: Any) -> tuple[dict[str, Any], ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise BadRequest("tools must be a list of objects")
    for tool in value:
        function = tool.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise BadRequest("every tool needs function.name")
    return tuple(value)


def _native_messages(value: Any) -> tuple[dict[str, Any], ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise BadRequest("messages must be a list")
    out = []
    for msg in value:
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str):
            raise BadRequest("every message needs a string role")
        content = msg.get("content") or ""
        if not isinstance(content, str):
            raise BadRequest("message content must be a string")
        clean: dict[str, Any] = {"role": msg["role"], "content": content}
        if msg.get("tool_calls"):
            clean["tool_calls"] = msg["tool_calls"]
        out.append(clean)
    return tuple(out)


def _options(body: Mapping[str, Any]) -> Mapping[str, Any]:
    return _get(body, "options", dict, {})


def _int_or_none(options: Mapping[str, Any], key: str) -> int | None:
    value = options.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"option {key} must be a number")
    return int(value)


def parse_native(kind: Literal["chat", "generate"], body: Mapping[str, Any]) -> GenRequest:
    options = _options(body)
    temperature = options.get("temperature")
    if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, int | float)):
        raise BadRequest("option temperature must be a number")
    common: dict[str, Any] = {
        "kind": kind,
        "model": _model(body),
        "stream": _get(body, "stream", bool, True),
        "num_predict": _int_or_none(options, "num_predict"),
        "stop": _stop(options.get("stop")),
        "seed": _int_or_none(options, "seed"),
        "temperature": temperature,
        "format": _format(body.get("format")),
        "keep_alive_s": _keep_alive(body),
        "sim_fault": _get(body, "sim_fault", str, ""),
    }
    if kind == "chat":
        return GenRequest(messages=_native_messages(body.get("messages")), tools=_tools(body.get("tools")), **common)
    return GenRequest(
        system=_get(body, "system", str, ""),
        prompt=_get(body, "prompt", str, ""),
        raw=_get(body, "raw", bool, False),
        **common,
    )


def _openai_content(content: Any) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict):
                raise BadRequest("content parts must be objects")
            if part.get("type") == "text":
                parts.append(str(part.get("text", "")))
        return "".join(parts)
    raise BadRequest("message content must be a string or a list of parts")


def _openai_messages(value: Any) -> tuple[dict[str, Any], ...]:
    if not isinstance(value, list) or not value:
        raise BadRequest("messages must be a non-empty list")
    out = []
    for msg in value:
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str):
            raise BadRequest("every message needs a string role")
        clean: dict[str, Any] = {"role": msg["role"], "content": _openai_content(msg.get("content"))}
        if msg.get("tool_calls"):
            clean["tool_calls"] = msg["tool_calls"]
        out.append(clean)
    return tuple(out)


def _response_format(value: Any) -> str | dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequest("response_format must be an object")
    kind = value.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        schema = (value.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise BadRequest("response_format.json_schema.schema must be an object")
        return schema
    raise BadRequest(f"unsupported response_format type {kind!r}")


def parse_openai_chat(body: Mapping[str, Any]) -> GenRequest:
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)):
        raise BadRequest("max_tokens must be an integer")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise BadRequest("seed must be an integer")
    temperature = body.get("temperature")
    if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, int | float)):
        raise BadRequest("temperature must be a number")
    return GenRequest(
        kind="chat",
        model=_model(body),
        stream=_get(body, "stream", bool, False),
        messages=_openai_messages(body.get("messages")),
        num_predict=max_tokens,
        stop=_stop(body.get("stop")),
        seed=seed,
        temperature=temperature,
        format=_response_format(body.get("response_format")),
        tools=_tools(body.get("tools")),
        keep_alive_s=_keep_alive(body),
        sim_fault=_get(body, "sim_fault", str, ""),
        continue_final_message=_get(body, "continue_final_message", bool, False),
    )
