"""JudgeService: LLM-as-a-judge, pointwise or pairwise."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, Required, TypedDict, Unpack

from llmmesh_client._proto.llmmesh.judge.v1 import judge_service_pb2 as pb
from llmmesh_client.blocking import Facade, blocking, wrapping
from llmmesh_client.methods import JUDGE
from llmmesh_client.services.pattern import Options, PatternService
from llmmesh_client.sessions import AsyncRunStream, RunStream


class EvaluateFields(TypedDict, total=False):
    question: str
    answer: Required[str]
    contexts: Sequence[str]
    ground_truth: str
    # Built-in criterion (factual, clarity, relevance, faithfulness, helpfulness, safety).
    judge_type: str
    rubric: pb.Rubric | Mapping[str, Any]
    mode: int | str  # "pointwise" | "pairwise"
    answer_b: str
    model: str
    options: Options
    # False: the run is not kept in the run store (it still gets a run_id).
    store: bool


class AsyncJudge(PatternService):
    def evaluate(self, *, timeout: float | None = None, request_id: str | None = None,
                 **fields: Unpack[EvaluateFields]) -> Awaitable[pb.EvaluateResponse]:
        return self._unary(JUDGE["Evaluate"], pb.EvaluateRequest, fields, timeout, request_id)

    def evaluate_stream(self, *, timeout: float | None = None, request_id: str | None = None,
                        **fields: Unpack[EvaluateFields]) -> AsyncRunStream[pb.EvaluateStreamResponse]:
        """Events: `reasoning` deltas, `order_verdict` (pairwise), then `result`."""
        return self._stream(JUDGE["EvaluateStream"], "evaluate", pb.EvaluateRequest, fields, timeout, request_id,
                            AsyncRunStream)

    def list_criteria(self, *, timeout: float | None = None,
                      request_id: str | None = None) -> Awaitable[pb.ListCriteriaResponse]:
        return self._unary(JUDGE["ListCriteria"], pb.ListCriteriaRequest, {}, timeout, request_id)


class Judge(Facade[AsyncJudge]):
    evaluate = blocking(AsyncJudge.evaluate)
    evaluate_stream = wrapping(AsyncJudge.evaluate_stream, RunStream[pb.EvaluateStreamResponse])
    list_criteria = blocking(AsyncJudge.list_criteria)
