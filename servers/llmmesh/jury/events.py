"""What a jury run reports: each juror's verdict as it arrives, then the panel's result."""

from __future__ import annotations

from dataclasses import dataclass

from llmmesh.judge.events import Verdict
from llmmesh.jury.aggregation import Agreement, Method
from llmmesh.jury.request import Juror
from llmmesh.patterns.model_client import UsageMeter


@dataclass(frozen=True)
class JurorVerdict:
    juror: Juror
    # The model that judged, as the inference service reports it (on failure, as it resolves the
    # requested one).
    model: str
    duration_ms: float
    score: float = 0.0
    normalised: float = 0.0
    # PASS or FAIL; None when the juror failed.
    verdict: Verdict | None = None
    reasoning: str = ""
    # Set when the juror failed; its vote is then not counted.
    error: Exception | None = None


@dataclass(frozen=True)
class JuryResult:
    score: float
    # PASS or FAIL.
    verdict: Verdict
    method: Method
    # In panel order.
    verdicts: tuple[JurorVerdict, ...]
    agreement: Agreement
    failed: tuple[str, ...]
    quorum: int
    usage: UsageMeter


JuryEvent = JurorVerdict | JuryResult
