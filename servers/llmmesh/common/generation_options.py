"""The shared `GenerationOptions` message, validated into Sampling: every service that takes
options from a caller (the inference service, each pattern) checks them the same way."""

from __future__ import annotations

from llmmesh.common.model_call import Sampling
from llmmesh.common.v1 import common_pb2
from llmmesh.framework.validation import Violations

# Server-side ceilings; requests may ask for less, never more.
MAX_OUTPUT_TOKENS = 8192
MAX_STOP = 16
MAX_CONTEXT = 262_144


def sampling(options: common_pb2.GenerationOptions, field: str, v: Violations) -> Sampling:
    o = options
    if o.HasField("temperature"):
        v.check(0.0 <= o.temperature <= 2.0, f"{field}.temperature", "must be between 0 and 2")
    if o.HasField("top_p"):
        v.check(0.0 < o.top_p <= 1.0, f"{field}.top_p", "must be in (0, 1]")
    if o.HasField("frequency_penalty"):
        v.check(-2.0 <= o.frequency_penalty <= 2.0, f"{field}.frequency_penalty", "must be between -2 and 2")
    if o.HasField("max_tokens"):
        v.check(1 <= o.max_tokens <= MAX_OUTPUT_TOKENS, f"{field}.max_tokens",
                f"must be between 1 and the server maximum {MAX_OUTPUT_TOKENS}")
    if o.HasField("num_ctx"):
        v.check(256 <= o.num_ctx <= MAX_CONTEXT, f"{field}.num_ctx", f"must be between 256 and {MAX_CONTEXT}")
    v.check(len(o.stop) <= MAX_STOP, f"{field}.stop", f"at most {MAX_STOP} stop sequences")
    for i, s in enumerate(o.stop):
        v.check(0 < len(s) <= 64, f"{field}.stop[{i}]", "must be 1 to 64 characters")
    return Sampling(
        temperature=o.temperature if o.HasField("temperature") else None,
        max_tokens=o.max_tokens if o.HasField("max_tokens") else None,
        seed=o.seed if o.HasField("seed") else None,
        stop=tuple(o.stop),
        num_ctx=o.num_ctx if o.HasField("num_ctx") else None,
        top_p=o.top_p if o.HasField("top_p") else None,
        frequency_penalty=o.frequency_penalty if o.HasField("frequency_penalty") else None,
    )
