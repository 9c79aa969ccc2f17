from google.api import annotations_pb2 as _annotations_pb2
from google.rpc import status_pb2 as _status_pb2
from llmmesh_client._proto.llmmesh.common.v1 import common_pb2 as _common_pb2
from llmmesh_client._proto.llmmesh.inference.v1 import inference_service_pb2 as _inference_service_pb2
from llmmesh_client._proto.llmmesh.judge.v1 import judge_service_pb2 as _judge_service_pb2
from llmmesh_client._proto.llmmesh.jury.v1 import jury_service_pb2 as _jury_service_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RunRequest(_message.Message):
    __slots__ = ("prompt", "messages", "system", "models", "criteria", "rubric", "reference", "judges", "pairwise", "options", "preset", "store")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    CRITERIA_FIELD_NUMBER: _ClassVar[int]
    RUBRIC_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    JUDGES_FIELD_NUMBER: _ClassVar[int]
    PAIRWISE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    messages: _containers.RepeatedCompositeFieldContainer[_inference_service_pb2.Message]
    system: str
    models: _containers.RepeatedScalarFieldContainer[str]
    criteria: _containers.RepeatedScalarFieldContainer[str]
    rubric: _judge_service_pb2.Rubric
    reference: str
    judges: _containers.RepeatedScalarFieldContainer[str]
    pairwise: bool
    options: _common_pb2.GenerationOptions
    preset: str
    store: bool
    def __init__(self, prompt: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[_inference_service_pb2.Message, _Mapping]]] = ..., system: _Optional[str] = ..., models: _Optional[_Iterable[str]] = ..., criteria: _Optional[_Iterable[str]] = ..., rubric: _Optional[_Union[_judge_service_pb2.Rubric, _Mapping]] = ..., reference: _Optional[str] = ..., judges: _Optional[_Iterable[str]] = ..., pairwise: _Optional[bool] = ..., options: _Optional[_Union[_common_pb2.GenerationOptions, _Mapping]] = ..., preset: _Optional[str] = ..., store: _Optional[bool] = ...) -> None: ...

class Answer(_message.Message):
    __slots__ = ("model", "text", "latency_ms", "time_to_first_token_ms", "output_tokens", "tokens_per_second")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    TIME_TO_FIRST_TOKEN_MS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    model: str
    text: str
    latency_ms: float
    time_to_first_token_ms: float
    output_tokens: int
    tokens_per_second: float
    def __init__(self, model: _Optional[str] = ..., text: _Optional[str] = ..., latency_ms: _Optional[float] = ..., time_to_first_token_ms: _Optional[float] = ..., output_tokens: _Optional[int] = ..., tokens_per_second: _Optional[float] = ...) -> None: ...

class AnswerVerdict(_message.Message):
    __slots__ = ("model", "verdict")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    model: str
    verdict: _jury_service_pb2.JurorVerdict
    def __init__(self, model: _Optional[str] = ..., verdict: _Optional[_Union[_jury_service_pb2.JurorVerdict, _Mapping]] = ...) -> None: ...

class CriterionScore(_message.Message):
    __slots__ = ("criterion", "score")
    CRITERION_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    criterion: str
    score: float
    def __init__(self, criterion: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class ModelScore(_message.Message):
    __slots__ = ("model", "score", "criteria", "verdicts", "agreement")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    CRITERIA_FIELD_NUMBER: _ClassVar[int]
    VERDICTS_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    model: str
    score: float
    criteria: _containers.RepeatedCompositeFieldContainer[CriterionScore]
    verdicts: _containers.RepeatedCompositeFieldContainer[_jury_service_pb2.JurorVerdict]
    agreement: _jury_service_pb2.Agreement
    def __init__(self, model: _Optional[str] = ..., score: _Optional[float] = ..., criteria: _Optional[_Iterable[_Union[CriterionScore, _Mapping]]] = ..., verdicts: _Optional[_Iterable[_Union[_jury_service_pb2.JurorVerdict, _Mapping]]] = ..., agreement: _Optional[_Union[_jury_service_pb2.Agreement, _Mapping]] = ...) -> None: ...

class PairwiseComparison(_message.Message):
    __slots__ = ("model_a", "model_b", "winner", "consistent", "orders", "judge")
    MODEL_A_FIELD_NUMBER: _ClassVar[int]
    MODEL_B_FIELD_NUMBER: _ClassVar[int]
    WINNER_FIELD_NUMBER: _ClassVar[int]
    CONSISTENT_FIELD_NUMBER: _ClassVar[int]
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    JUDGE_FIELD_NUMBER: _ClassVar[int]
    model_a: str
    model_b: str
    winner: str
    consistent: bool
    orders: _containers.RepeatedCompositeFieldContainer[_judge_service_pb2.PairwiseOrder]
    judge: str
    def __init__(self, model_a: _Optional[str] = ..., model_b: _Optional[str] = ..., winner: _Optional[str] = ..., consistent: _Optional[bool] = ..., orders: _Optional[_Iterable[_Union[_judge_service_pb2.PairwiseOrder, _Mapping]]] = ..., judge: _Optional[str] = ...) -> None: ...

class RankingEntry(_message.Message):
    __slots__ = ("model", "score", "rank", "wins", "ties", "latency_ms", "tokens_per_second", "output_tokens")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    WINS_FIELD_NUMBER: _ClassVar[int]
    TIES_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    model: str
    score: float
    rank: int
    wins: int
    ties: int
    latency_ms: float
    tokens_per_second: float
    output_tokens: int
    def __init__(self, model: _Optional[str] = ..., score: _Optional[float] = ..., rank: _Optional[int] = ..., wins: _Optional[int] = ..., ties: _Optional[int] = ..., latency_ms: _Optional[float] = ..., tokens_per_second: _Optional[float] = ..., output_tokens: _Optional[int] = ...) -> None: ...

class RunResponse(_message.Message):
    __slots__ = ("ranking", "answers", "scores", "comparisons", "criteria", "usage", "run_id")
    RANKING_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    COMPARISONS_FIELD_NUMBER: _ClassVar[int]
    CRITERIA_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ranking: _containers.RepeatedCompositeFieldContainer[RankingEntry]
    answers: _containers.RepeatedCompositeFieldContainer[Answer]
    scores: _containers.RepeatedCompositeFieldContainer[ModelScore]
    comparisons: _containers.RepeatedCompositeFieldContainer[PairwiseComparison]
    criteria: _containers.RepeatedScalarFieldContainer[str]
    usage: _common_pb2.Usage
    run_id: str
    def __init__(self, ranking: _Optional[_Iterable[_Union[RankingEntry, _Mapping]]] = ..., answers: _Optional[_Iterable[_Union[Answer, _Mapping]]] = ..., scores: _Optional[_Iterable[_Union[ModelScore, _Mapping]]] = ..., comparisons: _Optional[_Iterable[_Union[PairwiseComparison, _Mapping]]] = ..., criteria: _Optional[_Iterable[str]] = ..., usage: _Optional[_Union[_common_pb2.Usage, _Mapping]] = ..., run_id: _Optional[str] = ...) -> None: ...

class RunStreamRequest(_message.Message):
    __slots__ = ("run", "cancel")
    RUN_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    run: RunRequest
    cancel: _common_pb2.Cancel
    def __init__(self, run: _Optional[_Union[RunRequest, _Mapping]] = ..., cancel: _Optional[_Union[_common_pb2.Cancel, _Mapping]] = ...) -> None: ...

class RunStreamResponse(_message.Message):
    __slots__ = ("delta", "answer", "verdict", "score", "comparison", "result", "error")
    DELTA_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    COMPARISON_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    delta: _common_pb2.TokenDelta
    answer: Answer
    verdict: AnswerVerdict
    score: ModelScore
    comparison: PairwiseComparison
    result: RunResponse
    error: _status_pb2.Status
    def __init__(self, delta: _Optional[_Union[_common_pb2.TokenDelta, _Mapping]] = ..., answer: _Optional[_Union[Answer, _Mapping]] = ..., verdict: _Optional[_Union[AnswerVerdict, _Mapping]] = ..., score: _Optional[_Union[ModelScore, _Mapping]] = ..., comparison: _Optional[_Union[PairwiseComparison, _Mapping]] = ..., result: _Optional[_Union[RunResponse, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...
