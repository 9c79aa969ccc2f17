"""Jury protobuf ⇄ plain values, with every request field validated (paths like `panel[2].weight`).

The case, criteria and sampling are validated by the judge's own rules (llmmesh.judge.convert).
"""

from __future__ import annotations

import math

from google.rpc import status_pb2

from llmmesh.common.v1 import common_pb2
from llmmesh.framework.errors import to_status
from llmmesh.framework.request_context import request_id
from llmmesh.framework.validation import Violations
from llmmesh.judge import convert as judge_convert
from llmmesh.jury.aggregation import Method
from llmmesh.jury.deliberation import Juror, JurorVerdict, JuryResult, Trial, default_panel
from llmmesh.jury.v1 import jury_service_pb2 as pb
from llmmesh.settings import PatternLimits

_METHODS = {pb.AGGREGATION_UNSPECIFIED: Method.MEAN, pb.AGGREGATION_MEAN: Method.MEAN,
            pb.AGGREGATION_MEDIAN: Method.MEDIAN, pb.AGGREGATION_MAJORITY_VOTE: Method.MAJORITY_VOTE,
            pb.AGGREGATION_WEIGHTED_MEAN: Method.WEIGHTED_MEAN}
_AGGREGATIONS = {m: a for a, m in _METHODS.items() if a != pb.AGGREGATION_UNSPECIFIED}


def _unique(base: str, taken: set[str]) -> str:
    """`base`, or `base#2`, `base#3`… whichever is free."""
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}#{n}"
    return name


def trial(req: pb.EvaluateRequest, limits: PatternLimits, prefix: str = "") -> Trial:
    """A validated Trial; InvalidArgument listing every bad field otherwise. `prefix` is the path
    of the request inside a stream message (`evaluate.`)."""
    v = Violations()
    case = judge_convert.case_of(req.question, req.answer, req.contexts, req.ground_truth, v,
                                 max_chars=limits.max_text_chars, prefix=prefix)
    default = judge_convert.builtin_criterion(req.judge_type, f"{prefix}judge_type", v)
    v.check(len(req.panel) <= limits.max_panel, f"{prefix}panel",
            f"has at most the server maximum {limits.max_panel} jurors; got {len(req.panel)}")
    explicit: dict[str, int] = {}
    for i, j in enumerate(req.panel):
        if j.name in explicit:
            v.add(f"{prefix}panel[{i}].name", f"duplicates panel[{explicit[j.name]}].name {j.name!r}")
        elif j.name:
            explicit[j.name] = i
    taken = set(explicit)
    panel = []
    for i, j in enumerate(req.panel):
        path = f"{prefix}panel[{i}]"
        v.check(len(j.name) <= judge_convert.MAX_NAME_CHARS, f"{path}.name",
                f"at most {judge_convert.MAX_NAME_CHARS} characters")
        v.check(len(j.model) <= judge_convert.MAX_NAME_CHARS, f"{path}.model",
                f"at most {judge_convert.MAX_NAME_CHARS} characters")
        criterion = judge_convert.builtin_criterion(j.criterion, f"{path}.criterion", v, default=default.name)
        judge_convert.require_contexts(criterion, case, f"{prefix}contexts", v, who=f" of {path}")
        v.text(j.instructions, f"{path}.instructions", max_chars=limits.max_text_chars)
        weight = j.weight if j.HasField("weight") else 1.0
        v.check(math.isfinite(weight) and weight > 0, f"{path}.weight", "must be a finite number greater than 0")
        name = j.name
        if not name:  # defaults never clash with an explicit name or with each other
            name = _unique(f"{j.model or 'default'}/{criterion.name}", taken)
            taken.add(name)
        panel.append(Juror(name, j.model, criterion, j.instructions, weight, path))
    if not panel:
        panel.extend(default_panel(default))
        judge_convert.require_contexts(default, case, f"{prefix}contexts", v)  # the other juror needs none
    n = len(panel)
    method = _METHODS.get(req.aggregation)
    if method is None:
        valid = ", ".join(pb.Aggregation.Name(a) for a in _AGGREGATIONS.values())
        v.add(f"{prefix}aggregation", f"must be one of {valid}")
        method = Method.MEAN
    quorum = n // 2 + 1  # a strict majority of the panel
    if req.HasField("quorum"):
        v.check(1 <= req.quorum <= max(n, 1), f"{prefix}quorum", f"must be between 1 and the panel size {n}")
        quorum = req.quorum
    sampling = judge_convert.generation(req.options, f"{prefix}options", limits, v)
    v.raise_if_any()
    return Trial(case, tuple(panel), method, quorum, sampling, limits.json_attempts, case.fields(prefix))


def _status(error: Exception | None) -> status_pb2.Status | None:
    return None if error is None else to_status(error, request_id.get())


def verdict(jv: JurorVerdict) -> pb.JurorVerdict:
    out = pb.JurorVerdict(juror=jv.juror.name, model=jv.model, criterion=jv.juror.criterion.name,
                          duration_ms=jv.duration_ms)
    status = _status(jv.error)
    if status is None:
        out.score, out.normalized_score, out.verdict, out.reasoning = (jv.score, jv.normalised, jv.verdict,
                                                                       jv.reasoning)
    else:
        out.error.CopyFrom(status)
    return out


def response(r: JuryResult, usage: common_pb2.Usage) -> pb.EvaluateResponse:
    a = r.agreement
    return pb.EvaluateResponse(
        score=r.score, verdict=r.verdict, aggregation=_AGGREGATIONS[r.method],
        verdicts=[verdict(jv) for jv in r.verdicts],
        agreement=pb.Agreement(spread=a.spread, min_score=a.min_score, max_score=a.max_score,
                               verdict_agreement=a.verdict_agreement, pairwise_agreement=a.pairwise_agreement),
        failed_jurors=list(r.failed), quorum=r.quorum, usage=usage)
