"""The planner: one structured-output call that must yield a valid DAG.

A plan is accepted only if it is valid JSON for the plan schema (structured.parse_valid) AND a
valid DAG for this run (plan.check). Either problem is malformed output: it is shown to the model
in a follow-up turn and retried, up to the structured-output attempts; then the run fails with
MalformedModelOutput. An invalid plan is never repaired by guessing.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from llmmesh.inference.model_call import ChatMessage, Sampling
from llmmesh.patterns.model_client import ModelClient
from llmmesh.patterns.structured import MalformedModelOutput, parse_valid
from llmmesh.planexecute import prompts
from llmmesh.planexecute.plan import Plan, check, from_json, plan_schema
from llmmesh.tools.registry import ToolSet


@dataclass(frozen=True)
class Planner:
    client: ModelClient
    model: str
    sampling: Sampling
    tools: ToolSet
    max_steps: int
    max_chars: int
    attempts: int

    async def plan(self, request: str, revision: int, done: Collection[str] = ()) -> Plan:
        schema = plan_schema(list(self.tools.tools), self.max_steps)
        messages = [ChatMessage("system", prompts.planner_system(self.tools, self.max_steps)),
                    ChatMessage("user", request)]
        problem = ""
        for _ in range(self.attempts):
            completion = await self.client.complete(self.model, messages, sampling=self.sampling, json_schema=schema)
            value, problem = parse_valid(completion.text, schema)
            if value is not None:
                plan = from_json(value, revision)
                violations = check(plan, tools=self.tools.tools, max_steps=self.max_steps, max_chars=self.max_chars,
                                   done=done)
                if not violations:
                    return plan
                problem = "; ".join(f"{v.field}: {v.description}" for v in violations)
            messages += [ChatMessage("assistant", completion.text),
                         ChatMessage("user", prompts.invalid_plan_prompt(problem))]
        raise MalformedModelOutput(self.model or "default", self.attempts, problem)
