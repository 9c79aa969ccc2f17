"""A plan-and-execute run (Plan-and-Solve with LLMCompiler-style execution).

plan → (human approval) → execute the DAG concurrently → on failure, replan with the completed
results and the failure → … → synthesise the answer from every completed result.

Choices:
- Every plan that is about to run is shown (`PlanProposed`); with `require_approval` the run
  waits for a decision on each of them, the replans included, since a human approved only what
  they saw. APPROVE runs it, EDIT runs the edited plan (validated like a planner's plan, errors
  as INVALID_ARGUMENT under `decision.edited_plan.`), REJECT ends the run with ABORTED
  (ErrorInfo reason PLAN_REJECTED). No decision within `human_timeout_s` → DEADLINE_EXCEEDED.
- A failed step triggers a replan while replans remain; results of completed steps are kept and
  later steps may depend on them. A failure with no replans left ends the run with ABORTED
  (reason REPLANS_EXHAUSTED), naming the step and its error: an answer synthesised from an
  incomplete plan would look complete, so no answer is better than a misleading one.
- The answer is free text written from the results: bounded (`ANSWER_TOKENS` unless the caller
  set max_tokens), with the anti-repetition default and the loop guard; an empty reply is asked
  again, then MalformedModelOutput. Its prompt fits the model's window (results clipped if need be).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import AsyncIterator
from contextlib import aclosing

from llmmesh.framework.errors import DeadlineExceeded, InvalidArgument
from llmmesh.patterns.aborted import RunAborted
from llmmesh.patterns.context import fit_turns, room
from llmmesh.patterns.free_text import stream_text
from llmmesh.patterns.model_client import Completion, ModelClient, metered
from llmmesh.patterns.numbers import ignores_results, raw_numbers
from llmmesh.patterns.options import step_sampling
from llmmesh.planexecute import prompts
from llmmesh.planexecute.events import (
    AnswerToken,
    PlanEvent,
    PlanProposed,
    PlanResult,
    StepFinished,
    StepOutcome,
    StepStatus,
)
from llmmesh.planexecute.executor import Executor
from llmmesh.planexecute.plan import Plan, Step, StepKind, check, substitute
from llmmesh.planexecute.planner import Planner
from llmmesh.planexecute.prompts import Result
from llmmesh.planexecute.request import DecisionAction, PlanRequest


async def run(client: ModelClient, req: PlanRequest) -> AsyncIterator[PlanEvent]:
    planner = Planner(client, req.model, req.sampling, req.tools, req.max_steps, req.json_attempts,
                      req.caller_fields)
    executor = Executor(client, req.model, req.sampling, req.tools, req.goal, req.caller_fields)
    steps: dict[str, Step] = {}  # steps by id; an edited plan may reuse a failed step's id (latest wins)
    done: dict[str, tuple[Step, str]] = {}  # completed steps and their outputs
    history: list[StepOutcome] = []
    replans = 0
    with metered() as meter:
        plan = await planner.plan(lambda _kept, _omitted: prompts.goal_prompt(req.goal), revision=0)
        while True:
            yield PlanProposed(plan, awaiting_approval=req.require_approval)
            if req.require_approval:
                decided = await _decide(req, plan, done)
                if decided is not plan:  # edited: show what will run
                    plan = decided
                    yield PlanProposed(plan, awaiting_approval=False)
            steps.update({s.id: s for s in plan.steps})
            failed: list[StepOutcome] = []
            # Closed explicitly, so its step tasks are cancelled even if this generator is closed
            # at a yield rather than cancelled at an await.
            async with aclosing(executor.run(plan, done)) as execution:
                async for event in execution:
                    if isinstance(event, StepFinished):
                        outcome = event.outcome
                        history.append(outcome)
                        if outcome.status is StepStatus.SUCCEEDED:
                            done[outcome.step_id] = (steps[outcome.step_id], outcome.output)
                        elif outcome.status is StepStatus.FAILED:
                            failed.append(outcome)
                    yield event
            if not failed:
                break
            if replans >= req.max_replans:
                first = failed[0]
                assert first.error is not None
                raise RunAborted(
                    f"step {first.step_id!r} failed ({first.error.code}: {first.error.message}) and no replans are "
                    f"left (max_replans={req.max_replans})", "REPLANS_EXHAUSTED",
                    {"step_id": first.step_id, "error_code": first.error.code, "replans": str(replans)})
            replans += 1
            revision = plan.revision + 1
            replan = functools.partial(prompts.replan_prompt, req.goal, revision=revision,
                                       failed=[(steps[o.step_id], o) for o in failed])
            plan = await planner.plan(replan, revision=revision, done=done.keys(), taken=steps.keys(),
                                      shown=_results(done))

        space = await room(client, req.model, step_sampling(req.sampling, prompts.ANSWER_TOKENS, free_text=True))
        results = _results(done)
        messages = fit_turns(space, lambda kept, omitted: prompts.synthesis_messages(req.goal, kept, omitted),
                             results, req.caller_fields, keep=len(results))
        completion: Completion | None = None
        async for item in stream_text(client, req.model, messages, space.sampling_for(messages),
                                      advise=functools.partial(_ignores_tool_results, done)):
            if isinstance(item, Completion):
                completion = item
            elif item:
                yield AnswerToken(item)
        assert completion is not None
        yield PlanResult(completion.text, plan, tuple(history), replans, completion.model or req.model, meter)


def _ignores_tool_results(done: dict[str, tuple[Step, str]], answer: str) -> str:
    """Advice for the answer: state the numbers the tools computed, not arithmetic of its own ("")."""
    computed = []  # (as written, value) of each tool step whose output is one number
    for step, output in done.values():
        found = raw_numbers(output)
        if step.kind is StepKind.TOOL and len(found) == 1:
            computed.append((output.strip(), found[0][1][0]))
    if not ignores_results(answer, [value for _, value in computed]):
        return ""
    return f"the steps computed {', '.join(text for text, _ in computed)}; the answer must state those results"


def _results(done: dict[str, tuple[Step, str]]) -> list[Result]:
    """The completed steps as prompts show them, `{id}` in their descriptions filled in ("Add 100 to
    400", not "Add 100 to {s1}")."""
    outputs = {sid: output for sid, (_, output) in done.items()}
    return [Result(dataclasses.replace(step, description=substitute(step.description, outputs)), output)
            for step, output in done.values()]


async def _decide(req: PlanRequest, plan: Plan, done: dict[str, tuple[Step, str]]) -> Plan:
    """The plan to run after the human's decision (or the error their decision means)."""
    assert req.approver is not None, "require_approval needs an approver (the stream)"
    try:
        async with asyncio.timeout(req.human_timeout_s):
            decision = await req.approver(plan)
    except TimeoutError:
        raise DeadlineExceeded(f"no plan decision arrived within {req.human_timeout_s:g}s") from None
    if decision.action is DecisionAction.REJECT:
        raise RunAborted("the plan was rejected" + (f": {decision.comment}" if decision.comment else ""),
                         "PLAN_REJECTED", {"plan_revision": str(plan.revision)})
    if decision.action is DecisionAction.APPROVE:
        return plan
    assert decision.plan is not None
    edited = Plan(decision.plan.steps, plan.revision)
    violations = check(edited, tools=req.tools.tools, max_steps=req.max_steps, max_chars=req.max_chars,
                       done=done.keys(), prefix="decision.edited_plan.")
    if violations:
        raise InvalidArgument(violations)
    return edited
