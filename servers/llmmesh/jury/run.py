"""A jury (PoLL, "Replacing Judges with Juries"): a panel of judges graded in parallel, aggregated.

Every juror is one pointwise grading by the judge's own logic (llmmesh.judge.run.grade: same
schema and parsing), with its own model, criterion and prompt variant. All jurors run at once, so
the panel takes as long as its slowest juror. A juror's failure is recorded in its verdict and
never cancels the others; the jury decides once every juror has answered or failed, provided at
least `quorum` answered. A request without a panel gets `default_panel`.

Below quorum the run fails with UNAVAILABLE (ErrorInfo reason QUORUM_NOT_REACHED, each failed
juror's status summarised): jurors fail because their model calls failed (backends down or
overloaded, malformed output, deadlines), conditions a retry can clear. FAILED_PRECONDITION would
tell the client to change something first, which is not what happened.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

from google.protobuf import any_pb2

from llmmesh.common.model_call import ChatMessage
from llmmesh.framework import tracing
from llmmesh.framework.errors import MeshError, UpstreamError, error_info
from llmmesh.judge.events import Grade, Verdict
from llmmesh.judge.run import fitted, grade
from llmmesh.jury import prompts
from llmmesh.jury.aggregation import Vote, aggregate, agreement
from llmmesh.jury.events import JurorVerdict, JuryEvent, JuryResult
from llmmesh.jury.request import Juror, JuryRequest
from llmmesh.patterns.fanout import fan_in
from llmmesh.patterns.model_client import ModelClient, metered
from llmmesh.patterns.model_info import model_info

log = logging.getLogger("llmmesh.jury")


class QuorumNotReached(UpstreamError):
    def __init__(self, quorum: int, verdicts: tuple[JurorVerdict, ...]) -> None:
        failed = [v for v in verdicts if v.error is not None]
        answered = len(verdicts) - len(failed)
        causes = "; ".join(f"{v.juror.name}: {_describe(v.error)}" for v in failed)
        super().__init__(f"only {answered} of {len(verdicts)} jurors answered, the quorum is {quorum}; "
                         f"failed: {causes}")
        self.metadata = {"quorum": str(quorum), "answered": str(answered), "panel": str(len(verdicts)),
                         "failed_jurors": ",".join(v.juror.name for v in failed)}

    def details(self) -> list[any_pb2.Any]:
        return [error_info("QUORUM_NOT_REACHED", self.metadata)]


def _describe(error: Exception | None) -> str:
    if isinstance(error, MeshError):
        return f"{error.code.name}: {error.message}"
    return "internal error"


async def run(client: ModelClient, req: JuryRequest) -> AsyncIterator[JuryEvent]:
    """Each juror's verdict as it arrives, then the JuryResult; QuorumNotReached below quorum.
    A juror's prompt too long for its model's window is the caller's error (INVALID_ARGUMENT naming
    the field), found before any juror runs, never a juror failure to count against the quorum."""
    with metered() as meter:
        messages = {j.name: await fitted(client, j.model, req.sampling, prompts.juror_schema(j),
                                         prompts.juror_messages(j, req.case), req.caller_fields(j))
                    for j in req.panel}
        arrived: dict[str, JurorVerdict] = {}
        async for verdict in fan_in(*(_hear(client, req, j, messages[j.name]) for j in req.panel)):
            arrived[verdict.juror.name] = verdict
            yield verdict
        verdicts = tuple(arrived[j.name] for j in req.panel)
        answered = [v for v in verdicts if v.error is None]
        if len(answered) < req.quorum:
            raise QuorumNotReached(req.quorum, verdicts)
        votes = [Vote(v.normalised, v.juror.criterion.normalise(v.juror.criterion.pass_threshold),
                      v.verdict is Verdict.PASS, v.juror.weight) for v in answered]
        score, passed = aggregate(votes, req.method)
        yield JuryResult(score, Verdict.PASS if passed else Verdict.FAIL, req.method, verdicts, agreement(votes),
                         tuple(v.juror.name for v in verdicts if v.error is not None), req.quorum, meter)


async def _hear(client: ModelClient, req: JuryRequest, juror: Juror,
                messages: list[ChatMessage]) -> AsyncIterator[JurorVerdict]:
    """Exactly one verdict for `juror`: its grade, or its failure."""
    started = time.perf_counter()

    def elapsed_ms() -> float:
        return (time.perf_counter() - started) * 1000

    # The juror's model calls run under its span (each juror is its own fan-in task).
    attributes = {"llmmesh.juror.name": juror.name, "llmmesh.juror.model": juror.model,
                  "llmmesh.juror.criterion": juror.criterion.name, "llmmesh.juror.weight": juror.weight}
    with tracing.span(f"juror {juror.name}", attributes) as span:
        try:
            graded: Grade | None = None
            async for event in grade(client, juror.model, juror.criterion, messages, req.sampling,
                                     attempts=req.attempts):
                if isinstance(event, Grade):
                    graded = event
            assert graded is not None  # grade ends with a Grade or raises
        except Exception as exc:  # one juror's failure must not end the panel (cancellation still does)
            if not isinstance(exc, MeshError):
                log.error("juror %s failed unexpectedly", juror.name, exc_info=exc)
            tracing.fail(span, exc)
            verdict = JurorVerdict(juror, await _resolved(client, juror.model), elapsed_ms(), error=exc)
        else:
            verdict = JurorVerdict(juror, graded.judge, elapsed_ms(), graded.score,
                                   juror.criterion.normalise(graded.score), graded.verdict, graded.reasoning)
            tracing.set_attributes(span, {"llmmesh.juror.score": graded.score,
                                          "llmmesh.juror.verdict": graded.verdict.value})
    yield verdict


async def _resolved(client: ModelClient, model: str) -> str:
    """The name the inference service resolves `model` to ("" is its default model); `model`
    itself when the service cannot say."""
    try:
        return (await model_info(client, model)).name or model
    except Exception:  # the verdict reports a failure already; naming it must not fail too
        return model
