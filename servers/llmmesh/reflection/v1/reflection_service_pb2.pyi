from google.api import annotations_pb2 as _annotations_pb2
from google.rpc import status_pb2 as _status_pb2
from llmmesh.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReflectionStopReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REFLECTION_STOP_REASON_UNSPECIFIED: _ClassVar[ReflectionStopReason]
    REFLECTION_STOP_REASON_THRESHOLD_REACHED: _ClassVar[ReflectionStopReason]
    REFLECTION_STOP_REASON_MAX_ROUNDS: _ClassVar[ReflectionStopReason]
    REFLECTION_STOP_REASON_NO_IMPROVEMENT: _ClassVar[ReflectionStopReason]
REFLECTION_STOP_REASON_UNSPECIFIED: ReflectionStopReason
REFLECTION_STOP_REASON_THRESHOLD_REACHED: ReflectionStopReason
REFLECTION_STOP_REASON_MAX_ROUNDS: ReflectionStopReason
REFLECTION_STOP_REASON_NO_IMPROVEMENT: ReflectionStopReason

class ImproveRequest(_message.Message):
    __slots__ = ("task", "initial_draft", "model", "critic_model", "criteria", "max_rounds", "score_threshold", "options", "store")
    TASK_FIELD_NUMBER: _ClassVar[int]
    INITIAL_DRAFT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CRITIC_MODEL_FIELD_NUMBER: _ClassVar[int]
    CRITERIA_FIELD_NUMBER: _ClassVar[int]
    MAX_ROUNDS_FIELD_NUMBER: _ClassVar[int]
    SCORE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    task: str
    initial_draft: str
    model: str
    critic_model: str
    criteria: str
    max_rounds: int
    score_threshold: float
    options: _common_pb2.GenerationOptions
    store: bool
    def __init__(self, task: _Optional[str] = ..., initial_draft: _Optional[str] = ..., model: _Optional[str] = ..., critic_model: _Optional[str] = ..., criteria: _Optional[str] = ..., max_rounds: _Optional[int] = ..., score_threshold: _Optional[float] = ..., options: _Optional[_Union[_common_pb2.GenerationOptions, _Mapping]] = ..., store: _Optional[bool] = ...) -> None: ...

class Draft(_message.Message):
    __slots__ = ("round", "text")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    round: int
    text: str
    def __init__(self, round: _Optional[int] = ..., text: _Optional[str] = ...) -> None: ...

class Critique(_message.Message):
    __slots__ = ("round", "score", "feedback")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    round: int
    score: float
    feedback: str
    def __init__(self, round: _Optional[int] = ..., score: _Optional[float] = ..., feedback: _Optional[str] = ...) -> None: ...

class ReflectionRound(_message.Message):
    __slots__ = ("round", "draft", "score", "feedback")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    DRAFT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    round: int
    draft: str
    score: float
    feedback: str
    def __init__(self, round: _Optional[int] = ..., draft: _Optional[str] = ..., score: _Optional[float] = ..., feedback: _Optional[str] = ...) -> None: ...

class ImproveResponse(_message.Message):
    __slots__ = ("final_draft", "final_score", "rounds", "stop_reason", "history", "model", "usage", "run_id")
    FINAL_DRAFT_FIELD_NUMBER: _ClassVar[int]
    FINAL_SCORE_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    final_draft: str
    final_score: float
    rounds: int
    stop_reason: ReflectionStopReason
    history: _containers.RepeatedCompositeFieldContainer[ReflectionRound]
    model: str
    usage: _common_pb2.Usage
    run_id: str
    def __init__(self, final_draft: _Optional[str] = ..., final_score: _Optional[float] = ..., rounds: _Optional[int] = ..., stop_reason: _Optional[_Union[ReflectionStopReason, str]] = ..., history: _Optional[_Iterable[_Union[ReflectionRound, _Mapping]]] = ..., model: _Optional[str] = ..., usage: _Optional[_Union[_common_pb2.Usage, _Mapping]] = ..., run_id: _Optional[str] = ...) -> None: ...

class ImproveStreamRequest(_message.Message):
    __slots__ = ("improve", "cancel")
    IMPROVE_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    improve: ImproveRequest
    cancel: _common_pb2.Cancel
    def __init__(self, improve: _Optional[_Union[ImproveRequest, _Mapping]] = ..., cancel: _Optional[_Union[_common_pb2.Cancel, _Mapping]] = ...) -> None: ...

class ImproveStreamResponse(_message.Message):
    __slots__ = ("delta", "draft", "critique", "result", "error")
    DELTA_FIELD_NUMBER: _ClassVar[int]
    DRAFT_FIELD_NUMBER: _ClassVar[int]
    CRITIQUE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    delta: _common_pb2.TokenDelta
    draft: Draft
    critique: Critique
    result: ImproveResponse
    error: _status_pb2.Status
    def __init__(self, delta: _Optional[_Union[_common_pb2.TokenDelta, _Mapping]] = ..., draft: _Optional[_Union[Draft, _Mapping]] = ..., critique: _Optional[_Union[Critique, _Mapping]] = ..., result: _Optional[_Union[ImproveResponse, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...
