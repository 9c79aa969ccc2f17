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

class Aggregation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGGREGATION_UNSPECIFIED: _ClassVar[Aggregation]
    AGGREGATION_MEAN: _ClassVar[Aggregation]
    AGGREGATION_MEDIAN: _ClassVar[Aggregation]
    AGGREGATION_MAJORITY_VOTE: _ClassVar[Aggregation]
    AGGREGATION_WEIGHTED_MEAN: _ClassVar[Aggregation]

class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERDICT_UNSPECIFIED: _ClassVar[Verdict]
    VERDICT_PASS: _ClassVar[Verdict]
    VERDICT_FAIL: _ClassVar[Verdict]
AGGREGATION_UNSPECIFIED: Aggregation
AGGREGATION_MEAN: Aggregation
AGGREGATION_MEDIAN: Aggregation
AGGREGATION_MAJORITY_VOTE: Aggregation
AGGREGATION_WEIGHTED_MEAN: Aggregation
VERDICT_UNSPECIFIED: Verdict
VERDICT_PASS: Verdict
VERDICT_FAIL: Verdict

class Juror(_message.Message):
    __slots__ = ("name", "model", "criterion", "instructions", "weight")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CRITERION_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTIONS_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    name: str
    model: str
    criterion: str
    instructions: str
    weight: float
    def __init__(self, name: _Optional[str] = ..., model: _Optional[str] = ..., criterion: _Optional[str] = ..., instructions: _Optional[str] = ..., weight: _Optional[float] = ...) -> None: ...

class EvaluateRequest(_message.Message):
    __slots__ = ("question", "answer", "contexts", "ground_truth", "judge_type", "panel", "aggregation", "quorum", "options", "preset", "store")
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    CONTEXTS_FIELD_NUMBER: _ClassVar[int]
    GROUND_TRUTH_FIELD_NUMBER: _ClassVar[int]
    JUDGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    PANEL_FIELD_NUMBER: _ClassVar[int]
    AGGREGATION_FIELD_NUMBER: _ClassVar[int]
    QUORUM_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    question: str
    answer: str
    contexts: _containers.RepeatedScalarFieldContainer[str]
    ground_truth: str
    judge_type: str
    panel: _containers.RepeatedCompositeFieldContainer[Juror]
    aggregation: Aggregation
    quorum: int
    options: _common_pb2.GenerationOptions
    preset: str
    store: bool
    def __init__(self, question: _Optional[str] = ..., answer: _Optional[str] = ..., contexts: _Optional[_Iterable[str]] = ..., ground_truth: _Optional[str] = ..., judge_type: _Optional[str] = ..., panel: _Optional[_Iterable[_Union[Juror, _Mapping]]] = ..., aggregation: _Optional[_Union[Aggregation, str]] = ..., quorum: _Optional[int] = ..., options: _Optional[_Union[_common_pb2.GenerationOptions, _Mapping]] = ..., preset: _Optional[str] = ..., store: _Optional[bool] = ...) -> None: ...

class JurorVerdict(_message.Message):
    __slots__ = ("juror", "model", "criterion", "score", "normalized_score", "verdict", "reasoning", "duration_ms", "error")
    JUROR_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CRITERION_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    NORMALIZED_SCORE_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASONING_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    juror: str
    model: str
    criterion: str
    score: float
    normalized_score: float
    verdict: Verdict
    reasoning: str
    duration_ms: float
    error: _status_pb2.Status
    def __init__(self, juror: _Optional[str] = ..., model: _Optional[str] = ..., criterion: _Optional[str] = ..., score: _Optional[float] = ..., normalized_score: _Optional[float] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., reasoning: _Optional[str] = ..., duration_ms: _Optional[float] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class Agreement(_message.Message):
    __slots__ = ("spread", "min_score", "max_score", "verdict_agreement", "pairwise_agreement")
    SPREAD_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    MAX_SCORE_FIELD_NUMBER: _ClassVar[int]
    VERDICT_AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    PAIRWISE_AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    spread: float
    min_score: float
    max_score: float
    verdict_agreement: float
    pairwise_agreement: float
    def __init__(self, spread: _Optional[float] = ..., min_score: _Optional[float] = ..., max_score: _Optional[float] = ..., verdict_agreement: _Optional[float] = ..., pairwise_agreement: _Optional[float] = ...) -> None: ...

class EvaluateResponse(_message.Message):
    __slots__ = ("score", "verdict", "aggregation", "verdicts", "agreement", "failed_jurors", "quorum", "usage", "run_id")
    SCORE_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    AGGREGATION_FIELD_NUMBER: _ClassVar[int]
    VERDICTS_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    FAILED_JURORS_FIELD_NUMBER: _ClassVar[int]
    QUORUM_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    score: float
    verdict: Verdict
    aggregation: Aggregation
    verdicts: _containers.RepeatedCompositeFieldContainer[JurorVerdict]
    agreement: Agreement
    failed_jurors: _containers.RepeatedScalarFieldContainer[str]
    quorum: int
    usage: _common_pb2.Usage
    run_id: str
    def __init__(self, score: _Optional[float] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., aggregation: _Optional[_Union[Aggregation, str]] = ..., verdicts: _Optional[_Iterable[_Union[JurorVerdict, _Mapping]]] = ..., agreement: _Optional[_Union[Agreement, _Mapping]] = ..., failed_jurors: _Optional[_Iterable[str]] = ..., quorum: _Optional[int] = ..., usage: _Optional[_Union[_common_pb2.Usage, _Mapping]] = ..., run_id: _Optional[str] = ...) -> None: ...

class EvaluateStreamRequest(_message.Message):
    __slots__ = ("evaluate", "cancel")
    EVALUATE_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    evaluate: EvaluateRequest
    cancel: _common_pb2.Cancel
    def __init__(self, evaluate: _Optional[_Union[EvaluateRequest, _Mapping]] = ..., cancel: _Optional[_Union[_common_pb2.Cancel, _Mapping]] = ...) -> None: ...

class EvaluateStreamResponse(_message.Message):
    __slots__ = ("juror_verdict", "result", "error")
    JUROR_VERDICT_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    juror_verdict: JurorVerdict
    result: EvaluateResponse
    error: _status_pb2.Status
    def __init__(self, juror_verdict: _Optional[_Union[JurorVerdict, _Mapping]] = ..., result: _Optional[_Union[EvaluateResponse, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...
