"""A jury request as plain values, built from the proto with every field validated (paths like
`panel[2].weight`). The case, criteria and sampling follow the judge's own rules
(llmmesh.judge.request)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from llmmesh.common.model_call import MAX_MODEL_NAME, Sampling
from llmmesh.framework.validation import Violations
from llmmesh.judge.criteria import BUILTINS, Criterion
from llmmesh.judge.request import MAX_NAME_CHARS, Case, builtin_criterion, case_of, generation, require_contexts
from llmmesh.jury.aggregation import Method
from llmmesh.jury.v1 import jury_service_pb2 as pb
from llmmesh.patterns.service import Intake

_METHODS = {pb.AGGREGATION_UNSPECIFIED: Method.MEAN, pb.AGGREGATION_MEAN: Method.MEAN,
            pb.AGGREGATION_MEDIAN: Method.MEDIAN, pb.AGGREGATION_MAJORITY_VOTE: Method.MAJORITY_VOTE,
            pb.AGGREGATION_WEIGHTED_MEAN: Method.WEIGHTED_MEAN}
# Request fields a preset fills when the request leaves them empty (→ the preset's attribute).
PRESET_FIELDS = {"panel": "panel"}


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
class JuryRequest:
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


def _unique(base: str, taken: set[str]) -> str:
    """`base`, or `base#2`, `base#3`… whichever is free."""
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}#{n}"
    return name


async def from_proto(msg: pb.EvaluateRequest, intake: Intake) -> JuryRequest:
    limits, prefix = intake.limits, intake.prefix
    v = Violations()
    msg = intake.presets.resolve(msg.preset, f"{prefix}preset", v).fill(msg, PRESET_FIELDS)
    case = case_of(msg.question, msg.answer, msg.contexts, msg.ground_truth, v, max_chars=limits.max_text_chars,
                   prefix=prefix)
    default = builtin_criterion(msg.judge_type, f"{prefix}judge_type", v)
    v.check(len(msg.panel) <= limits.max_panel, f"{prefix}panel",
            f"has at most the server maximum {limits.max_panel} jurors; got {len(msg.panel)}")
    explicit: dict[str, int] = {}
    for i, j in enumerate(msg.panel):
        if j.name in explicit:
            v.add(f"{prefix}panel[{i}].name", f"duplicates panel[{explicit[j.name]}].name {j.name!r}")
        elif j.name:
            explicit[j.name] = i
    taken = set(explicit)
    panel = []
    for i, j in enumerate(msg.panel):
        path = f"{prefix}panel[{i}]"
        v.text(j.name, f"{path}.name", max_chars=MAX_NAME_CHARS)
        v.text(j.model, f"{path}.model", max_chars=MAX_MODEL_NAME)
        criterion = builtin_criterion(j.criterion, f"{path}.criterion", v, default=default.name)
        require_contexts(criterion, case, f"{prefix}contexts", v, who=f" of {path}")
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
        require_contexts(default, case, f"{prefix}contexts", v)  # the other juror needs none
    n = len(panel)
    method = _METHODS.get(msg.aggregation)
    if method is None:
        valid = ", ".join(pb.Aggregation.Name(a) for a in _METHODS if a != pb.AGGREGATION_UNSPECIFIED)
        v.add(f"{prefix}aggregation", f"must be one of {valid}")
        method = Method.MEAN
    quorum = n // 2 + 1  # a strict majority of the panel
    if msg.HasField("quorum"):
        v.check(1 <= msg.quorum <= max(n, 1), f"{prefix}quorum", f"must be between 1 and the panel size {n}")
        quorum = msg.quorum
    sampling = generation(msg.options, f"{prefix}options", limits, v)
    v.raise_if_any()
    return JuryRequest(case, tuple(panel), method, quorum, sampling, limits.json_attempts, case.fields(prefix))
