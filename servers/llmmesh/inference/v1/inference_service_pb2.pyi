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

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_SYSTEM: _ClassVar[Role]
    ROLE_USER: _ClassVar[Role]
    ROLE_ASSISTANT: _ClassVar[Role]
    ROLE_TOOL: _ClassVar[Role]

class ChatControlAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHAT_CONTROL_ACTION_UNSPECIFIED: _ClassVar[ChatControlAction]
    CHAT_CONTROL_ACTION_STOP: _ClassVar[ChatControlAction]
    CHAT_CONTROL_ACTION_RESET: _ClassVar[ChatControlAction]

class RouteTargetState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROUTE_TARGET_STATE_UNSPECIFIED: _ClassVar[RouteTargetState]
    ROUTE_TARGET_STATE_ACTIVE: _ClassVar[RouteTargetState]
    ROUTE_TARGET_STATE_EJECTED: _ClassVar[RouteTargetState]

class BackendProtocol(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BACKEND_PROTOCOL_UNSPECIFIED: _ClassVar[BackendProtocol]
    BACKEND_PROTOCOL_OLLAMA: _ClassVar[BackendProtocol]
    BACKEND_PROTOCOL_OPENAI: _ClassVar[BackendProtocol]
    BACKEND_PROTOCOL_ANTHROPIC: _ClassVar[BackendProtocol]

class BackendHealth(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BACKEND_HEALTH_UNSPECIFIED: _ClassVar[BackendHealth]
    BACKEND_HEALTH_HEALTHY: _ClassVar[BackendHealth]
    BACKEND_HEALTH_UNHEALTHY: _ClassVar[BackendHealth]

class CircuitState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CIRCUIT_STATE_UNSPECIFIED: _ClassVar[CircuitState]
    CIRCUIT_STATE_CLOSED: _ClassVar[CircuitState]
    CIRCUIT_STATE_OPEN: _ClassVar[CircuitState]
    CIRCUIT_STATE_HALF_OPEN: _ClassVar[CircuitState]
ROLE_UNSPECIFIED: Role
ROLE_SYSTEM: Role
ROLE_USER: Role
ROLE_ASSISTANT: Role
ROLE_TOOL: Role
CHAT_CONTROL_ACTION_UNSPECIFIED: ChatControlAction
CHAT_CONTROL_ACTION_STOP: ChatControlAction
CHAT_CONTROL_ACTION_RESET: ChatControlAction
ROUTE_TARGET_STATE_UNSPECIFIED: RouteTargetState
ROUTE_TARGET_STATE_ACTIVE: RouteTargetState
ROUTE_TARGET_STATE_EJECTED: RouteTargetState
BACKEND_PROTOCOL_UNSPECIFIED: BackendProtocol
BACKEND_PROTOCOL_OLLAMA: BackendProtocol
BACKEND_PROTOCOL_OPENAI: BackendProtocol
BACKEND_PROTOCOL_ANTHROPIC: BackendProtocol
BACKEND_HEALTH_UNSPECIFIED: BackendHealth
BACKEND_HEALTH_HEALTHY: BackendHealth
BACKEND_HEALTH_UNHEALTHY: BackendHealth
CIRCUIT_STATE_UNSPECIFIED: CircuitState
CIRCUIT_STATE_CLOSED: CircuitState
CIRCUIT_STATE_OPEN: CircuitState
CIRCUIT_STATE_HALF_OPEN: CircuitState

class ToolCall(_message.Message):
    __slots__ = ("id", "name", "arguments")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    arguments: _struct_pb2.Struct
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., arguments: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class Message(_message.Message):
    __slots__ = ("role", "content", "tool_calls", "tool_call_id", "name")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    role: Role
    content: str
    tool_calls: _containers.RepeatedCompositeFieldContainer[ToolCall]
    tool_call_id: str
    name: str
    def __init__(self, role: _Optional[_Union[Role, str]] = ..., content: _Optional[str] = ..., tool_calls: _Optional[_Iterable[_Union[ToolCall, _Mapping]]] = ..., tool_call_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class Tool(_message.Message):
    __slots__ = ("name", "description", "parameters")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    parameters: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class GenerateRequest(_message.Message):
    __slots__ = ("model", "prompt", "system", "options", "json_schema", "priority", "cache")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    JSON_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    model: str
    prompt: str
    system: str
    options: _common_pb2.GenerationOptions
    json_schema: _struct_pb2.Struct
    priority: _common_pb2.Priority
    cache: _common_pb2.CacheMode
    def __init__(self, model: _Optional[str] = ..., prompt: _Optional[str] = ..., system: _Optional[str] = ..., options: _Optional[_Union[_common_pb2.GenerationOptions, _Mapping]] = ..., json_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., priority: _Optional[_Union[_common_pb2.Priority, str]] = ..., cache: _Optional[_Union[_common_pb2.CacheMode, str]] = ...) -> None: ...

class GenerationDone(_message.Message):
    __slots__ = ("model", "backend", "done_reason", "prompt_tokens", "output_tokens", "time_to_first_token_ms", "total_ms", "tokens_per_second", "failed_over", "attempts", "backends", "queue_wait_ms", "cached", "requested_model", "fallback_from")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    DONE_REASON_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TIME_TO_FIRST_TOKEN_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    FAILED_OVER_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_MODEL_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FROM_FIELD_NUMBER: _ClassVar[int]
    model: str
    backend: str
    done_reason: str
    prompt_tokens: int
    output_tokens: int
    time_to_first_token_ms: float
    total_ms: float
    tokens_per_second: float
    failed_over: bool
    attempts: int
    backends: _containers.RepeatedScalarFieldContainer[str]
    queue_wait_ms: float
    cached: bool
    requested_model: str
    fallback_from: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model: _Optional[str] = ..., backend: _Optional[str] = ..., done_reason: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., time_to_first_token_ms: _Optional[float] = ..., total_ms: _Optional[float] = ..., tokens_per_second: _Optional[float] = ..., failed_over: _Optional[bool] = ..., attempts: _Optional[int] = ..., backends: _Optional[_Iterable[str]] = ..., queue_wait_ms: _Optional[float] = ..., cached: _Optional[bool] = ..., requested_model: _Optional[str] = ..., fallback_from: _Optional[_Iterable[str]] = ...) -> None: ...

class QueuePosition(_message.Message):
    __slots__ = ("position", "queue_length")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    QUEUE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    position: int
    queue_length: int
    def __init__(self, position: _Optional[int] = ..., queue_length: _Optional[int] = ...) -> None: ...

class ToolCallsEvent(_message.Message):
    __slots__ = ("tool_calls",)
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    tool_calls: _containers.RepeatedCompositeFieldContainer[ToolCall]
    def __init__(self, tool_calls: _Optional[_Iterable[_Union[ToolCall, _Mapping]]] = ...) -> None: ...

class GenerateResponse(_message.Message):
    __slots__ = ("delta", "done", "error", "queued")
    DELTA_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    delta: _common_pb2.TokenDelta
    done: GenerationDone
    error: _status_pb2.Status
    queued: QueuePosition
    def __init__(self, delta: _Optional[_Union[_common_pb2.TokenDelta, _Mapping]] = ..., done: _Optional[_Union[GenerationDone, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., queued: _Optional[_Union[QueuePosition, _Mapping]] = ...) -> None: ...

class ChatTurn(_message.Message):
    __slots__ = ("model", "messages", "options", "tools", "json_schema", "priority", "cache")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    JSON_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    model: str
    messages: _containers.RepeatedCompositeFieldContainer[Message]
    options: _common_pb2.GenerationOptions
    tools: _containers.RepeatedCompositeFieldContainer[Tool]
    json_schema: _struct_pb2.Struct
    priority: _common_pb2.Priority
    cache: _common_pb2.CacheMode
    def __init__(self, model: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[Message, _Mapping]]] = ..., options: _Optional[_Union[_common_pb2.GenerationOptions, _Mapping]] = ..., tools: _Optional[_Iterable[_Union[Tool, _Mapping]]] = ..., json_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., priority: _Optional[_Union[_common_pb2.Priority, str]] = ..., cache: _Optional[_Union[_common_pb2.CacheMode, str]] = ...) -> None: ...

class ChatControl(_message.Message):
    __slots__ = ("action",)
    ACTION_FIELD_NUMBER: _ClassVar[int]
    action: ChatControlAction
    def __init__(self, action: _Optional[_Union[ChatControlAction, str]] = ...) -> None: ...

class ChatRequest(_message.Message):
    __slots__ = ("turn", "control")
    TURN_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    turn: ChatTurn
    control: ChatControl
    def __init__(self, turn: _Optional[_Union[ChatTurn, _Mapping]] = ..., control: _Optional[_Union[ChatControl, _Mapping]] = ...) -> None: ...

class ChatResponse(_message.Message):
    __slots__ = ("delta", "tool_calls", "done", "error", "queued", "turn")
    DELTA_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    TURN_FIELD_NUMBER: _ClassVar[int]
    delta: _common_pb2.TokenDelta
    tool_calls: ToolCallsEvent
    done: GenerationDone
    error: _status_pb2.Status
    queued: QueuePosition
    turn: int
    def __init__(self, delta: _Optional[_Union[_common_pb2.TokenDelta, _Mapping]] = ..., tool_calls: _Optional[_Union[ToolCallsEvent, _Mapping]] = ..., done: _Optional[_Union[GenerationDone, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., queued: _Optional[_Union[QueuePosition, _Mapping]] = ..., turn: _Optional[int] = ...) -> None: ...

class CompleteChatRequest(_message.Message):
    __slots__ = ("model", "messages", "options", "tools", "json_schema", "priority", "cache")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    JSON_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    model: str
    messages: _containers.RepeatedCompositeFieldContainer[Message]
    options: _common_pb2.GenerationOptions
    tools: _containers.RepeatedCompositeFieldContainer[Tool]
    json_schema: _struct_pb2.Struct
    priority: _common_pb2.Priority
    cache: _common_pb2.CacheMode
    def __init__(self, model: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[Message, _Mapping]]] = ..., options: _Optional[_Union[_common_pb2.GenerationOptions, _Mapping]] = ..., tools: _Optional[_Iterable[_Union[Tool, _Mapping]]] = ..., json_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., priority: _Optional[_Union[_common_pb2.Priority, str]] = ..., cache: _Optional[_Union[_common_pb2.CacheMode, str]] = ...) -> None: ...

class CompleteChatResponse(_message.Message):
    __slots__ = ("message", "done")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    message: Message
    done: GenerationDone
    def __init__(self, message: _Optional[_Union[Message, _Mapping]] = ..., done: _Optional[_Union[GenerationDone, _Mapping]] = ...) -> None: ...

class CompleteChatStreamRequest(_message.Message):
    __slots__ = ("model", "messages", "options", "tools", "json_schema", "priority", "cache")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    JSON_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    model: str
    messages: _containers.RepeatedCompositeFieldContainer[Message]
    options: _common_pb2.GenerationOptions
    tools: _containers.RepeatedCompositeFieldContainer[Tool]
    json_schema: _struct_pb2.Struct
    priority: _common_pb2.Priority
    cache: _common_pb2.CacheMode
    def __init__(self, model: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[Message, _Mapping]]] = ..., options: _Optional[_Union[_common_pb2.GenerationOptions, _Mapping]] = ..., tools: _Optional[_Iterable[_Union[Tool, _Mapping]]] = ..., json_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., priority: _Optional[_Union[_common_pb2.Priority, str]] = ..., cache: _Optional[_Union[_common_pb2.CacheMode, str]] = ...) -> None: ...

class CompleteChatStreamResponse(_message.Message):
    __slots__ = ("delta", "tool_calls", "done", "queued", "error")
    DELTA_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    delta: _common_pb2.TokenDelta
    tool_calls: ToolCallsEvent
    done: GenerationDone
    queued: QueuePosition
    error: _status_pb2.Status
    def __init__(self, delta: _Optional[_Union[_common_pb2.TokenDelta, _Mapping]] = ..., tool_calls: _Optional[_Union[ToolCallsEvent, _Mapping]] = ..., done: _Optional[_Union[GenerationDone, _Mapping]] = ..., queued: _Optional[_Union[QueuePosition, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class EmbedRequest(_message.Message):
    __slots__ = ("model", "inputs")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    model: str
    inputs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model: _Optional[str] = ..., inputs: _Optional[_Iterable[str]] = ...) -> None: ...

class Embedding(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class EmbedResponse(_message.Message):
    __slots__ = ("model", "backend", "embeddings", "prompt_tokens")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    model: str
    backend: str
    embeddings: _containers.RepeatedCompositeFieldContainer[Embedding]
    prompt_tokens: int
    def __init__(self, model: _Optional[str] = ..., backend: _Optional[str] = ..., embeddings: _Optional[_Iterable[_Union[Embedding, _Mapping]]] = ..., prompt_tokens: _Optional[int] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "backends", "loaded_on", "aliases", "context_window", "native_tools", "routes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    LOADED_ON_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_WINDOW_FIELD_NUMBER: _ClassVar[int]
    NATIVE_TOOLS_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    name: str
    backends: _containers.RepeatedScalarFieldContainer[str]
    loaded_on: _containers.RepeatedScalarFieldContainer[str]
    aliases: _containers.RepeatedScalarFieldContainer[str]
    context_window: int
    native_tools: bool
    routes: _containers.RepeatedCompositeFieldContainer[RouteTarget]
    def __init__(self, name: _Optional[str] = ..., backends: _Optional[_Iterable[str]] = ..., loaded_on: _Optional[_Iterable[str]] = ..., aliases: _Optional[_Iterable[str]] = ..., context_window: _Optional[int] = ..., native_tools: _Optional[bool] = ..., routes: _Optional[_Iterable[_Union[RouteTarget, _Mapping]]] = ...) -> None: ...

class RouteTarget(_message.Message):
    __slots__ = ("route", "stage", "configured_weight", "weight", "state", "reason")
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    CONFIGURED_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    route: str
    stage: int
    configured_weight: int
    weight: int
    state: RouteTargetState
    reason: str
    def __init__(self, route: _Optional[str] = ..., stage: _Optional[int] = ..., configured_weight: _Optional[int] = ..., weight: _Optional[int] = ..., state: _Optional[_Union[RouteTargetState, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "default_model")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MODEL_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    default_model: str
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ..., default_model: _Optional[str] = ...) -> None: ...

class ListBackendsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BackendInfo(_message.Message):
    __slots__ = ("name", "url", "protocol", "health", "circuit", "in_flight", "models", "loaded_models", "last_error", "continuation")
    NAME_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    CIRCUIT_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    LOADED_MODELS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    CONTINUATION_FIELD_NUMBER: _ClassVar[int]
    name: str
    url: str
    protocol: BackendProtocol
    health: BackendHealth
    circuit: CircuitState
    in_flight: int
    models: _containers.RepeatedScalarFieldContainer[str]
    loaded_models: _containers.RepeatedScalarFieldContainer[str]
    last_error: str
    continuation: str
    def __init__(self, name: _Optional[str] = ..., url: _Optional[str] = ..., protocol: _Optional[_Union[BackendProtocol, str]] = ..., health: _Optional[_Union[BackendHealth, str]] = ..., circuit: _Optional[_Union[CircuitState, str]] = ..., in_flight: _Optional[int] = ..., models: _Optional[_Iterable[str]] = ..., loaded_models: _Optional[_Iterable[str]] = ..., last_error: _Optional[str] = ..., continuation: _Optional[str] = ...) -> None: ...

class ListBackendsResponse(_message.Message):
    __slots__ = ("backends",)
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    backends: _containers.RepeatedCompositeFieldContainer[BackendInfo]
    def __init__(self, backends: _Optional[_Iterable[_Union[BackendInfo, _Mapping]]] = ...) -> None: ...
