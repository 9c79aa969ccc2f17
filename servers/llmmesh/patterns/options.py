"""A pattern request's GenerationOptions → Sampling, within the server's pattern limits.

Same checks as the inference service, except that `max_tokens` is bounded by
`limits.max_output_tokens` (a caller may lower it, never raise it) and defaults to that maximum,
so no model call of a pattern run is unbounded.
"""

from __future__ import annotations

import dataclasses

from llmmesh.common.v1 import common_pb2
from llmmesh.framework.validation import Violations
from llmmesh.inference import convert
from llmmesh.inference.model_call import Sampling
from llmmesh.patterns.limits import bounded
from llmmesh.settings import PatternLimits


def pattern_sampling(options: common_pb2.GenerationOptions, field: str, limits: PatternLimits,
                     v: Violations) -> Sampling:
    rest = common_pb2.GenerationOptions()
    rest.CopyFrom(options)
    rest.ClearField("max_tokens")  # checked here against the pattern limit, not the inference one
    sampling = convert.sampling(rest, field, v)
    requested = options.max_tokens if options.HasField("max_tokens") else None
    max_tokens = bounded(requested, f"{field}.max_tokens", default=limits.max_output_tokens,
                         maximum=limits.max_output_tokens, v=v)
    return dataclasses.replace(sampling, max_tokens=max_tokens)
