from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.rpc import status_pb2 as _status_pb2
from llmmesh_client._proto.llmmesh.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StepKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STEP_KIND_UNSPECIFIED: _ClassVar[StepKind]
    STEP_KIND_MODEL: _ClassVar[StepKind]
    STEP_KIND_TOOL: _ClassVar[StepKind]

class StepStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STEP_STATUS_UNSPECIFIED: _ClassVar[StepStatus]
    STEP_STATUS_SUCCEEDED: _ClassVar[StepStatus]
    STEP_STATUS_FAILED: _ClassVar[StepStatus]
    STEP_STATUS_SKIPPED: _ClassVar[StepStatus]

class PlanDecisionAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLAN_DECISION_ACTION_UNSPECIFIED: _ClassVar[PlanDecisionAction]
    PLAN_DECISION_ACTION_APPROVE: _ClassVar[PlanDecisionAction]
    PLAN_DECISION_ACTION_EDIT: _ClassVar[PlanDecisionAction]
    PLAN_DECISION_ACTION_REJECT: _ClassVar[PlanDecisionAction]
STEP_KIND_UNSPECIFIED: StepKind
STEP_KIND_MODEL: StepKind
STEP_KIND_TOOL: StepKind
STEP_STATUS_UNSPECIFIED: StepStatus
STEP_STATUS_SUCCEEDED: StepStatus
STEP_STATUS_FAILED: StepStatus
STEP_STATUS_SKIPPED: StepStatus
PLAN_DECISION_ACTION_UNSPECIFIED: PlanDecisionAction
PLAN_DECISION_ACTION_APPROVE: PlanDecisionAction
PLAN_DECISION_ACTION_EDIT: PlanDecisionAction
PLAN_DECISION_ACTION_REJECT: PlanDecisionAction

class PlanStep(_message.Message):
    __slots__ = ("id", "description", "kind", "tool", "arguments", "depends_on")
    ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    id: str
    description: str
    kind: StepKind
    tool: str
    arguments: _struct_pb2.Struct
    depends_on: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., description: _Optional[str] = ..., kind: _Optional[_Union[StepKind, str]] = ..., tool: _Optional[str] = ..., arguments: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., depends_on: _Optional[_Iterable[str]] = ...) -> None: ...

class Plan(_message.Message):
    __slots__ = ("steps", "revision")
    STEPS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedCompositeFieldContainer[PlanStep]
    revision: int
    def __init__(self, steps: _Optional[_Iterable[_Union[PlanStep, _Mapping]]] = ..., revision: _Optional[int] = ...) -> None: ...

class StepStarted(_message.Message):
    __slots__ = ("step_id", "plan_revision")
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_REVISION_FIELD_NUMBER: _ClassVar[int]
    step_id: str
    plan_revision: int
    def __init__(self, step_id: _Optional[str] = ..., plan_revision: _Optional[int] = ...) -> None: ...

class StepResult(_message.Message):
    __slots__ = ("step_id", "status", "output", "error", "duration_ms", "plan_revision")
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    PLAN_REVISION_FIELD_NUMBER: _ClassVar[int]
    step_id: str
    status: StepStatus
    output: str
    error: _status_pb2.Status
    duration_ms: float
    plan_revision: int
    def __init__(self, step_id: _Optional[str] = ..., status: _Optional[_Union[StepStatus, str]] = ..., output: _Optional[str] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., duration_ms: _Optional[float] = ..., plan_revision: _Optional[int] = ...) -> None: ...

class RunRequest(_message.Message):
    __slots__ = ("goal", "model", "tools", "max_steps", "max_replans", "require_approval", "options", "store")
    GOAL_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    MAX_STEPS_FIELD_NUMBER: _ClassVar[int]
    MAX_REPLANS_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_APPROVAL_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    goal: str
    model: str
    tools: _containers.RepeatedScalarFieldContainer[str]
    max_steps: int
    max_replans: int
    require_approval: bool
    options: _common_pb2.GenerationOptions
    store: bool
    def __init__(self, goal: _Optional[str] = ..., model: _Optional[str] = ..., tools: _Optional[_Iterable[str]] = ..., max_steps: _Optional[int] = ..., max_replans: _Optional[int] = ..., require_approval: _Optional[bool] = ..., options: _Optional[_Union[_common_pb2.GenerationOptions, _Mapping]] = ..., store: _Optional[bool] = ...) -> None: ...

class RunResponse(_message.Message):
    __slots__ = ("answer", "plan", "steps", "replans", "model", "usage", "run_id")
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    REPLANS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    answer: str
    plan: Plan
    steps: _containers.RepeatedCompositeFieldContainer[StepResult]
    replans: int
    model: str
    usage: _common_pb2.Usage
    run_id: str
    def __init__(self, answer: _Optional[str] = ..., plan: _Optional[_Union[Plan, _Mapping]] = ..., steps: _Optional[_Iterable[_Union[StepResult, _Mapping]]] = ..., replans: _Optional[int] = ..., model: _Optional[str] = ..., usage: _Optional[_Union[_common_pb2.Usage, _Mapping]] = ..., run_id: _Optional[str] = ...) -> None: ...

class PlanDecision(_message.Message):
    __slots__ = ("action", "edited_plan", "comment")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    EDITED_PLAN_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    action: PlanDecisionAction
    edited_plan: Plan
    comment: str
    def __init__(self, action: _Optional[_Union[PlanDecisionAction, str]] = ..., edited_plan: _Optional[_Union[Plan, _Mapping]] = ..., comment: _Optional[str] = ...) -> None: ...

class RunStreamRequest(_message.Message):
    __slots__ = ("run", "decision", "cancel")
    RUN_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    run: RunRequest
    decision: PlanDecision
    cancel: _common_pb2.Cancel
    def __init__(self, run: _Optional[_Union[RunRequest, _Mapping]] = ..., decision: _Optional[_Union[PlanDecision, _Mapping]] = ..., cancel: _Optional[_Union[_common_pb2.Cancel, _Mapping]] = ...) -> None: ...

class PlanProposed(_message.Message):
    __slots__ = ("plan", "awaiting_approval")
    PLAN_FIELD_NUMBER: _ClassVar[int]
    AWAITING_APPROVAL_FIELD_NUMBER: _ClassVar[int]
    plan: Plan
    awaiting_approval: bool
    def __init__(self, plan: _Optional[_Union[Plan, _Mapping]] = ..., awaiting_approval: _Optional[bool] = ...) -> None: ...

class RunStreamResponse(_message.Message):
    __slots__ = ("plan", "step_started", "step_result", "answer", "result", "error")
    PLAN_FIELD_NUMBER: _ClassVar[int]
    STEP_STARTED_FIELD_NUMBER: _ClassVar[int]
    STEP_RESULT_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    plan: PlanProposed
    step_started: StepStarted
    step_result: StepResult
    answer: _common_pb2.TokenDelta
    result: RunResponse
    error: _status_pb2.Status
    def __init__(self, plan: _Optional[_Union[PlanProposed, _Mapping]] = ..., step_started: _Optional[_Union[StepStarted, _Mapping]] = ..., step_result: _Optional[_Union[StepResult, _Mapping]] = ..., answer: _Optional[_Union[_common_pb2.TokenDelta, _Mapping]] = ..., result: _Optional[_Union[RunResponse, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...
