"""A judge request as plain values, built from the proto with every field validated (paths like
`rubric.anchors[1].score`).

The case, criterion and sampling helpers take plain values so the jury validates its requests with
the same rules.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from llmmesh.common.model_call import MAX_MODEL_NAME, Sampling
from llmmesh.common.v1 import common_pb2
from llmmesh.framework.validation import Violations
from llmmesh.judge.criteria import BUILTINS, DEFAULT_CRITERION, Anchor, Criterion
from llmmesh.judge.v1 import judge_service_pb2 as pb
from llmmesh.patterns.options import pattern_sampling
from llmmesh.patterns.service import Intake
from llmmesh.settings import PatternLimits

# The longest name a caller may give a rubric or a juror.
MAX_NAME_CHARS = 128
MAX_ANCHORS = 32


class Mode(Enum):
    POINTWISE = "pointwise"
    PAIRWISE = "pairwise"


_MODES = {pb.JUDGE_MODE_UNSPECIFIED: Mode.POINTWISE, pb.JUDGE_MODE_POINTWISE: Mode.POINTWISE,
          pb.JUDGE_MODE_PAIRWISE: Mode.PAIRWISE}


@dataclass(frozen=True)
class Case:
    """The material a judge evaluates."""

    question: str
    answer: str
    contexts: tuple[str, ...] = ()
    # Reference answer; empty when none was given.
    ground_truth: str = ""
    # The second answer of a pairwise comparison.
    answer_b: str = ""

    def fields(self, prefix: str = "") -> dict[str, str]:
        """The caller's text by request path, so an error can name the field that is too long."""
        named = {"question": self.question, "answer": self.answer, "answer_b": self.answer_b,
                 "ground_truth": self.ground_truth, **{f"contexts[{i}]": t for i, t in enumerate(self.contexts)}}
        return {f"{prefix}{path}": text for path, text in named.items() if text}


@dataclass(frozen=True)
class JudgeRequest:
    case: Case
    criterion: Criterion
    mode: Mode
    # Empty: the inference service's default model.
    model: str
    sampling: Sampling
    # Structured-output attempts before a malformed answer becomes an error.
    attempts: int
    # The caller's text in the prompts by request path (Case.fields, rubric), to name the field
    # that is too long when a prompt does not fit the judge's context window. Empty: the case's.
    fields: Mapping[str, str] = field(default_factory=dict)

    def caller_fields(self) -> Mapping[str, str]:
        return self.fields or self.case.fields()


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


# ---- the judge's own ---------------------------------------------------------------------------

def rubric_criterion(r: pb.Rubric, field: str, v: Violations, max_chars: int) -> Criterion:
    name = r.name.strip() or "custom"
    v.text(name, f"{field}.name", max_chars=MAX_NAME_CHARS)
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


async def from_proto(msg: pb.EvaluateRequest, intake: Intake) -> JudgeRequest:
    limits, prefix = intake.limits, intake.prefix
    v = Violations()
    case = case_of(msg.question, msg.answer, msg.contexts, msg.ground_truth, v, max_chars=limits.max_text_chars,
                   prefix=prefix)
    if msg.HasField("rubric"):
        criterion = rubric_criterion(msg.rubric, f"{prefix}rubric", v, limits.max_text_chars)
    else:
        criterion = builtin_criterion(msg.judge_type, f"{prefix}judge_type", v)
        require_contexts(criterion, case, f"{prefix}contexts", v)
    mode = _MODES.get(msg.mode)
    if mode is None:
        v.add(f"{prefix}mode", "must be JUDGE_MODE_POINTWISE or JUDGE_MODE_PAIRWISE")
        mode = Mode.POINTWISE
    if mode is Mode.PAIRWISE:
        v.text(msg.answer_b, f"{prefix}answer_b", required=True, max_chars=limits.max_text_chars)
    else:
        v.check(not msg.answer_b, f"{prefix}answer_b", "is only used with mode JUDGE_MODE_PAIRWISE")
    v.text(msg.model, f"{prefix}model", max_chars=MAX_MODEL_NAME)
    sampling = generation(msg.options, f"{prefix}options", limits, v)
    v.raise_if_any()
    case = dataclasses.replace(case, answer_b=msg.answer_b)
    fields = case.fields(prefix)
    if msg.HasField("rubric"):
        fields[f"{prefix}rubric.description"] = msg.rubric.description
    return JudgeRequest(case, criterion, mode, msg.model, sampling, limits.json_attempts, fields)
