"""The planner: one structured-output call that must yield a plan that runs.

The answer must be valid JSON for the plan schema and pass the plan's cross-field rules
(`plan_schema.problems`); either failure is repaired by `structured.complete_json` (the model sees
its reply and what was wrong with it), and after the structured-output attempts the run fails with
MalformedModelOutput naming the model. An invalid plan is never repaired by guessing.

The prompt is fitted to the model's context window: the caller's goal must fit as it is (else
INVALID_ARGUMENT naming it); of the completed results a replan shows, the oldest are left out if
they do not fit.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from llmmesh.common.model_call import ChatMessage, Sampling
from llmmesh.patterns.context import fit_turns, room
from llmmesh.patterns.json_budget import token_budget
from llmmesh.patterns.model_client import ModelClient
from llmmesh.patterns.options import step_sampling
from llmmesh.patterns.structured import complete_json
from llmmesh.planexecute import prompts
from llmmesh.planexecute.plan import Plan
from llmmesh.planexecute.plan_schema import plan_schema, problems, step_ids, to_plan
from llmmesh.planexecute.prompts import Result
from llmmesh.tools.registry import ToolSet

# The planner's request from the completed results it shows (those kept, how many were left out).
RequestRender = Callable[[Sequence[Result], int], str]


@dataclass(frozen=True)
class Planner:
    client: ModelClient
    model: str
    sampling: Sampling
    tools: ToolSet
    max_steps: int
    attempts: int
    caller_fields: Mapping[str, str]  # the caller's text in the prompts (path → text), for a too-long error

    async def plan(self, request: RequestRender, revision: int, done: Collection[str] = (),
                   taken: Collection[str] = (), shown: Sequence[Result] = ()) -> Plan:
        """A plan for the request `request` renders with the completed results `shown` (a replan's;
        the oldest are left out if they do not fit). Its steps may insert the results of the
        `done` steps, and get ids that no step of the run has `taken` yet."""
        ids = step_ids(self.max_steps, taken)
        failed = set(taken) - set(done)
        schema = plan_schema(self.tools.defs, ids)
        space = await room(self.client, self.model, step_sampling(self.sampling, token_budget(schema)))

        def render(kept: Sequence[Result], omitted: int) -> list[ChatMessage]:
            return prompts.planner_messages(self.tools, self.max_steps, ids, request(kept, omitted))

        messages = fit_turns(space, render, shown, self.caller_fields)
        result = await complete_json(self.client, self.model, messages, schema,
                                     sampling=space.sampling_for(messages), attempts=self.attempts,
                                     check=lambda value: problems(value, done, failed))
        return to_plan(result.value, revision, done)
