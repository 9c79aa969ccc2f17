from google.api import annotations_pb2 as _annotations_pb2
from google.rpc import status_pb2 as _status_pb2
from llmmesh_client._proto.llmmesh.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Strategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STRATEGY_UNSPECIFIED: _ClassVar[Strategy]
    STRATEGY_ROUND_ROBIN: _ClassVar[Strategy]
    STRATEGY_DEBATE: _ClassVar[Strategy]
    STRATEGY_MIXTURE_OF_AGENTS: _ClassVar[Strategy]
STRATEGY_UNSPECIFIED: Strategy
STRATEGY_ROUND_ROBIN: Strategy
STRATEGY_DEBATE: Strategy
STRATEGY_MIXTURE_OF_AGENTS: Strategy

class Agent(_message.Message):
    __slots__ = ("name", "system_prompt", "model")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_PROMPT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    name: str
    system_prompt: str
    model: str
    def __init__(self, name: _Optional[str] = ..., system_prompt: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...

class RunRequest(_message.Message):
    __slots__ = ("task", "agents", "strategy", "rounds", "aggregator", "human_in_loop", "options", "store")
    TASK_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    AGGREGATOR_FIELD_NUMBER: _ClassVar[int]
    HUMAN_IN_LOOP_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    task: str
    agents: _containers.RepeatedCompositeFieldContainer[Agent]
    strategy: Strategy
    rounds: int
    aggregator: Agent
    human_in_loop: bool
    options: _common_pb2.GenerationOptions
    store: bool
    def __init__(self, task: _Optional[str] = ..., agents: _Optional[_Iterable[_Union[Agent, _Mapping]]] = ..., strategy: _Optional[_Union[Strategy, str]] = ..., rounds: _Optional[int] = ..., aggregator: _Optional[_Union[Agent, _Mapping]] = ..., human_in_loop: _Optional[bool] = ..., options: _Optional[_Union[_common_pb2.GenerationOptions, _Mapping]] = ..., store: _Optional[bool] = ...) -> None: ...

class AgentTurn(_message.Message):
    __slots__ = ("agent", "round", "content", "human")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    HUMAN_FIELD_NUMBER: _ClassVar[int]
    agent: str
    round: int
    content: str
    human: bool
    def __init__(self, agent: _Optional[str] = ..., round: _Optional[int] = ..., content: _Optional[str] = ..., human: _Optional[bool] = ...) -> None: ...

class DebateVerdict(_message.Message):
    __slots__ = ("winner", "rationale")
    WINNER_FIELD_NUMBER: _ClassVar[int]
    RATIONALE_FIELD_NUMBER: _ClassVar[int]
    winner: str
    rationale: str
    def __init__(self, winner: _Optional[str] = ..., rationale: _Optional[str] = ...) -> None: ...

class RunResponse(_message.Message):
    __slots__ = ("answer", "transcript", "strategy", "rounds", "usage", "verdict", "run_id")
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    answer: str
    transcript: _containers.RepeatedCompositeFieldContainer[AgentTurn]
    strategy: Strategy
    rounds: int
    usage: _common_pb2.Usage
    verdict: DebateVerdict
    run_id: str
    def __init__(self, answer: _Optional[str] = ..., transcript: _Optional[_Iterable[_Union[AgentTurn, _Mapping]]] = ..., strategy: _Optional[_Union[Strategy, str]] = ..., rounds: _Optional[int] = ..., usage: _Optional[_Union[_common_pb2.Usage, _Mapping]] = ..., verdict: _Optional[_Union[DebateVerdict, _Mapping]] = ..., run_id: _Optional[str] = ...) -> None: ...

class HumanTurn(_message.Message):
    __slots__ = ("content",)
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    content: str
    def __init__(self, content: _Optional[str] = ...) -> None: ...

class TurnStarted(_message.Message):
    __slots__ = ("agent", "round")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    agent: str
    round: int
    def __init__(self, agent: _Optional[str] = ..., round: _Optional[int] = ...) -> None: ...

class AwaitingHuman(_message.Message):
    __slots__ = ("round",)
    ROUND_FIELD_NUMBER: _ClassVar[int]
    round: int
    def __init__(self, round: _Optional[int] = ...) -> None: ...

class RunStreamRequest(_message.Message):
    __slots__ = ("run", "human", "cancel")
    RUN_FIELD_NUMBER: _ClassVar[int]
    HUMAN_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    run: RunRequest
    human: HumanTurn
    cancel: _common_pb2.Cancel
    def __init__(self, run: _Optional[_Union[RunRequest, _Mapping]] = ..., human: _Optional[_Union[HumanTurn, _Mapping]] = ..., cancel: _Optional[_Union[_common_pb2.Cancel, _Mapping]] = ...) -> None: ...

class RunStreamResponse(_message.Message):
    __slots__ = ("turn_started", "delta", "turn", "awaiting_human", "result", "error")
    TURN_STARTED_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    TURN_FIELD_NUMBER: _ClassVar[int]
    AWAITING_HUMAN_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    turn_started: TurnStarted
    delta: _common_pb2.TokenDelta
    turn: AgentTurn
    awaiting_human: AwaitingHuman
    result: RunResponse
    error: _status_pb2.Status
    def __init__(self, turn_started: _Optional[_Union[TurnStarted, _Mapping]] = ..., delta: _Optional[_Union[_common_pb2.TokenDelta, _Mapping]] = ..., turn: _Optional[_Union[AgentTurn, _Mapping]] = ..., awaiting_human: _Optional[_Union[AwaitingHuman, _Mapping]] = ..., result: _Optional[_Union[RunResponse, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...
