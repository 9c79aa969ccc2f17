"""The executor: runs every step whose dependencies are satisfied, concurrently (LLMCompiler-style).

Tool steps go through the run's ToolSet; model steps ask the model to do their description (`{id}`
references filled in, and any other dependency's result shown before it), with the goal as
context, streaming their tokens tagged with the step id. A model step is free text: bounded
(`STEP_TOKENS` unless the caller set max_tokens), with the anti-repetition default and the loop
guard (`patterns.free_text`), and its prompt fitted to the model's window (the dependencies'
results clipped if need be).

After the first failure no new step starts: the steps already running finish (their results are
kept for the replan) and the ones never started are reported SKIPPED.

Steps run in plain tasks that are always cancelled and awaited in `finally`, so cancelling the
run (client cancel, disconnect, deadline) stops every in-flight model and tool call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

from llmmesh.common.model_call import ChatMessage, Sampling
from llmmesh.framework import tracing
from llmmesh.framework.errors import MeshError
from llmmesh.patterns.context import fit_turns, room
from llmmesh.patterns.free_text import stream_text
from llmmesh.patterns.model_client import Completion, ModelClient
from llmmesh.patterns.options import step_sampling
from llmmesh.planexecute import prompts
from llmmesh.planexecute.events import AnswerToken, ExecutionEvent, StepFinished, StepOutcome, StepStarted, StepStatus
from llmmesh.planexecute.plan import Plan, Step, StepKind, references, substitute
from llmmesh.tools.base import Failure
from llmmesh.tools.registry import ToolSet

log = logging.getLogger("llmmesh.planexecute")


@dataclass(frozen=True)
class Executor:
    client: ModelClient
    model: str
    sampling: Sampling
    tools: ToolSet
    goal: str
    caller_fields: Mapping[str, str]  # the caller's text in the prompts (path → text), for a too-long error

    async def run(self, plan: Plan, earlier: Mapping[str, tuple[Step, str]]) -> AsyncIterator[ExecutionEvent]:
        """Events of executing `plan`; `earlier` holds the results (by step id) of steps completed
        under previous revisions, which satisfy dependencies on them."""
        queue: asyncio.Queue[AnswerToken | StepFinished] = asyncio.Queue()
        results: dict[str, tuple[Step, str]] = dict(earlier)
        pending = list(plan.steps)
        running: dict[str, asyncio.Task[None]] = {}
        failed = False
        try:
            while True:
                if not failed:
                    for step in [s for s in pending if all(d in results for d in s.depends_on)]:
                        pending.remove(step)
                        inputs = {d: results[d] for d in step.depends_on}
                        yield StepStarted(step.id, plan.revision)
                        running[step.id] = asyncio.create_task(self._step(step, inputs, plan.revision, queue))
                if not running:
                    break
                event = await queue.get()
                if isinstance(event, StepFinished):
                    outcome = event.outcome
                    del running[outcome.step_id]
                    if outcome.status is StepStatus.SUCCEEDED:
                        results[outcome.step_id] = (next(s for s in plan.steps if s.id == outcome.step_id),
                                                    outcome.output)
                    else:
                        failed = True
                yield event
            for step in pending:
                yield StepFinished(StepOutcome(step.id, StepStatus.SKIPPED, "", None, 0.0, plan.revision))
        finally:
            for task in running.values():
                task.cancel()
            await asyncio.gather(*running.values(), return_exceptions=True)

    async def _step(self, step: Step, inputs: Mapping[str, tuple[Step, str]], revision: int,
                    queue: asyncio.Queue[AnswerToken | StepFinished]) -> None:
        started = time.perf_counter()
        outputs = {sid: out for sid, (_, out) in inputs.items()}
        # Each step is its own task: its model or tool call runs under this span.
        attributes = {"llmmesh.plan.step_id": step.id, "llmmesh.plan.step_kind": step.kind.name.lower(),
                      "llmmesh.plan.revision": revision, "llmmesh.plan.depends_on": list(step.depends_on),
                      "gen_ai.tool.name": step.tool if step.kind is StepKind.TOOL else None}
        with tracing.span(f"plan_step {step.id}", {k: v for k, v in attributes.items() if v is not None}) as span:
            output, error = await self._execute(step, inputs, outputs, queue)
            if error is not None:  # a tool's failure or a failed model call: the step's outcome, not raised
                tracing.failed(span, error.message, error.code)
        status = StepStatus.SUCCEEDED if error is None else StepStatus.FAILED
        queue.put_nowait(StepFinished(StepOutcome(step.id, status, output if error is None else "", error,
                                                  (time.perf_counter() - started) * 1000, revision)))

    async def _execute(self, step: Step, inputs: Mapping[str, tuple[Step, str]], outputs: dict[str, str],
                       queue: asyncio.Queue[AnswerToken | StepFinished]) -> tuple[str, Failure | None]:
        """The step's output, or its failure (a failure never escapes: it becomes the step's outcome)."""
        output, error = "", None
        try:
            if step.kind is StepKind.TOOL:
                outcome = await self.tools.call(step.tool, substitute(step.arguments, outputs), step.id)
                output, error = outcome.output, outcome.error
            else:
                space = await room(self.client, self.model,
                                   step_sampling(self.sampling, prompts.STEP_TOKENS, free_text=True))
                description = substitute(step.description, outputs)
                inserted = set(references(step.description))
                results = [prompts.Result(s, out) for sid, (s, out) in inputs.items() if sid not in inserted]

                def render(kept: Sequence[prompts.Result], omitted: int) -> list[ChatMessage]:
                    return prompts.step_messages(self.goal, description, kept, omitted)

                messages = fit_turns(space, render, results, self.caller_fields, keep=len(results))
                async for item in stream_text(self.client, self.model, messages, space.sampling_for(messages)):
                    if isinstance(item, Completion):
                        output = item.text
                    elif item:
                        queue.put_nowait(AnswerToken(item, source=step.id))
        except MeshError as exc:  # a failed model call (RemoteError keeps the remote code)
            error = Failure(exc.code.name, exc.message)
        except Exception:
            log.warning("plan step %s failed", step.id, exc_info=True)
            error = Failure("INTERNAL", f"step {step.id!r} failed unexpectedly")
        return output, error
