"""`judge`, `jury`, `tool`, `plan`, `reflect`, `collaborate` (`compare` has its own module).

Each runs its pattern's stream: progress goes to stderr as events arrive ("jurors 2/3",
"plan steps 3/5"), the answer to stdout. `--json` prints every event as a JSON line (the last one
holds the result); `--unary` calls the unary RPC instead and prints one object.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from llmmesh_client._proto.llmmesh.collaboration.v1 import collaboration_service_pb2 as collab_pb
from llmmesh_client._proto.llmmesh.judge.v1 import judge_service_pb2 as judge_pb
from llmmesh_client._proto.llmmesh.jury.v1 import jury_service_pb2 as jury_pb
from llmmesh_client._proto.llmmesh.planexecute.v1 import planexecute_service_pb2 as plan_pb
from llmmesh_client._proto.llmmesh.reflection.v1 import reflection_service_pb2 as reflection_pb
from llmmesh_client._proto.llmmesh.tooluse.v1 import tooluse_service_pb2 as tooluse_pb
from llmmesh_client.client import LlmMesh
from llmmesh_client.commands import (
    UsageError,
    generation_options,
    json_argument,
    text_argument,
)
from llmmesh_client.commands.output import Output, to_dict
from llmmesh_client.commands.pattern_runs import drive, pattern_parser, preset_argument, score_text, store_field, unary
from llmmesh_client.convert import enum_choices


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = pattern_parser(sub, common, "judge", "LLM-as-a-judge: score an answer, or compare two", judge)
    p.add_argument("--question", default="")
    p.add_argument("--answer", help="the answer to judge (A in pairwise mode)")
    p.add_argument("--answer-b", default="", help="second answer: pairwise comparison")
    p.add_argument("--criterion", default="", help="built-in criterion (see --list-criteria)")
    p.add_argument("--rubric", help="custom rubric as JSON (inline or @file)")
    p.add_argument("--context", action="append", default=[], help="context passage (repeatable)")
    p.add_argument("--ground-truth", default="")
    p.add_argument("--list-criteria", action="store_true", help="list the built-in criteria and exit")

    p = pattern_parser(sub, common, "jury", "a panel of judges, aggregated", jury)
    p.add_argument("--question", default="")
    p.add_argument("--answer", required=True)
    p.add_argument("--context", action="append", default=[])
    p.add_argument("--ground-truth", default="")
    p.add_argument("--criterion", default="", help="default criterion for jurors that name none")
    p.add_argument("--juror", action="append", default=[], metavar="MODEL[,criterion=C][,weight=W]",
                   help="a juror (repeatable); also instructions=… and name=…")
    p.add_argument("--aggregation", choices=enum_choices(jury_pb.Aggregation.DESCRIPTOR))
    p.add_argument("--quorum", type=int)
    preset_argument(p, "its panel, unless --juror is given")

    p = pattern_parser(sub, common, "tool", "let the model call tools until it answers", tool)
    p.add_argument("prompt", nargs="?", help="the request ('-' reads stdin)")
    p.add_argument("--system", default="")
    p.add_argument("--tool", action="append", default=[], help="offer this tool (repeatable; default: all)")
    p.add_argument("--max-steps", type=int)
    p.add_argument("--list", action="store_true", help="list the available tools and exit")

    p = pattern_parser(sub, common, "plan", "plan a goal into steps, run them, answer", plan)
    p.add_argument("goal", nargs="?", help="the goal ('-' reads stdin)")
    p.add_argument("--tool", action="append", default=[])
    p.add_argument("--max-steps", type=int)
    p.add_argument("--max-replans", type=int)
    p.add_argument("--review", action="store_true", help="show the plan and ask before running it")

    p = pattern_parser(sub, common, "reflect", "draft, critique and revise", reflect)
    p.add_argument("task", nargs="?", help="the task ('-' reads stdin)")
    p.add_argument("--draft", default="", help="start from this draft")
    p.add_argument("--criteria", default="", help="what the critic scores against")
    p.add_argument("--critic-model", default="")
    p.add_argument("--max-rounds", type=int)
    p.add_argument("--threshold", type=float, help="stop at this critique score (0..10)")

    p = pattern_parser(sub, common, "collaborate", "agents with roles work on a task", collaborate)
    p.add_argument("task", nargs="?", help="the task ('-' reads stdin)")
    p.add_argument("--agent", action="append", default=[], metavar="NAME[@MODEL]=ROLE",
                   help="an agent and its role as a system prompt (repeatable)")
    p.add_argument("--strategy", choices=enum_choices(collab_pb.Strategy.DESCRIPTOR),
                   help="default: the server's (mixture-of-agents, with two default agents when none are given)")
    p.add_argument("--rounds", type=int)
    p.add_argument("--human", action="store_true", help="take a turn yourself after each round")
    p.add_argument("--verbose", "-v", action="store_true", help="stream every agent's words to stderr")




# ---- judge ---------------------------------------------------------------------------------


def judge(client: LlmMesh, args: argparse.Namespace, out: Output) -> int:
    if args.list_criteria:
        criteria = client.judge.list_criteria()
        if out.json:
            out.message(criteria)
        else:
            out.table(("CRITERION", "SCALE", "DESCRIPTION"),
                      [(c.name, f"{score_text(c.min_score)}-{score_text(c.max_score)}", c.description)
                       for c in criteria.criteria])
        return 0
    if args.answer is None:
        raise UsageError("--answer is required (or --list-criteria)")
    fields: dict[str, Any] = {
        "question": args.question, "answer": args.answer, "answer_b": args.answer_b, "contexts": args.context,
        "ground_truth": args.ground_truth, "judge_type": args.criterion, "model": args.model,
        "rubric": json_argument(args.rubric, "--rubric"), "options": generation_options(args),
        "store": store_field(args),
        "mode": "pairwise" if args.answer_b else None,
    }
    if args.unary:
        return unary(client.judge.evaluate(**fields), out, _print_verdict)
    result = drive(client.judge.evaluate_stream(**fields), out, _judge_event)
    if result is not None and not out.json:
        _print_verdict(result, out)
    return 0


def _judge_event(event: Any, out: Output) -> None:
    if event.HasField("order_verdict"):
        v = event.order_verdict
        out.progress(f"order {v.order}: {_verdict(judge_pb.Verdict, v.winner)}")


def _verdict(enum: Any, value: int) -> str:
    """VERDICT_PASS → pass."""
    return enum.Name(value).removeprefix("VERDICT_").lower()


def _print_verdict(result: Any, out: Output) -> None:
    out.line(f"verdict: {_verdict(judge_pb.Verdict, result.verdict)}")
    scale = f" ({score_text(result.min_score)}-{score_text(result.max_score)})" if result.max_score else ""
    out.line(f"score: {score_text(result.score)}{scale}")
    out.line(f"criterion: {result.criterion}")
    out.line(f"judge: {result.judge}")
    out.line(f"reasoning: {result.reasoning}")


# ---- jury ----------------------------------------------------------------------------------


_JUROR_KEYS = ("criterion", "weight", "instructions", "name")


def _juror(spec: str) -> dict[str, Any]:
    """`MODEL[,criterion=C][,weight=W][,instructions=I][,name=N]` (model names may contain ':')."""
    model, *settings = spec.split(",")
    juror: dict[str, Any] = {"model": model.strip()}
    for setting in settings:
        key, sep, value = setting.partition("=")
        key = key.strip()
        if not sep or key not in _JUROR_KEYS:
            raise UsageError(f"--juror {spec!r}: expected MODEL[,{'=…][,'.join(_JUROR_KEYS)}=…]")
        if key == "weight":
            try:
                juror[key] = float(value)
            except ValueError:
                raise UsageError(f"--juror {spec!r}: weight {value!r} is not a number") from None
        else:
            juror[key] = value.strip()
    return juror


def jury(client: LlmMesh, args: argparse.Namespace, out: Output) -> int:
    fields: dict[str, Any] = {
        "question": args.question, "answer": args.answer, "contexts": args.context,
        "ground_truth": args.ground_truth, "judge_type": args.criterion,
        "panel": [_juror(s) for s in args.juror], "aggregation": args.aggregation, "quorum": args.quorum,
        "options": generation_options(args), "store": store_field(args), "preset": args.preset,
    }
    if args.unary:
        return unary(client.jury.evaluate(**fields), out, _print_jury)
    total = len(args.juror)
    seen = 0

    def render(event: Any, out: Output) -> None:
        nonlocal seen
        if event.HasField("juror_verdict"):
            seen += 1
            v = event.juror_verdict
            outcome = f"failed ({v.error.message})" if v.HasField("error") else \
                f"{_verdict(jury_pb.Verdict, v.verdict)} ({score_text(v.normalized_score)})"
            out.progress(f"jurors {seen}/{total or '?'}: {v.juror} {outcome}")

    result = drive(client.jury.evaluate_stream(**fields), out, render)
    if result is not None and not out.json:
        _print_jury(result, out)
    return 0


def _print_jury(result: Any, out: Output) -> None:
    aggregation = jury_pb.Aggregation.Name(result.aggregation).removeprefix("AGGREGATION_").lower()
    out.line(f"verdict: {_verdict(jury_pb.Verdict, result.verdict)}")
    out.line(f"score: {score_text(result.score)} ({aggregation})")
    agreement = result.agreement
    out.line(f"agreement: {score_text(agreement.verdict_agreement)} (spread {score_text(agreement.spread)})")
    for v in result.verdicts:
        outcome = _verdict(jury_pb.Verdict, v.verdict) if v.verdict else "failed"
        out.line(f"  {v.juror}: {outcome} {score_text(v.normalized_score)}")


# ---- tool use ------------------------------------------------------------------------------


def tool(client: LlmMesh, args: argparse.Namespace, out: Output) -> int:
    if args.list:
        tools = client.tooluse.list_tools()
        if out.json:
            out.message(tools)
        else:
            out.table(("TOOL", "SOURCE", "DESCRIPTION"), [(t.name, t.source, t.description) for t in tools.tools])
        return 0
    fields = {"prompt": text_argument(args.prompt, "prompt"), "system": args.system, "model": args.model,
              "tools": args.tool, "max_steps": args.max_steps, "options": generation_options(args),
              "store": store_field(args)}
    if args.unary:
        return unary(client.tooluse.execute(**fields), out, lambda r, o: o.line(r.answer))
    result = drive(client.tooluse.execute_stream(**fields), out, _tool_event)
    if result is not None and not out.json:
        out.line()
        stop = tooluse_pb.StopReason.Name(result.stop_reason).removeprefix("STOP_REASON_").lower()
        out.progress(f"[{result.steps} steps, {len(result.calls)} tool calls, {stop}]")
    return 0


def _tool_event(event: Any, out: Output) -> None:
    kind = event.WhichOneof("event")
    if kind == "tool_call":
        c = event.tool_call
        out.progress(f"step {c.step}: {c.name}({json.dumps(to_dict(c.arguments))})")
    elif kind == "tool_result":
        r = event.tool_result
        shown = f"error: {r.error.message}" if r.HasField("error") else _clip(r.output)
        out.progress(f"  → {shown}")
    elif kind == "answer":
        out.text(event.answer.text)


def _clip(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---- plan and execute ----------------------------------------------------------------------


def plan(client: LlmMesh, args: argparse.Namespace, out: Output) -> int:
    fields = {"goal": text_argument(args.goal, "goal"), "model": args.model, "tools": args.tool,
              "max_steps": args.max_steps, "max_replans": args.max_replans,
              "require_approval": args.review or None, "options": generation_options(args), "store": store_field(args)}
    if args.unary:
        if args.review:
            raise UsageError("--review needs the stream; drop --unary")
        return unary(client.planexecute.run(**fields), out, lambda r, o: o.line(r.answer))
    run = client.planexecute.run_stream(**fields)
    state = {"total": 0, "done": 0, "revision": 0}

    def render(event: Any, out: Output) -> None:
        kind = event.WhichOneof("event")
        if kind == "plan":
            proposed = event.plan.plan
            state.update(total=len(proposed.steps), done=0, revision=proposed.revision)
            out.progress(f"plan (revision {proposed.revision}, {len(proposed.steps)} steps):")
            for step in proposed.steps:
                kind_ = plan_pb.StepKind.Name(step.kind).removeprefix("STEP_KIND_").lower()
                after = f" after {', '.join(step.depends_on)}" if step.depends_on else ""
                out.progress(f"  {step.id} [{kind_}{' ' + step.tool if step.tool else ''}]{after}: {step.description}")
            if event.plan.awaiting_approval:
                _review(run, out)
        elif kind == "step_result":
            r = event.step_result
            if r.plan_revision == state["revision"]:
                state["done"] += 1
            status = plan_pb.StepStatus.Name(r.status).removeprefix("STEP_STATUS_").lower()
            out.progress(f"plan steps {state['done']}/{state['total']}: {r.step_id} {status}")
        elif kind == "answer" and not event.answer.source:  # step outputs carry their step id
            out.text(event.answer.text)

    result = drive(run, out, render)
    if result is not None and not out.json:
        out.line()
        out.progress(f"[{len(result.steps)} steps run, {result.replans} replans]")
    return 0


def _review(run: Any, out: Output) -> None:
    out.note("run this plan? [Y/n] ")
    try:
        answer = input().strip().lower()
    except EOFError:
        answer = "n"
    if answer in ("", "y", "yes"):
        run.approve()
    else:
        run.reject("rejected at the command line")


# ---- reflection ----------------------------------------------------------------------------


def reflect(client: LlmMesh, args: argparse.Namespace, out: Output) -> int:
    fields = {"task": text_argument(args.task, "task"), "initial_draft": args.draft, "model": args.model,
              "critic_model": args.critic_model, "criteria": args.criteria, "max_rounds": args.max_rounds,
              "score_threshold": args.threshold, "options": generation_options(args), "store": store_field(args)}
    if args.unary:
        return unary(client.reflection.improve(**fields), out, lambda r, o: o.line(r.final_draft))

    def render(event: Any, out: Output) -> None:
        kind = event.WhichOneof("event")
        if kind == "draft":
            out.progress(f"round {event.draft.round}: draft of {len(event.draft.text.split())} words")
        elif kind == "critique":
            out.progress(f"round {event.critique.round}: score {score_text(event.critique.score)}"
                         f" - {_clip(event.critique.feedback, 120)}")

    result = drive(client.reflection.improve_stream(**fields), out, render)
    if result is not None and not out.json:
        out.line(result.final_draft)
        stop = reflection_pb.ReflectionStopReason.Name(result.stop_reason)
        out.progress(f"[score {score_text(result.final_score)} after {result.rounds} rounds: "
                     f"{stop.removeprefix('REFLECTION_STOP_REASON_').lower()}]")
    return 0


# ---- collaboration -------------------------------------------------------------------------


def _agent(spec: str) -> dict[str, str]:
    who, sep, role = spec.partition("=")
    if not sep or not who.strip():
        raise UsageError(f"--agent {spec!r}: expected NAME[@MODEL]=ROLE")
    name, _, model = who.partition("@")
    return {"name": name.strip(), "model": model.strip(), "system_prompt": role.strip()}


def collaborate(client: LlmMesh, args: argparse.Namespace, out: Output) -> int:
    fields = {"task": text_argument(args.task, "task"), "agents": [_agent(a) for a in args.agent],
              "strategy": args.strategy, "rounds": args.rounds, "human_in_loop": args.human or None,
              "options": generation_options(args), "store": store_field(args)}
    if args.model:
        fields["agents"] = [{**a, "model": a["model"] or args.model} for a in fields["agents"]]
    if args.unary:
        if args.human:
            raise UsageError("--human needs the stream; drop --unary")
        return unary(client.collaboration.run(**fields), out, lambda r, o: o.line(r.answer))
    run = client.collaboration.run_stream(**fields)

    def render(event: Any, out: Output) -> None:
        kind = event.WhichOneof("event")
        if kind == "turn_started":
            out.progress(f"round {event.turn_started.round}: {event.turn_started.agent}")
        elif kind == "delta" and args.verbose:
            out.note(event.delta.text)
        elif kind == "turn" and args.verbose:
            out.note("\n")
        elif kind == "awaiting_human":
            out.note(f"your turn (round {event.awaiting_human.round}; empty to pass): ")
            try:
                run.human(input())
            except EOFError:
                run.human("")

    result = drive(run, out, render)
    if result is not None and not out.json:
        out.line(result.answer)
        if result.HasField("verdict"):
            out.progress(f"[winner {result.verdict.winner}: {result.verdict.rationale}]")
        strategy = collab_pb.Strategy.Name(result.strategy).removeprefix("STRATEGY_").lower()
        out.progress(f"[{strategy}, {result.rounds} rounds, {len(result.transcript)} turns]")
    return 0
