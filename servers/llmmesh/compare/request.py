"""A comparison request as plain values, built from the proto with every field validated (paths like
`models[2]`, `messages[0].content`). Criteria and rubrics follow the judge's rules; the jury's panel
is one juror per judge and criterion."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from llmmesh.common.inference_messages import ROLES
from llmmesh.common.model_call import MAX_MODEL_NAME, ChatMessage, Sampling
from llmmesh.compare import prompts
from llmmesh.compare.v1 import compare_service_pb2 as pb
from llmmesh.framework.validation import Violations
from llmmesh.judge.criteria import Criterion
from llmmesh.judge.request import builtin_criterion, rubric_criterion
from llmmesh.jury.request import Juror
from llmmesh.patterns.options import pattern_sampling
from llmmesh.patterns.service import Intake

# Criteria of a request that names none: helpfulness, and correctness against a reference.
DEFAULT_CRITERIA = ("helpfulness",)
WITH_REFERENCE = "factual"
_CHAT_ROLES = ("system", "user", "assistant")
# Request fields a preset fills when the request leaves them empty (→ the preset's attribute).
PRESET_FIELDS = {"models": "models", "criteria": "criteria", "judges": "judges"}


@dataclass(frozen=True)
class CompareRequest:
    # What every model is sent (the system prompt, then the prompt or conversation).
    messages: tuple[ChatMessage, ...]
    # What the judges are told each answer answers.
    question: str
    models: tuple[str, ...]
    # The rubric first when there is one, then the built-in criteria.
    criteria: tuple[Criterion, ...]
    # One juror per judge model ("" is the server's default) and criterion.
    panel: tuple[Juror, ...]
    reference: str
    pairwise: bool
    # The answers' sampling, and the judges' (greedy unless the caller set a temperature).
    sampling: Sampling
    judge_sampling: Sampling
    attempts: int
    # The caller's text by request path, to name the field too long for a model's window.
    fields: Mapping[str, str]

    @property
    def judge(self) -> str:
        """The model that compares pairs: the first judge."""
        return self.panel[0].model


def _unique(names: Sequence[str], field: str, v: Violations, *, max_chars: int) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        v.text(name, f"{field}[{i}]", required=True, max_chars=max_chars)
        if name in seen:
            v.add(f"{field}[{i}]", f"duplicates {field.rpartition('.')[2]}[{seen[name]}] {name!r}")
        seen.setdefault(name, i)


def _conversation(msg: pb.RunRequest, prefix: str, v: Violations, max_chars: int) -> list[ChatMessage]:
    if not msg.messages:
        v.text(msg.prompt, f"{prefix}prompt", required=True, max_chars=max_chars)
        return [ChatMessage("user", msg.prompt)]
    v.check(not msg.prompt, f"{prefix}prompt", "give a prompt or messages, not both")
    out = []
    for i, m in enumerate(msg.messages):
        role = ROLES.get(m.role, "")
        v.check(role in _CHAT_ROLES, f"{prefix}messages[{i}].role", "must be ROLE_SYSTEM, ROLE_USER or ROLE_ASSISTANT")
        v.text(m.content, f"{prefix}messages[{i}].content", required=True, max_chars=max_chars)
        out.append(ChatMessage(role or "user", m.content))
    v.check(out[-1].role == "user", f"{prefix}messages[{len(out) - 1}].role",
            "must be ROLE_USER: the models answer the conversation's last message")
    return out


def _criteria(msg: pb.RunRequest, prefix: str, v: Violations, max_chars: int) -> list[Criterion]:
    out = []
    if msg.HasField("rubric"):
        out.append(rubric_criterion(msg.rubric, f"{prefix}rubric", v, max_chars))
    names = list(msg.criteria)
    if not names and not out:
        names = [*DEFAULT_CRITERIA, *([WITH_REFERENCE] if msg.reference else [])]
    _unique(msg.criteria, f"{prefix}criteria", v, max_chars=64)
    for i, name in enumerate(names):
        field = f"{prefix}criteria[{i}]"
        if not name:
            continue  # "is required", said by _unique
        criterion = builtin_criterion(name, field, v)
        v.check(not criterion.requires_contexts, field,
                f"criterion {name!r} judges answers against contexts, which a comparison does not take")
        v.check(not msg.HasField("rubric") or out[0].name != criterion.name, field,
                f"has the rubric's name {criterion.name!r}")
        out.append(criterion)
    return out


async def from_proto(msg: pb.RunRequest, intake: Intake) -> CompareRequest:
    limits, prefix = intake.limits, intake.prefix
    max_chars = limits.max_text_chars
    v = Violations()
    msg = intake.presets.resolve(msg.preset, f"{prefix}preset", v).fill(msg, PRESET_FIELDS)
    conversation = _conversation(msg, prefix, v, max_chars)
    v.text(msg.system, f"{prefix}system", max_chars=max_chars)
    v.text(msg.reference, f"{prefix}reference", max_chars=max_chars)
    models = list(msg.models)
    v.check(len(models) >= 2, f"{prefix}models", f"name at least two models to compare; got {len(models)}")
    v.check(len(models) <= limits.max_models, f"{prefix}models",
            f"has at most the server maximum {limits.max_models} models; got {len(models)}")
    _unique(models, f"{prefix}models", v, max_chars=MAX_MODEL_NAME)
    criteria = _criteria(msg, prefix, v, max_chars)
    _unique(msg.judges, f"{prefix}judges", v, max_chars=MAX_MODEL_NAME)
    judges = list(msg.judges) or [""]
    jurors = len(judges) * len(criteria)
    v.check(jurors <= limits.max_panel, f"{prefix}judges",
            f"{len(judges)} judges times {len(criteria)} criteria is {jurors} jurors per answer; "
            f"the server maximum is {limits.max_panel}")
    sampling = pattern_sampling(msg.options, f"{prefix}options", limits, v)
    v.raise_if_any()
    panel = tuple(Juror(f"{judge or 'default'}/{c.name}", judge, c) for judge in judges for c in criteria)
    fields = {f"{prefix}prompt": msg.prompt} if not msg.messages else {
        f"{prefix}messages[{i}].content": m.content for i, m in enumerate(msg.messages)}
    if msg.reference:
        fields[f"{prefix}reference"] = msg.reference
    # Judges grade greedily so the same answer gets the same grade, each step with its own budget.
    judge_sampling = dataclasses.replace(sampling, max_tokens=None, frequency_penalty=None,
                                         temperature=0.0 if sampling.temperature is None else sampling.temperature)
    return CompareRequest(
        messages=tuple(prompts.answer_messages(msg.system, conversation)), question=prompts.question(conversation),
        models=tuple(models), criteria=tuple(criteria), panel=panel, reference=msg.reference,
        pairwise=msg.pairwise, sampling=sampling, judge_sampling=judge_sampling, attempts=limits.json_attempts,
        fields=fields)
