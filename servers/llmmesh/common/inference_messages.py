"""ChatMessage and tool calls ⇄ the InferenceService contract's messages: the inference service
reads them, and a pattern's model client writes them."""

from __future__ import annotations

from llmmesh.common.model_call import ToolCallData
from llmmesh.common.structs import dict_to_struct
from llmmesh.inference.v1 import inference_service_pb2 as pb

ROLES = {pb.ROLE_SYSTEM: "system", pb.ROLE_USER: "user", pb.ROLE_ASSISTANT: "assistant", pb.ROLE_TOOL: "tool"}
_ROLE_ENUM = {v: k for k, v in ROLES.items()}


def tool_calls_message(calls: tuple[ToolCallData, ...]) -> list[pb.ToolCall]:
    return [pb.ToolCall(id=c.id, name=c.name, arguments=dict_to_struct(c.arguments)) for c in calls]


def role_enum(role: str) -> int:
    return _ROLE_ENUM[role]
