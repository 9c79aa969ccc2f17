"""CompareService: one prompt to several models at once, their answers scored and ranked."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, TypedDict, Unpack

from llmmesh_client._proto.llmmesh.compare.v1 import compare_service_pb2 as pb
from llmmesh_client._proto.llmmesh.judge.v1 import judge_service_pb2 as judge_pb
from llmmesh_client.blocking import Facade, blocking, wrapping
from llmmesh_client.methods import COMPARE
from llmmesh_client.services.pattern import Options, PatternService
from llmmesh_client.sessions import AsyncRunStream, MessageLike, RunStream


class CompareFields(TypedDict, total=False):
    # The prompt, or `messages`: a conversation every model continues (one of the two).
    prompt: str
    messages: Sequence[MessageLike]
    system: str
    # Two or more models or aliases.
    models: Sequence[str]
    # Built-in criteria (default: helpfulness, and factual with a reference).
    criteria: Sequence[str]
    rubric: judge_pb.Rubric | Mapping[str, Any]
    reference: str
    # The jury's models (default: the server's default model).
    judges: Sequence[str]
    # Also compare every pair of answers, in both orders, and count wins.
    pairwise: bool
    options: Options
    # A named analysis preset of the server's: fills models, criteria and judges left empty.
    preset: str
    store: bool


class AsyncCompare(PatternService):
    def run(self, *, timeout: float | None = None, request_id: str | None = None,
            **fields: Unpack[CompareFields]) -> Awaitable[pb.RunResponse]:
        return self._unary(COMPARE["Run"], pb.RunRequest, fields, timeout, request_id)

    def run_stream(self, *, timeout: float | None = None, request_id: str | None = None,
                   **fields: Unpack[CompareFields]) -> AsyncRunStream[pb.RunStreamResponse]:
        """Events: `delta` (its `source` is the model), `answer` per model, `verdict` per juror and
        answer, `score` per model, `comparison` per pair, then `result`."""
        return self._stream(COMPARE["RunStream"], "run", pb.RunRequest, fields, timeout, request_id, AsyncRunStream)


class Compare(Facade[AsyncCompare]):
    run = blocking(AsyncCompare.run)
    run_stream = wrapping(AsyncCompare.run_stream, RunStream[pb.RunStreamResponse])
