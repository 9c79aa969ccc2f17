"""Judge protobuf ⇄ plain values, with every request field validated (paths like `rubric.anchors[1].score`).

The case and criterion helpers take plain values so the jury validates its requests with the
same rules.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from llmmesh.common.model_call import Sampling
from llmmesh.common.v1 import common_pb2
from llmmesh.framework.validation import Violations
from llmmesh.judge.case import Case
from llmmesh.judge.criteria import BUILTINS, DEFAULT_CRITERION, Anchor, Criterion
from llmmesh.judge.evaluation import Evaluation, JudgeEvent, Judgement, Mode, OrderVerdict, ReasoningDelta
from llmmesh.judge.v1 import judge_service_pb2 as pb
from llmmesh.patterns.options import pattern_sampling
from llmmesh.settings import PatternLimits

MAX_NAME_CHARS = 128
MAX_ANCHORS = 32
_MODES = {pb.JUDGE_MODE_UNSPECIFIED: Mode.POINTWISE, pb.JUDGE_MODE_POINTWISE: Mode.POINTWISE,
          pb.JUDGE_MODE_PAIRWISE: Mode.PAIRWISE}


# ---- shared with the jury --------------------------------------------------------------------

def case_of(question: str, answer: str, contexts: Sequence[str], ground_truth: str, v: Violations, *,
            max_chars: int, prefix: str = "") -> Case:
    v.text(question, f"{prefix}question", required=True, max_chars=max_chars)
    v.text(answer, f"{prefix}answer", required=True, max_chars=max_chars)
    v.text(ground_truth, f"{prefix}ground_truth", max_chars=max_chars)
    for i, text in enumerate(contexts):
        v.text(text, f"{prefix}contexts[{i}]", required=True, max_chars=max_chars)
    total = sum(len(t) for t in contexts)
    v.check(total <= max_chars, f"{prefix}contexts",
            f"are {total} characters in total; the limit is {max_chars}")
    return Case(question, answer, tuple(contexts), ground_truth)


def builtin_criterion(name: str, field: str, v: Violations, default: str = DEFAULT_CRITERION) -> Criterion:
    """The built-in criterion `name` (empty: `default`); an unknown name is a violation listing the valid ones."""
    criterion = BUILTINS.get(name or default)
    if criterion is None:
        v.add(field, f"unknown criterion {name!r}; valid: {', '.join(sorted(BUILTINS))}")
        return BUILTINS[DEFAULT_CRITERION]
    return criterion


def require_contexts(criterion: Criterion, case: Case, field: str, v: Violations, who: str = "") -> None:
    if criterion.requires_contexts and not case.contexts:
        v.add(field, f"criterion {criterion.name!r}{who} judges the answer against the contexts: give at least one")


def generation(options: common_pb2.GenerationOptions, field: str, limits: PatternLimits, v: Violations) -> Sampling:
    """Sampling within the limits; a judge samples greedily (temperature 0) unless told otherwise,
    so the same answer gets the same grade."""
    sampling = pattern_sampling(options, field, limits, v)
    if sampling.temperature is None:
        sampling = dataclasses.replace(sampling, temperature=0.0)
    return sampling


# ---- requests --------------------------------------------------------------------------------

def rubric_criterion(r: pb.Rubric, field: str, v: Violations, max_chars: int) -> Criterion:
    name = r.name.strip() or "custom"
    v.check(len(name) <= MAX_NAME_CHARS, f"{field}.name", f"at most {MAX_NAME_CHARS} characters")
    v.text(r.description, f"{field}.description", required=True, max_chars=max_chars)
    scale_ok = math.isfinite(r.min_score) and math.isfinite(r.max_score) and r.min_score < r.max_score
    v.check(scale_ok, f"{field}.max_score", "must be a finite number greater than min_score")
    v.check(len(r.anchors) <= MAX_ANCHORS, f"{field}.anchors", f"at most {MAX_ANCHORS} anchors")
    seen: dict[float, int] = {}
    for i, a in enumerate(r.anchors):
        path = f"{field}.anchors[{i}]"
        if scale_ok:
            v.check(r.min_score <= a.score <= r.max_score, f"{path}.score",
                    f"must be within the scale [{r.min_score:g}, {r.max_score:g}]")
        if a.score in seen:
            v.add(f"{path}.score", f"duplicates anchors[{seen[a.score]}].score")
        seen.setdefault(a.score, i)
        v.text(a.description, f"{path}.description", required=True, max_chars=max_chars)
    midpoint = (r.min_score + r.max_score) / 2
    threshold = r.pass_threshold if r.HasField("pass_threshold") else midpoint
    if scale_ok and r.HasField("pass_threshold"):
        v.check(r.min_score <= threshold <= r.max_score, f"{field}.pass_threshold",
                f"must be within the scale [{r.min_score:g}, {r.max_score:g}]")
    return Criterion(name, r.description, r.min_score, r.max_score if scale_ok else r.min_score + 1, threshold,
                     tuple(Anchor(a.score, a.description) for a in r.anchors))


def evaluation(req: pb.EvaluateRequest, limits: PatternLimits, prefix: str = "") -> Evaluation:
    """A validated Evaluation; InvalidArgument listing every bad field otherwise. `prefix` is the
    path of the request inside a stream message (`evaluate.`)."""
    v = Violations()
    case = case_of(req.question, req.answer, req.contexts, req.ground_truth, v, max_chars=limits.max_text_chars,
                   prefix=prefix)
    if req.HasField("rubric"):
        criterion = rubric_criterion(req.rubric, f"{prefix}rubric", v, limits.max_text_chars)
    else:
        criterion = builtin_criterion(req.judge_type, f"{prefix}judge_type", v)
        require_contexts(criterion, case, f"{prefix}contexts", v)
    mode = _MODES.get(req.mode)
    if mode is None:
        v.add(f"{prefix}mode", "must be JUDGE_MODE_POINTWISE or JUDGE_MODE_PAIRWISE")
        mode = Mode.POINTWISE
    if mode is Mode.PAIRWISE:
        v.text(req.answer_b, f"{prefix}answer_b", required=True, max_chars=limits.max_text_chars)
    else:
        v.check(not req.answer_b, f"{prefix}answer_b", "is only used with mode JUDGE_MODE_PAIRWISE")
    v.check(len(req.model) <= MAX_NAME_CHARS, f"{prefix}model", f"at most {MAX_NAME_CHARS} characters")
    sampling = generation(req.options, f"{prefix}options", limits, v)
    v.raise_if_any()
    case = dataclasses.replace(case, answer_b=req.answer_b)
    fields = case.fields(prefix)
    if req.HasField("rubric"):
        fields[f"{prefix}rubric.description"] = req.rubric.description
    return Evaluation(case, criterion, mode, req.model, sampling, limits.json_attempts, fields)


# ---- responses -------------------------------------------------------------------------------

def rubric(c: Criterion) -> pb.Rubric:
    return pb.Rubric(name=c.name, description=c.description, min_score=c.min_score, max_score=c.max_score,
                     anchors=[pb.ScoreAnchor(score=a.score, description=a.description) for a in c.anchors],
                     pass_threshold=c.pass_threshold)


def order(o: OrderVerdict) -> pb.PairwiseOrder:
    return pb.PairwiseOrder(order=o.order, winner=o.winner, reasoning=o.reasoning)


def response(j: Judgement, usage: common_pb2.Usage) -> pb.EvaluateResponse:
    out = pb.EvaluateResponse(score=j.score, verdict=j.verdict, judge=j.judge, reasoning=j.reasoning,
                              criterion=j.criterion.name, usage=usage)
    if j.pairwise is None:
        out.min_score, out.max_score = j.criterion.min_score, j.criterion.max_score
    else:
        out.min_score, out.max_score = 0.0, 1.0
        out.pairwise.CopyFrom(pb.PairwiseResult(orders=[order(o) for o in j.pairwise.orders],
                                                consistent=j.pairwise.consistent))
    return out


def stream_event(event: JudgeEvent, usage: common_pb2.Usage | None = None) -> pb.EvaluateStreamResponse:
    if isinstance(event, ReasoningDelta):
        return pb.EvaluateStreamResponse(reasoning=common_pb2.TokenDelta(text=event.text, source=event.source))
    if isinstance(event, OrderVerdict):
        return pb.EvaluateStreamResponse(order_verdict=order(event))
    return pb.EvaluateStreamResponse(result=response(event, usage or common_pb2.Usage()))
