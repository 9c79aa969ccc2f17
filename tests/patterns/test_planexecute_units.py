"""Plan-and-execute's planning and run logic against a fake model client: a plan schema a small
model can finish (bounded, ids by enum, tools with their own argument schemas), the rules across
fields that JSON Schema cannot state and their repair, bounded free-text steps with the loop
guard, the short default plan, and the caller's goal checked against the context window."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest

from llmmesh.common.model_call import ToolDef
from llmmesh.framework.errors import InvalidArgument
from llmmesh.patterns.context import MARGIN, estimate_tokens
from llmmesh.patterns.json_budget import longest_match, token_budget
from llmmesh.patterns.model_info import DEFAULT_CONTEXT_WINDOW
from llmmesh.patterns.options import FREE_TEXT_FREQUENCY_PENALTY
from llmmesh.patterns.service import Intake
from llmmesh.patterns.structured import MalformedModelOutput
from llmmesh.planexecute import prompts, request
from llmmesh.planexecute.events import PlanResult
from llmmesh.planexecute.plan import StepKind
from llmmesh.planexecute.plan_schema import ARGUMENT_CHARS, DESCRIPTION_CHARS, plan_schema, problems, step_ids, to_plan
from llmmesh.planexecute.run import run
from llmmesh.planexecute.v1 import planexecute_service_pb2 as pb
from llmmesh.settings import PatternLimits
from llmmesh.tools.calculator import Calculator
from llmmesh.tools.clock import Clock
from llmmesh.tools.registry import ToolRegistry, ToolSet
from tests.support.fake_model import Call, FakeModelClient

LIMITS = PatternLimits()
TOOLS = (Calculator(), Clock())
README_GOAL = "Find 17 * 23 and say whether it is prime"


def schema(max_steps: int = 4) -> dict[str, Any]:
    return plan_schema([ToolDef(t.name, t.description, t.parameters) for t in TOOLS], step_ids(max_steps))


def plan_text(*steps: dict[str, Any]) -> str:
    return json.dumps({"steps": list(steps)})


def model_step(sid: str, description: str) -> dict[str, Any]:
    return {"id": sid, "description": description, "kind": "model"}


def calc_step(sid: str, expression: str, description: str = "Compute") -> dict[str, Any]:
    return {"id": sid, "description": description, "kind": "tool", "tool": "calculator",
            "arguments": {"expression": expression}}


async def spec(**fields: Any) -> request.PlanRequest:
    msg = pb.RunRequest(**{"goal": README_GOAL, "tools": ["calculator"], **fields})
    return await request.from_proto(msg, Intake(LIMITS, tools=ToolRegistry(LIMITS, grpc_targets=[])))


def scripted(plans: list[str], steps: dict[str, str], answer: str) -> Callable[[Call], str]:
    """Planner calls (those with a schema) get `plans` in order; a step's call the reply keyed by
    (a part of) its instruction; the synthesis `answer`."""
    def reply(call: Call) -> str:
        if call.json_schema is not None:
            return plans.pop(0)
        last = call.messages[-1].content
        if "Write the final answer" in last:
            return answer
        return next(text for instruction, text in steps.items() if instruction in last)
    return reply


async def result_of(client: FakeModelClient, plan_run: request.PlanRequest) -> PlanResult:
    events = [event async for event in run(client, plan_run)]
    assert isinstance(events[-1], PlanResult)
    return events[-1]


# ---- the schema ---------------------------------------------------------------------------------

def test_the_plan_schema_is_bounded_and_says_what_json_schema_can() -> None:
    s = schema(max_steps=4)
    steps = s["properties"]["steps"]
    assert (steps["minItems"], steps["maxItems"]) == (1, 4)
    model, calculator, clock = steps["items"]["anyOf"]
    for alternative in (model, calculator, clock):
        props = alternative["properties"]
        assert props["id"]["enum"] == ["s1", "s2", "s3", "s4"]
        assert props["description"]["maxLength"] == DESCRIPTION_CHARS
        assert alternative["required"] == list(props)  # the writing order, which the service keeps
        assert "depends_on" not in props  # read from the {id} references instead
    assert (calculator["properties"]["tool"], clock["properties"]["tool"]) == ({"const": "calculator"},
                                                                                {"const": "clock"})
    # The tool's own argument schema, bounded: what the grammar allows, the tool accepts.
    arguments = calculator["properties"]["arguments"]
    assert arguments["required"] == ["expression"] and arguments["additionalProperties"] is False
    expression = arguments["properties"]["expression"]
    # A grammar ignores maxLength beside a pattern: the pattern itself is bounded, and says the length.
    assert expression["maxLength"] == longest_match(expression["pattern"]) <= 2 * ARGUMENT_CHARS
    assert model["properties"]["kind"] == {"const": "model"} and "tool" not in model["properties"]
    # Any plan the schema allows fits a 2048-token window after the planner's prompt.
    tools = ToolSet(ToolRegistry(LIMITS, grpc_targets=[]), {t.name: t for t in TOOLS})
    prompt = prompts.planner_messages(tools, 4, step_ids(4), f"Goal: {README_GOAL}")
    assert token_budget(s) + estimate_tokens(prompt) + MARGIN <= DEFAULT_CONTEXT_WINDOW


def test_the_schema_refuses_what_it_can_express() -> None:
    validator = jsonschema.Draft202012Validator(schema(max_steps=2))
    ok = {"steps": [calc_step("s1", "17 * 23"), model_step("s2", "Say whether {s1} is prime")]}
    # The calculator's pattern admits no braces; a plan's arguments admit references between its characters.
    refers = {"steps": [model_step("s1", "Name a number"), calc_step("s2", "({s1} + 1) * 2")]}
    assert not list(validator.iter_errors(ok)) and not list(validator.iter_errors(refers))
    for bad in ({"steps": [calc_step("s1", "17 * 23 = 391")]},  # still the tool's own pattern
                {"steps": [calc_step("s1", "{x} + 1")]},{"steps": [model_step("step1", "x")]},  # an id outside the enum
                {"steps": [calc_step("s1", "1"), calc_step("s2", "2"), model_step("s1", "3")]},  # over max_steps
                {"steps": [{**calc_step("s1", "1"), "tool": "rm"}]},  # an unknown tool
                {"steps": [{**calc_step("s1", "1"), "arguments": {"expr": "1"}}]},  # not the tool's arguments
                {"steps": [{**model_step("s1", "x"), "depends_on": ["s2"]}]},  # dependencies are not written
                {"steps": [model_step("s1", "x" * (DESCRIPTION_CHARS + 1))]}):
        assert list(validator.iter_errors(bad)), bad


def test_a_replan_gets_ids_no_step_of_the_run_had() -> None:
    assert step_ids(3, taken={"s1", "s3"}) == ["s2", "s4", "s5"]


# ---- rules across fields ------------------------------------------------------------------------

@pytest.mark.parametrize(("steps", "done", "problem"), [
    ([model_step("s1", "Use {s2}"), model_step("s2", "x")], (),
     "step s1 inserts {s2}, which is not a step before it"),
    ([calc_step("s1", "{s1} + 1")], (), "step s1 inserts itself"),
    ([model_step("s1", "a"), model_step("s1", "b")], (), "two steps have the id s1"),
    ([model_step("s1", "Say {s7}")], (), "step s1 inserts {s7}, which is not a step before it"),
    ([model_step("s1", "Same"), model_step("s2", "Same")], (), "step s2 repeats step s1"),
    ([model_step("s1", "   ")], (), "step s1 has an empty description"),
    ([calc_step("s3", "{s1} + 1")], ("s2",), "step s3 inserts {s1}, but step s1 failed and has no result"),
])
def test_problems_name_the_step_and_the_rule(steps: list[dict[str, Any]], done: tuple[str, ...],
                                             problem: str) -> None:
    assert problem in problems({"steps": steps}, done, failed={"s1"})


def test_references_to_earlier_or_completed_steps_are_dependencies_and_other_braces_are_text() -> None:
    value = {"steps": [model_step("s3", "Fill the template 'Hi {name}' with {s1}"),
                       calc_step("s4", "{s3} * {s1}")]}
    assert problems(value, done={"s1"}) == ""
    plan = to_plan(value, revision=1, done={"s1"})
    assert [(s.id, s.kind, s.tool, s.depends_on) for s in plan.steps] == [
        ("s3", StepKind.MODEL, "", ("s1",)), ("s4", StepKind.TOOL, "calculator", ("s3", "s1"))]
    assert plan.steps[1].arguments == {"expression": "{s3} * {s1}"} and plan.revision == 1


# ---- runs ---------------------------------------------------------------------------------------

async def test_the_readme_goal_runs_a_calculator_step_and_a_bounded_model_step() -> None:
    client = FakeModelClient(reply=scripted(
        [plan_text(calc_step("s1", "17 * 23", "Compute 17 * 23"), model_step("s2", "Say whether {s1} is prime"))],
        {"Say whether": "391 is not prime: 391 = 17 * 23."}, "17 * 23 = 391, which is not prime (17 * 23)."))
    plan_run = await spec()
    result = await result_of(client, plan_run)
    assert plan_run.max_steps == request.DEFAULT_PLAN_STEPS == 4  # the short default plan
    assert {o.step_id: o.output for o in result.steps} == {"s1": "391", "s2": "391 is not prime: 391 = 17 * 23."}
    assert result.answer == "17 * 23 = 391, which is not prime (17 * 23)." and result.model == "fake:1b"
    planner, step, answer = client.calls
    assert result.usage.model_calls == 3
    assert planner.json_schema is not None and planner.json_schema["properties"]["steps"]["maxItems"] == 4
    assert 0 < planner.sampling.max_tokens <= token_budget(planner.json_schema)
    # Greedy unless the caller chose a temperature.
    assert planner.sampling.temperature == step.sampling.temperature == answer.sampling.temperature == 0.0
    assert "calculator (arguments: expression)" in planner.messages[0].content
    # The model step's task is its instruction with the tool's result inserted; the goal is context.
    assert step.messages[-1].content == "Say whether 391 is prime"
    assert README_GOAL in step.messages[0].content and README_GOAL not in step.messages[-1].content
    assert (step.sampling.max_tokens, answer.sampling.max_tokens) == (prompts.STEP_TOKENS, prompts.ANSWER_TOKENS)
    assert step.sampling.frequency_penalty == answer.sampling.frequency_penalty == FREE_TEXT_FREQUENCY_PENALTY
    assert "- Compute 17 * 23 = 391\n- Say whether 391 is prime = 391 is not prime" in answer.messages[-1].content


async def test_an_invalid_plan_is_repaired_by_telling_the_model_what_was_wrong() -> None:
    bad = plan_text(model_step("s1", "Say whether {s2} is prime"), calc_step("s2", "17 * 23"))
    good = plan_text(calc_step("s1", "17 * 23"), model_step("s2", "Say whether {s1} is prime"))
    client = FakeModelClient(reply=scripted([bad, good], {"Say whether": "Not prime."}, "391 is not prime."))
    result = await result_of(client, await spec())
    assert [s.id for s in result.plan.steps] == ["s1", "s2"] and result.answer == "391 is not prime."
    first, repair = client.calls[:2]
    assert repair.messages[-2].role == "assistant" and repair.messages[-2].content == bad
    assert "step s1 inserts {s2}, which is not a step before it" in repair.messages[-1].content
    # Not the same greedy call again: another seed and some temperature.
    assert (repair.sampling.seed, repair.sampling.temperature) != (first.sampling.seed, first.sampling.temperature)


async def test_a_plan_still_invalid_after_the_attempts_is_malformed_output_naming_the_model() -> None:
    client = FakeModelClient(replies=[plan_text(model_step("s1", "Use {s3}"))])
    with pytest.raises(MalformedModelOutput) as err:
        await result_of(client, await spec())
    assert err.value.model == "fake:1b" and err.value.attempts == LIMITS.json_attempts
    assert "inserts {s3}" in err.value.problem and len(client.calls) == LIMITS.json_attempts


async def test_a_looping_answer_is_cut_to_its_first_occurrence() -> None:
    client = FakeModelClient(reply=scripted([plan_text(calc_step("s1", "17 * 23"))], {},
                                            "The product is 391. " * 40))
    result = await result_of(client, await spec())
    assert result.answer == "The product is 391."


async def test_an_answer_that_ignores_the_computed_numbers_is_repaired_once() -> None:
    answers = ["The final answer is 144 + 6 = 190.", "The final answer is 150."]
    plans = [plan_text(calc_step("s1", "12 * 12 + 6", "Compute 12 squared plus 6"))]
    client = FakeModelClient(reply=lambda call: plans.pop(0) if call.json_schema else answers.pop(0))
    result = await result_of(client, await spec(goal="What is 12 squared plus 6?"))
    assert result.answer == "The final answer is 150."
    repair = client.calls[-1].messages[-1].content
    assert "the steps computed 150; the answer must state those results" in repair


async def test_the_callers_options_bound_every_step() -> None:
    client = FakeModelClient(reply=scripted([plan_text(calc_step("s1", "2 + 3"), model_step("s2", "State {s1}"))],
                                            {"State": "5"}, "5"))
    await result_of(client, await spec(options={"max_tokens": 100, "temperature": 0.5}))
    assert [(c.sampling.max_tokens, c.sampling.temperature) for c in client.calls] == [(100, 0.5)] * 3


async def test_a_goal_too_long_for_the_window_is_invalid_argument_before_any_call() -> None:
    client = FakeModelClient(replies=["unused"])
    with pytest.raises(InvalidArgument) as err:
        await result_of(client, await spec(goal="Find the product. " * 600))
    assert [v.field for v in err.value.violations] == ["goal"] and client.calls == []
