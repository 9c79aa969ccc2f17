"""Every input limit, hit on purpose against real servers: the gRPC message size, prompt and text
lengths, max_tokens above the server's maximum, message/stop/tool/input counts, panel size, plan
steps, replans, tool steps, reflection and collaboration rounds, agents. Each answers at once —
every call has a short deadline — with the right code and, for fields, a BadRequest field
violation naming the field and the limit; streams refuse before their first event."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from llmmesh.collaboration.v1 import collaboration_service_pb2 as cpb
from llmmesh.collaboration.v1 import collaboration_service_pb2_grpc as cpb_grpc
from llmmesh.common import generation_options
from llmmesh.common.v1 import common_pb2
from llmmesh.inference import convert
from llmmesh.inference.v1 import inference_service_pb2 as ipb
from llmmesh.inference.v1 import inference_service_pb2_grpc as ipb_grpc
from llmmesh.judge.v1 import judge_service_pb2 as jpb
from llmmesh.judge.v1 import judge_service_pb2_grpc as jpb_grpc
from llmmesh.jury.v1 import jury_service_pb2 as ypb
from llmmesh.jury.v1 import jury_service_pb2_grpc as ypb_grpc
from llmmesh.planexecute.v1 import planexecute_service_pb2 as ppb
from llmmesh.planexecute.v1 import planexecute_service_pb2_grpc as ppb_grpc
from llmmesh.reflection.v1 import reflection_service_pb2 as rpb
from llmmesh.reflection.v1 import reflection_service_pb2_grpc as rpb_grpc
from llmmesh.settings import Settings
from llmmesh.simulator.config import SimulatorConfig
from llmmesh.tooluse.v1 import tooluse_service_pb2 as tpb
from llmmesh.tooluse.v1 import tooluse_service_pb2_grpc as tpb_grpc
from llmmesh.topology.description import SERVICES
from tests.support.rpc import violations

pytestmark = pytest.mark.xdist_group("security_limits")

MAX_MESSAGE = 1024 * 1024
LIMITS = {"max_panel": 3, "max_rounds": 2, "max_steps": 2, "max_plan_steps": 3, "max_replans": 1, "max_agents": 3,
          "max_output_tokens": 64, "max_text_chars": 1000}
DEADLINE_S = 5.0
# A limit must answer well before the deadline: validation, not a timeout.
FAST_S = 2.0
MSG = ipb.Message(role=ipb.ROLE_USER, content="hi")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, max_message_bytes=MAX_MESSAGE)


@pytest.fixture
async def mesh(inference_mesh):
    async with inference_mesh(SimulatorConfig(name="a", models=("m",)), services=tuple(s.name for s in SERVICES),
                              limits=LIMITS) as m:
        yield m


async def refusal(call: Any) -> grpc.aio.AioRpcError:
    """The error a unary call or a stream (consumed) ends with, within FAST_S."""
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        if hasattr(call, "__aiter__"):
            async for event in call:
                raise AssertionError(f"a refused stream sent an event first: {event}")
        else:
            await call
    assert time.monotonic() - started < FAST_S
    return err.value


async def assert_violation(call: Any, field: str, *words: str) -> None:
    found = violations(await refusal(call))
    assert field in found, found
    for word in words:
        assert word in found[field], found[field]


def stream_of(*messages: Any) -> Any:
    return iter(messages)


async def test_the_grpc_message_size_limit_is_resource_exhausted(mesh) -> None:
    huge = "x" * (MAX_MESSAGE + 1024)
    err = await refusal(mesh.stub.Generate(ipb.GenerateRequest(prompt=huge), timeout=DEADLINE_S))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in err.details()
    err = await refusal(mesh.stub.Chat(stream_of(ipb.ChatRequest(turn=ipb.ChatTurn(messages=[
        ipb.Message(role=ipb.ROLE_USER, content=huge)]))), timeout=DEADLINE_S))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    judge = jpb_grpc.JudgeServiceStub(mesh.channel)
    err = await refusal(judge.Evaluate(jpb.EvaluateRequest(question=huge, answer="a"), timeout=DEADLINE_S))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # The server is fine afterwards.
    assert (await mesh.stub.ListModels(ipb.ListModelsRequest(), timeout=DEADLINE_S)).models


async def test_inference_limits(mesh) -> None:
    stub: ipb_grpc.InferenceServiceStub = mesh.stub
    too_long = "x" * (convert.MAX_PROMPT_CHARS + 1)
    await assert_violation(stub.Generate(ipb.GenerateRequest(prompt=too_long), timeout=DEADLINE_S), "prompt",
                           str(convert.MAX_PROMPT_CHARS))
    await assert_violation(stub.Generate(ipb.GenerateRequest(prompt="hi", system=too_long), timeout=DEADLINE_S),
                           "system")
    over = common_pb2.GenerationOptions(max_tokens=generation_options.MAX_OUTPUT_TOKENS + 1)
    await assert_violation(stub.Generate(ipb.GenerateRequest(prompt="hi", options=over), timeout=DEADLINE_S),
                           "options.max_tokens", str(generation_options.MAX_OUTPUT_TOKENS))
    await assert_violation(stub.Generate(ipb.GenerateRequest(prompt="hi", options=common_pb2.GenerationOptions(
        max_tokens=-1)), timeout=DEADLINE_S), "options.max_tokens")
    await assert_violation(stub.Generate(ipb.GenerateRequest(prompt="hi", options=common_pb2.GenerationOptions(
        stop=["s"] * (generation_options.MAX_STOP + 1))), timeout=DEADLINE_S), "options.stop")
    await assert_violation(stub.Generate(ipb.GenerateRequest(prompt="hi", options=common_pb2.GenerationOptions(
        num_ctx=2**31 - 1)), timeout=DEADLINE_S), "options.num_ctx")
    await assert_violation(stub.CompleteChat(ipb.CompleteChatRequest(messages=[MSG] * (convert.MAX_MESSAGES + 1)),
                                             timeout=DEADLINE_S), "messages", str(convert.MAX_MESSAGES))
    long_turns = [ipb.Message(role=ipb.ROLE_USER, content="x" * 100_000)] * 3
    await assert_violation(stub.CompleteChat(ipb.CompleteChatRequest(messages=long_turns), timeout=DEADLINE_S),
                           "messages", "total content")
    await assert_violation(stub.CompleteChat(ipb.CompleteChatRequest(
        messages=[MSG], tools=[ipb.Tool(name=f"t{i}") for i in range(convert.MAX_TOOLS + 1)]), timeout=DEADLINE_S),
        "tools")
    await assert_violation(stub.CompleteChat(ipb.CompleteChatRequest(messages=[MSG], model="m" * 300),
                                             timeout=DEADLINE_S), "model")
    await assert_violation(stub.Embed(ipb.EmbedRequest(inputs=["x"] * (convert.MAX_EMBED_INPUTS + 1)),
                                      timeout=DEADLINE_S), "inputs")
    # The bidi chat reports a refused turn as an error event and goes on.
    turn = ipb.ChatRequest(turn=ipb.ChatTurn(messages=[MSG], options=over))
    events = [e async for e in stub.Chat(stream_of(turn), timeout=DEADLINE_S)]
    assert events[-1].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]


PatternCase = tuple[str, Callable[[Any], Any], str, str]


def _pattern_cases() -> list[PatternCase]:
    text = "x" * (LIMITS["max_text_chars"] + 1)
    opts = common_pb2.GenerationOptions(max_tokens=LIMITS["max_output_tokens"] + 1)
    agents = [cpb.Agent(name=f"a{i}") for i in range(LIMITS["max_agents"] + 1)]
    two = agents[:2]
    judge = jpb_grpc.JudgeServiceStub
    jury = ypb_grpc.JuryServiceStub
    tool = tpb_grpc.ToolUseServiceStub
    plan = ppb_grpc.PlanExecuteServiceStub
    refl = rpb_grpc.ReflectionServiceStub
    collab = cpb_grpc.CollaborationServiceStub
    juror = ypb.Juror(model="m")
    return [
        ("judge text", lambda ch: judge(ch).Evaluate(jpb.EvaluateRequest(question=text, answer="a"),
                                                     timeout=DEADLINE_S), "question", "limit is 1000"),
        ("judge max_tokens", lambda ch: judge(ch).Evaluate(jpb.EvaluateRequest(question="q", answer="a", options=opts),
                                                           timeout=DEADLINE_S), "options.max_tokens", "maximum 64"),
        ("judge stream", lambda ch: judge(ch).EvaluateStream(stream_of(jpb.EvaluateStreamRequest(
            evaluate=jpb.EvaluateRequest(question="q", answer=text))), timeout=DEADLINE_S), "evaluate.answer", "1000"),
        ("jury panel", lambda ch: jury(ch).Evaluate(ypb.EvaluateRequest(question="q", answer="a", panel=[juror] * 4),
                                                    timeout=DEADLINE_S), "panel", "maximum 3"),
        ("jury stream panel", lambda ch: jury(ch).EvaluateStream(stream_of(ypb.EvaluateStreamRequest(
            evaluate=ypb.EvaluateRequest(question="q", answer="a", panel=[juror] * 4))), timeout=DEADLINE_S),
         "evaluate.panel", "maximum 3"),
        ("tool steps", lambda ch: tool(ch).Execute(tpb.ExecuteRequest(prompt="p", max_steps=3), timeout=DEADLINE_S),
         "max_steps", "maximum 2"),
        ("tool prompt", lambda ch: tool(ch).Execute(tpb.ExecuteRequest(prompt=text), timeout=DEADLINE_S),
         "prompt", "1000"),
        ("tool stream steps", lambda ch: tool(ch).ExecuteStream(stream_of(tpb.ExecuteStreamRequest(
            execute=tpb.ExecuteRequest(prompt="p", max_steps=0))), timeout=DEADLINE_S), "execute.max_steps", ""),
        ("plan steps", lambda ch: plan(ch).Run(ppb.RunRequest(goal="g", max_steps=4), timeout=DEADLINE_S),
         "max_steps", "maximum 3"),
        ("plan replans", lambda ch: plan(ch).Run(ppb.RunRequest(goal="g", max_replans=2), timeout=DEADLINE_S),
         "max_replans", "maximum 1"),
        ("plan stream goal", lambda ch: plan(ch).RunStream(stream_of(ppb.RunStreamRequest(
            run=ppb.RunRequest(goal=text))), timeout=DEADLINE_S), "run.goal", "1000"),
        ("reflection rounds", lambda ch: refl(ch).Improve(rpb.ImproveRequest(task="t", max_rounds=3),
                                                          timeout=DEADLINE_S), "max_rounds", "maximum 2"),
        ("reflection stream rounds", lambda ch: refl(ch).ImproveStream(stream_of(rpb.ImproveStreamRequest(
            improve=rpb.ImproveRequest(task="t", max_rounds=2**31 - 1))), timeout=DEADLINE_S), "improve.max_rounds",
         "maximum 2"),
        ("collaboration agents", lambda ch: collab(ch).Run(cpb.RunRequest(
            task="t", agents=agents, strategy=cpb.STRATEGY_ROUND_ROBIN), timeout=DEADLINE_S), "agents", "maximum 3"),
        ("collaboration rounds", lambda ch: collab(ch).Run(cpb.RunRequest(
            task="t", agents=two, strategy=cpb.STRATEGY_DEBATE, rounds=3), timeout=DEADLINE_S), "rounds",
         "maximum 2"),
        ("collaboration stream agents", lambda ch: collab(ch).RunStream(stream_of(cpb.RunStreamRequest(
            run=cpb.RunRequest(task="t", agents=agents, strategy=cpb.STRATEGY_DEBATE))), timeout=DEADLINE_S),
         "run.agents", "maximum 3"),
        ("collaboration max_tokens", lambda ch: collab(ch).Run(cpb.RunRequest(
            task="t", agents=two, strategy=cpb.STRATEGY_DEBATE, options=opts), timeout=DEADLINE_S),
         "options.max_tokens", "maximum 64"),
    ]


@pytest.mark.parametrize("case", _pattern_cases(), ids=lambda c: c[0])
async def test_pattern_limits(mesh, case: PatternCase) -> None:
    _, call, field, words = case
    await assert_violation(call(mesh.channel), field, *([words] if words else []))


async def test_unknown_enum_values_and_empty_streams_are_clear_errors(mesh) -> None:
    collab = cpb_grpc.CollaborationServiceStub(mesh.channel)
    await assert_violation(collab.Run(cpb.RunRequest(task="t", agents=[cpb.Agent(name="a"), cpb.Agent(name="b")],
                                                     strategy=99), timeout=DEADLINE_S), "strategy")
    judge = jpb_grpc.JudgeServiceStub(mesh.channel)
    for first in ([], [jpb.EvaluateStreamRequest()], [jpb.EvaluateStreamRequest(cancel=common_pb2.Cancel())]):
        err = await refusal(judge.EvaluateStream(stream_of(*first), timeout=DEADLINE_S))
        assert err.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.CANCELLED), (first, err)
