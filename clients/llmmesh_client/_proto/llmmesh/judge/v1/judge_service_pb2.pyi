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

class JudgeMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JUDGE_MODE_UNSPECIFIED: _ClassVar[JudgeMode]
    JUDGE_MODE_POINTWISE: _ClassVar[JudgeMode]
    JUDGE_MODE_PAIRWISE: _ClassVar[JudgeMode]

class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERDICT_UNSPECIFIED: _ClassVar[Verdict]
    VERDICT_PASS: _ClassVar[Verdict]
    VERDICT_FAIL: _ClassVar[Verdict]
    VERDICT_A: _ClassVar[Verdict]
    VERDICT_B: _ClassVar[Verdict]
    VERDICT_TIE: _ClassVar[Verdict]
JUDGE_MODE_UNSPECIFIED: JudgeMode
JUDGE_MODE_POINTWISE: JudgeMode
JUDGE_MODE_PAIRWISE: JudgeMode
VERDICT_UNSPECIFIED: Verdict
VERDICT_PASS: Verdict
VERDICT_FAIL: Verdict
VERDICT_A: Verdict
VERDICT_B: Verdict
VERDICT_TIE: Verdict

class ScoreAnchor(_message.Message):
    __slots__ = ("score", "description")
    SCORE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    score: float
    description: str
    def __init__(self, score: _Optional[float] = ..., description: _Optional[str] = ...) -> None: ...

class Rubric(_message.Message):
    __slots__ = ("name", "description", "min_score", "max_score", "anchors", "pass_threshold")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    MAX_SCORE_FIELD_NUMBER: _ClassVar[int]
    ANCHORS_FIELD_NUMBER: _ClassVar[int]
    PASS_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    min_score: float
    max_score: float
    anchors: _containers.RepeatedCompositeFieldContainer[ScoreAnchor]
    pass_threshold: float
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., min_score: _Optional[float] = ..., max_score: _Optional[float] = ..., anchors: _Optional[_Iterable[_Union[ScoreAnchor, _Mapping]]] = ..., pass_threshold: _Optional[float] = ...) -> None: ...

class EvaluateRequest(_message.Message):
    __slots__ = ("question", "answer", "contexts", "ground_truth", "judge_type", "rubric", "mode", "answer_b", "model", "options", "store")
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    CONTEXTS_FIELD_NUMBER: _ClassVar[int]
    GROUND_TRUTH_FIELD_NUMBER: _ClassVar[int]
    JUDGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    RUBRIC_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ANSWER_B_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    question: str
    answer: str
    contexts: _containers.RepeatedScalarFieldContainer[str]
    ground_truth: str
    judge_type: str
    rubric: Rubric
    mode: JudgeMode
    answer_b: str
    model: str
    options: _common_pb2.GenerationOptions
    store: bool
    def __init__(self, question: _Optional[str] = ..., answer: _Optional[str] = ..., contexts: _Optional[_Iterable[str]] = ..., ground_truth: _Optional[str] = ..., judge_type: _Optional[str] = ..., rubric: _Optional[_Union[Rubric, _Mapping]] = ..., mode: _Optional[_Union[JudgeMode, str]] = ..., answer_b: _Optional[str] = ..., model: _Optional[str] = ..., options: _Optional[_Union[_common_pb2.GenerationOptions, _Mapping]] = ..., store: _Optional[bool] = ...) -> None: ...

class PairwiseOrder(_message.Message):
    __slots__ = ("order", "winner", "reasoning")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    WINNER_FIELD_NUMBER: _ClassVar[int]
    REASONING_FIELD_NUMBER: _ClassVar[int]
    order: str
    winner: Verdict
    reasoning: str
    def __init__(self, order: _Optional[str] = ..., winner: _Optional[_Union[Verdict, str]] = ..., reasoning: _Optional[str] = ...) -> None: ...

class PairwiseResult(_message.Message):
    __slots__ = ("orders", "consistent")
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    CONSISTENT_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[PairwiseOrder]
    consistent: bool
    def __init__(self, orders: _Optional[_Iterable[_Union[PairwiseOrder, _Mapping]]] = ..., consistent: _Optional[bool] = ...) -> None: ...

class EvaluateResponse(_message.Message):
    __slots__ = ("score", "verdict", "judge", "reasoning", "criterion", "min_score", "max_score", "pairwise", "usage", "run_id")
    SCORE_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    JUDGE_FIELD_NUMBER: _ClassVar[int]
    REASONING_FIELD_NUMBER: _ClassVar[int]
    CRITERION_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    MAX_SCORE_FIELD_NUMBER: _ClassVar[int]
    PAIRWISE_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    score: float
    verdict: Verdict
    judge: str
    reasoning: str
    criterion: str
    min_score: float
    max_score: float
    pairwise: PairwiseResult
    usage: _common_pb2.Usage
    run_id: str
    def __init__(self, score: _Optional[float] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., judge: _Optional[str] = ..., reasoning: _Optional[str] = ..., criterion: _Optional[str] = ..., min_score: _Optional[float] = ..., max_score: _Optional[float] = ..., pairwise: _Optional[_Union[PairwiseResult, _Mapping]] = ..., usage: _Optional[_Union[_common_pb2.Usage, _Mapping]] = ..., run_id: _Optional[str] = ...) -> None: ...

class EvaluateStreamRequest(_message.Message):
    __slots__ = ("evaluate", "cancel")
    EVALUATE_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    evaluate: EvaluateRequest
    cancel: _common_pb2.Cancel
    def __init__(self, evaluate: _Optional[_Union[EvaluateRequest, _Mapping]] = ..., cancel: _Optional[_Union[_common_pb2.Cancel, _Mapping]] = ...) -> None: ...

class EvaluateStreamResponse(_message.Message):
    __slots__ = ("reasoning", "order_verdict", "result", "error")
    REASONING_FIELD_NUMBER: _ClassVar[int]
    ORDER_VERDICT_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    reasoning: _common_pb2.TokenDelta
    order_verdict: PairwiseOrder
    result: EvaluateResponse
    error: _status_pb2.Status
    def __init__(self, reasoning: _Optional[_Union[_common_pb2.TokenDelta, _Mapping]] = ..., order_verdict: _Optional[_Union[PairwiseOrder, _Mapping]] = ..., result: _Optional[_Union[EvaluateResponse, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class ListCriteriaRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCriteriaResponse(_message.Message):
    __slots__ = ("criteria",)
    CRITERIA_FIELD_NUMBER: _ClassVar[int]
    criteria: _containers.RepeatedCompositeFieldContainer[Rubric]
    def __init__(self, criteria: _Optional[_Iterable[_Union[Rubric, _Mapping]]] = ...) -> None: ...
