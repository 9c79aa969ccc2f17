"""JuryService: a panel of judges run in parallel and aggregated (PoLL)."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, Required, TypedDict, Unpack

from llmmesh_client._proto.llmmesh.jury.v1 import jury_service_pb2 as pb
from llmmesh_client.blocking import Facade, blocking, wrapping
from llmmesh_client.methods import JURY
from llmmesh_client.services.pattern import Options, PatternService
from llmmesh_client.sessions import AsyncRunStream, RunStream


class JuryFields(TypedDict, total=False):
    question: str
    answer: Required[str]
    contexts: Sequence[str]
    ground_truth: str
    judge_type: str
    # Jurors: {"model": ..., "criterion": ..., "instructions": ..., "weight": ..., "name": ...}.
    panel: Sequence[pb.Juror | Mapping[str, Any]]
    aggregation: int | str  # "mean" | "median" | "majority-vote" | "weighted-mean"
    quorum: int
    options: Options
    # A named analysis preset of the server's: its panel, when `panel` is empty.
    preset: str
    # False: the run is not kept in the run store (it still gets a run_id).
    store: bool


class AsyncJury(PatternService):
    def evaluate(self, *, timeout: float | None = None, request_id: str | None = None,
                 **fields: Unpack[JuryFields]) -> Awaitable[pb.EvaluateResponse]:
        return self._unary(JURY["Evaluate"], pb.EvaluateRequest, fields, timeout, request_id)

    def evaluate_stream(self, *, timeout: float | None = None, request_id: str | None = None,
                        **fields: Unpack[JuryFields]) -> AsyncRunStream[pb.EvaluateStreamResponse]:
        """Events: one `juror_verdict` per juror as it answers, then `result`."""
        return self._stream(JURY["EvaluateStream"], "evaluate", pb.EvaluateRequest, fields, timeout, request_id,
                            AsyncRunStream)


class Jury(Facade[AsyncJury]):
    evaluate = blocking(AsyncJury.evaluate)
    evaluate_stream = wrapping(AsyncJury.evaluate_stream, RunStream[pb.EvaluateStreamResponse])
