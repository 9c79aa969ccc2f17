from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.rpc import status_pb2 as _status_pb2
from llmmesh.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ToolChoice(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOOL_CHOICE_UNSPECIFIED: _ClassVar[ToolChoice]
    TOOL_CHOICE_AUTO: _ClassVar[ToolChoice]
    TOOL_CHOICE_REQUIRED: _ClassVar[ToolChoice]

class ToolCalling(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOOL_CALLING_UNSPECIFIED: _ClassVar[ToolCalling]
    TOOL_CALLING_NATIVE: _ClassVar[ToolCalling]
    TOOL_CALLING_PROMPTED: _ClassVar[ToolCalling]

class StopReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STOP_REASON_UNSPECIFIED: _ClassVar[StopReason]
    STOP_REASON_ANSWERED: _ClassVar[StopReason]
    STOP_REASON_MAX_STEPS: _ClassVar[StopReason]
TOOL_CHOICE_UNSPECIFIED: ToolChoice
TOOL_CHOICE_AUTO: ToolChoice
TOOL_CHOICE_REQUIRED: ToolChoice
TOOL_CALLING_UNSPECIFIED: ToolCalling
TOOL_CALLING_NATIVE: ToolCalling
TOOL_CALLING_PROMPTED: ToolCalling
STOP_REASON_UNSPECIFIED: StopReason
STOP_REASON_ANSWERED: StopReason
STOP_REASON_MAX_STEPS: StopReason

class ToolSpec(_message.Message):
    __slots__ = ("name", "description", "parameters", "source")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    parameters: _struct_pb2.Struct
    source: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., source: _Optional[str] = ...) -> None: ...

class ExecuteRequest(_message.Message):
    __slots__ = ("prompt", "system", "model", "tools", "max_steps", "options", "tool_choice", "store")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    MAX_STEPS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CHOICE_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    system: str
    model: str
    tools: _containers.RepeatedScalarFieldContainer[str]
    max_steps: int
    options: _common_pb2.GenerationOptions
    tool_choice: ToolChoice
    store: bool
    def __init__(self, prompt: _Optional[str] = ..., system: _Optional[str] = ..., model: _Optional[str] = ..., tools: _Optional[_Iterable[str]] = ..., max_steps: _Optional[int] = ..., options: _Optional[_Union[_common_pb2.GenerationOptions, _Mapping]] = ..., tool_choice: _Optional[_Union[ToolChoice, str]] = ..., store: _Optional[bool] = ...) -> None: ...

class ToolInvocation(_message.Message):
    __slots__ = ("call_id", "name", "arguments", "step")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    name: str
    arguments: _struct_pb2.Struct
    step: int
    def __init__(self, call_id: _Optional[str] = ..., name: _Optional[str] = ..., arguments: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., step: _Optional[int] = ...) -> None: ...

class ToolResult(_message.Message):
    __slots__ = ("call_id", "name", "output", "truncated", "error", "duration_ms")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    name: str
    output: str
    truncated: bool
    error: _status_pb2.Status
    duration_ms: float
    def __init__(self, call_id: _Optional[str] = ..., name: _Optional[str] = ..., output: _Optional[str] = ..., truncated: _Optional[bool] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., duration_ms: _Optional[float] = ...) -> None: ...

class ExecuteResponse(_message.Message):
    __slots__ = ("answer", "calls", "results", "steps", "stop_reason", "model", "usage", "tool_calling", "run_id")
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLING_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    answer: str
    calls: _containers.RepeatedCompositeFieldContainer[ToolInvocation]
    results: _containers.RepeatedCompositeFieldContainer[ToolResult]
    steps: int
    stop_reason: StopReason
    model: str
    usage: _common_pb2.Usage
    tool_calling: ToolCalling
    run_id: str
    def __init__(self, answer: _Optional[str] = ..., calls: _Optional[_Iterable[_Union[ToolInvocation, _Mapping]]] = ..., results: _Optional[_Iterable[_Union[ToolResult, _Mapping]]] = ..., steps: _Optional[int] = ..., stop_reason: _Optional[_Union[StopReason, str]] = ..., model: _Optional[str] = ..., usage: _Optional[_Union[_common_pb2.Usage, _Mapping]] = ..., tool_calling: _Optional[_Union[ToolCalling, str]] = ..., run_id: _Optional[str] = ...) -> None: ...

class ExecuteStreamRequest(_message.Message):
    __slots__ = ("execute", "cancel")
    EXECUTE_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    execute: ExecuteRequest
    cancel: _common_pb2.Cancel
    def __init__(self, execute: _Optional[_Union[ExecuteRequest, _Mapping]] = ..., cancel: _Optional[_Union[_common_pb2.Cancel, _Mapping]] = ...) -> None: ...

class ExecuteStreamResponse(_message.Message):
    __slots__ = ("tool_call", "tool_result", "answer", "result", "error")
    TOOL_CALL_FIELD_NUMBER: _ClassVar[int]
    TOOL_RESULT_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    tool_call: ToolInvocation
    tool_result: ToolResult
    answer: _common_pb2.TokenDelta
    result: ExecuteResponse
    error: _status_pb2.Status
    def __init__(self, tool_call: _Optional[_Union[ToolInvocation, _Mapping]] = ..., tool_result: _Optional[_Union[ToolResult, _Mapping]] = ..., answer: _Optional[_Union[_common_pb2.TokenDelta, _Mapping]] = ..., result: _Optional[_Union[ExecuteResponse, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class ListToolsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListToolsResponse(_message.Message):
    __slots__ = ("tools",)
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    tools: _containers.RepeatedCompositeFieldContainer[ToolSpec]
    def __init__(self, tools: _Optional[_Iterable[_Union[ToolSpec, _Mapping]]] = ...) -> None: ...
