"""A pattern request's GenerationOptions → Sampling, within the server's pattern limits, and the
sampling of each step of a run.

Same checks as the inference service, except that `max_tokens` is bounded by
`limits.max_output_tokens` (a caller may lower it, never raise it). When the caller sets no
`max_tokens`, each step uses a budget that fits what it writes (`step_sampling`; structured steps
derive theirs from their schema), so no model call of a pattern run is unbounded and none is
given more room than its output needs.
"""

from __future__ import annotations

import dataclasses

from llmmesh.common import generation_options
from llmmesh.common.model_call import Sampling
from llmmesh.common.v1 import common_pb2
from llmmesh.framework.validation import Violations
from llmmesh.patterns.limits import bounded
from llmmesh.settings import PatternLimits

# Free text from small models loops under greedy decoding; a mild frequency penalty breaks most
# loops without bending the wording (the loop guard in `repetition` catches the rest).
FREE_TEXT_FREQUENCY_PENALTY = 0.3


def pattern_sampling(options: common_pb2.GenerationOptions, field: str, limits: PatternLimits,
                     v: Violations) -> Sampling:
    rest = common_pb2.GenerationOptions()
    rest.CopyFrom(options)
    rest.ClearField("max_tokens")  # checked here against the pattern limit, not the inference one
    sampling = generation_options.sampling(rest, field, v)
    if not options.HasField("max_tokens"):
        return sampling  # each step fills in its own budget
    max_tokens = bounded(options.max_tokens, f"{field}.max_tokens", default=limits.max_output_tokens,
                         maximum=limits.max_output_tokens, v=v)
    return dataclasses.replace(sampling, max_tokens=max_tokens)


def step_sampling(sampling: Sampling, budget: int, *, free_text: bool = False) -> Sampling:
    """The sampling of one step: the caller's max_tokens if set, else the step's `budget`; free
    text also gets the anti-repetition default unless the caller chose a penalty."""
    s = sampling if sampling.max_tokens is not None else dataclasses.replace(sampling, max_tokens=budget)
    if free_text and s.frequency_penalty is None:
        s = dataclasses.replace(s, frequency_penalty=FREE_TEXT_FREQUENCY_PENALTY)
    return s
