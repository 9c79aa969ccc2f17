"""A tool-use request as plain values, built from the proto with every field validated (paths like
`tools[1]`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum

from llmmesh.common.model_call import MAX_MODEL_NAME, Sampling
from llmmesh.framework.validation import Violations
from llmmesh.patterns.limits import bounded
from llmmesh.patterns.options import pattern_sampling, step_sampling
from llmmesh.patterns.service import Intake
from llmmesh.tools.registry import ToolSet
from llmmesh.tooluse.v1 import tooluse_service_pb2 as pb

# A tool call wants the model's likeliest reading of the question (numbers and names copied
# faithfully), not a sample at the backend's default temperature (0.8 for llama.cpp and Ollama):
# greedy unless the caller chose a temperature. A repair still varies it (patterns.structured).
TOOL_TEMPERATURE = 0.0


class ToolChoice(StrEnum):
    DEFAULT = "default"  # REQUIRED for prompted calls, AUTO for native ones
    AUTO = "auto"
    REQUIRED = "required"  # the first turn calls a tool (prompted calls only)


_CHOICE = {pb.TOOL_CHOICE_UNSPECIFIED: ToolChoice.DEFAULT, pb.TOOL_CHOICE_AUTO: ToolChoice.AUTO,
           pb.TOOL_CHOICE_REQUIRED: ToolChoice.REQUIRED}


@dataclass(frozen=True)
class ToolUseRequest:
    prompt: str
    system: str  # replaces prompts.DEFAULT_SYSTEM when given
    model: str  # empty: the inference service's default model
    tools: ToolSet
    max_steps: int
    sampling: Sampling
    tool_choice: ToolChoice = ToolChoice.DEFAULT
    field_prefix: str = ""  # of the request's fields in errors ("execute." on the stream)

    def step_sampling(self, budget: int, *, free_text: bool = False) -> Sampling:
        sampling = step_sampling(self.sampling, budget, free_text=free_text)
        if sampling.temperature is None:
            sampling = dataclasses.replace(sampling, temperature=TOOL_TEMPERATURE)
        return sampling

    def fields(self) -> dict[str, str]:
        """The caller's own text in every prompt: what a too-long error may name."""
        return {f"{self.field_prefix}prompt": self.prompt, f"{self.field_prefix}system": self.system}


async def from_proto(msg: pb.ExecuteRequest, intake: Intake) -> ToolUseRequest:
    limits, prefix = intake.limits, intake.prefix
    assert intake.tools is not None, "tool use needs the server's tools"
    v = Violations()
    v.text(msg.prompt, f"{prefix}prompt", required=True, max_chars=limits.max_text_chars)
    v.text(msg.system, f"{prefix}system", max_chars=limits.max_text_chars)
    v.text(msg.model, f"{prefix}model", max_chars=MAX_MODEL_NAME)
    tools = await intake.tools.select(list(msg.tools), f"{prefix}tools", v)
    max_steps = bounded(msg.max_steps if msg.HasField("max_steps") else None, f"{prefix}max_steps",
                        default=limits.max_steps, maximum=limits.max_steps, v=v)
    sampling = pattern_sampling(msg.options, f"{prefix}options", limits, v)
    v.check(msg.tool_choice in _CHOICE, f"{prefix}tool_choice", "unknown tool choice")
    v.raise_if_any()
    return ToolUseRequest(msg.prompt, msg.system, msg.model, tools, max_steps, sampling,
                          _CHOICE.get(msg.tool_choice, ToolChoice.DEFAULT), prefix)
