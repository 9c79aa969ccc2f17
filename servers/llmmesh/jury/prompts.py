"""What a juror reads: the judge's pointwise prompt and schema for its criterion, with its own
instructions (the prompt variant that makes it look at the answer differently), so a juror's
grade means what the judge's would."""

from __future__ import annotations

from typing import Any

from llmmesh.common.model_call import ChatMessage
from llmmesh.judge import prompts as judge_prompts
from llmmesh.judge.request import Case
from llmmesh.jury.request import Juror


def juror_messages(juror: Juror, case: Case) -> list[ChatMessage]:
    return judge_prompts.pointwise_messages(juror.criterion, case, juror.instructions)


def juror_schema(juror: Juror) -> dict[str, Any]:
    return judge_prompts.pointwise_schema(juror.criterion)
