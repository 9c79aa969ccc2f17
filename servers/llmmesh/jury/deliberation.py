"""A jury (PoLL, "Replacing Judges with Juries"): a panel of judges graded in parallel, aggregated.

Every juror is one pointwise grading by the judge's own logic (llmmesh.judge.evaluation.grade:
same prompts, schema and parsing), with its own model, criterion and prompt variant. All jurors
run at once, so the panel takes as long as its slowest juror. A juror's failure is recorded in
its verdict and never cancels the others; the jury decides once every juror has answered or
failed, provided at least `quorum` answered. A request without a panel gets `default_panel`.

Below quorum the run fails with UNAVAILABLE (ErrorInfo reason QUORUM_NOT_REACHED, each failed
juror's status summarised): jurors fail because their model calls failed (backends down or
overloaded, malformed output, deadlines), conditions a retry can clear. FAILED_PRECONDITION would
tell the client to change something first, which is not what happened.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

from google.protobuf import any_pb2

from llmmesh.common.model_call import Sampling
from llmmesh.framework.errors import MeshError, UpstreamError, error_info
from llmmesh.judge.case import Case
from llmmesh.judge.criteria import BUILTINS, Criterion
from llmmesh.judge.evaluation import FAIL, PASS, Judgement, grade, grading_messages
from llmmesh.jury.aggregation import Agreement, Method, Vote, aggregate, agreement
from llmmesh.patterns.fanout import fan_in
from llmmesh.patterns.model_client import ModelClient
from llmmesh.patterns.model_info import model_info

log = logging.getLogger("llmmesh.jury")


@dataclass(frozen=True)
class Juror:
    name: str
    # Empty: the inference service's default model.
    model: str
    criterion: Criterion
    # Prompt variant: extra instructions that make this juror look at the answer differently.
    instructions: str = ""
    weight: float = 1.0
    # Its path in the request ("panel[2]"); empty for a juror of the default panel.
    field: str = ""


@dataclass(frozen=True)
class Trial:
    """One validated jury request."""

    case: Case
    panel: tuple[Juror, ...]
    method: Method
    quorum: int
    sampling: Sampling
    attempts: int
    # The case's text by request path (Case.fields), to name the field that is too long for a
    # juror's context window. Empty: the case's own paths.
    fields: Mapping[str, str] = field(default_factory=dict)

    def caller_fields(self, juror: Juror) -> dict[str, str]:
        fields = dict(self.fields or self.case.fields())
        if juror.field and juror.instructions:
            fields[f"{juror.field}.instructions"] = juror.instructions
        return fields


# The panel of a request that names none: two jurors on the inference service's default model, one
# for the request's criterion and one for helpfulness (factual when the request's criterion is
# helpfulness). Two criteria rather than one criterion twice: on one model under greedy decoding,
# identical jurors would only repeat each other.
SECOND_OPINION, SECOND_OPINION_ALT = "helpfulness", "factual"


def default_panel(criterion: Criterion) -> tuple[Juror, ...]:
    second = BUILTINS[SECOND_OPINION if criterion.name != SECOND_OPINION else SECOND_OPINION_ALT]
    return tuple(Juror(c.name, "", c) for c in (criterion, second))


@dataclass(frozen=True)
class JurorVerdict:
    juror: Juror
    # The model that judged, as the inference service reports it (on failure, as it resolves the
    # requested one).
    model: str
    duration_ms: float
    score: float = 0.0
    normalised: float = 0.0
    verdict: str = ""
    reasoning: str = ""
    # Set when the juror failed; its vote is then not counted.
    error: Exception | None = None


@dataclass(frozen=True)
class JuryResult:
    score: float
    verdict: str
    method: Method
    # In panel order.
    verdicts: tuple[JurorVerdict, ...]
    agreement: Agreement
    failed: tuple[str, ...]
    quorum: int


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


async def _hear(client: ModelClient, trial: Trial, juror: Juror) -> AsyncIterator[JurorVerdict]:
    """Exactly one verdict for `juror`: its judgement, or its failure."""
    started = time.perf_counter()

    def elapsed_ms() -> float:
        return (time.perf_counter() - started) * 1000

    try:
        judgement: Judgement | None = None
        async for event in grade(client, juror.model, juror.criterion, trial.case, trial.sampling,
                                 attempts=trial.attempts, instructions=juror.instructions,
                                 fields=trial.caller_fields(juror)):
            if isinstance(event, Judgement):
                judgement = event
        assert judgement is not None  # grade ends with a Judgement or raises
    except Exception as exc:  # one juror's failure must not end the panel (cancellation still does)
        if not isinstance(exc, MeshError):
            log.error("juror %s failed unexpectedly", juror.name, exc_info=exc)
        yield JurorVerdict(juror, await _resolved(client, juror.model), elapsed_ms(), error=exc)
        return
    c = juror.criterion
    yield JurorVerdict(juror, judgement.judge, elapsed_ms(), judgement.score, c.normalise(judgement.score),
                       judgement.verdict, judgement.reasoning)


async def _resolved(client: ModelClient, model: str) -> str:
    """The name the inference service resolves `model` to ("" is its default model); `model`
    itself when the service cannot say."""
    try:
        return (await model_info(client, model)).name or model
    except Exception:  # the verdict reports a failure already; naming it must not fail too
        return model


async def deliberate(client: ModelClient, trial: Trial) -> AsyncIterator[JurorVerdict | JuryResult]:
    """Each juror's verdict as it arrives, then the JuryResult; QuorumNotReached below quorum.
    A juror's prompt too long for its model's window is the caller's error (INVALID_ARGUMENT naming
    the field), found before any juror runs, never a juror failure to count against the quorum."""
    for juror in trial.panel:
        await grading_messages(client, juror.model, juror.criterion, trial.case, trial.sampling,
                               instructions=juror.instructions, fields=trial.caller_fields(juror))
    arrived: dict[str, JurorVerdict] = {}
    async for verdict in fan_in(*(_hear(client, trial, j) for j in trial.panel)):
        arrived[verdict.juror.name] = verdict
        yield verdict
    verdicts = tuple(arrived[j.name] for j in trial.panel)
    answered = [v for v in verdicts if v.error is None]
    if len(answered) < trial.quorum:
        raise QuorumNotReached(trial.quorum, verdicts)
    votes = [Vote(v.normalised, v.juror.criterion.normalise(v.juror.criterion.pass_threshold), v.verdict == PASS,
                  v.juror.weight) for v in answered]
    score, passed = aggregate(votes, trial.method)
    yield JuryResult(score, PASS if passed else FAIL, trial.method, verdicts, agreement(votes),
                     tuple(v.juror.name for v in verdicts if v.error is not None), trial.quorum)


async def decide(client: ModelClient, trial: Trial) -> JuryResult:
    """The unary face: the same deliberation, only its result."""
    async for event in deliberate(client, trial):
        if isinstance(event, JuryResult):
            return event
    raise AssertionError("unreachable: a deliberation ends with a JuryResult or raises")
