"""The tool loop without a server (a fake model client): prompted tool calls under the tool-call
schema, the answer's repair, the switch from native calls a backend refuses, and the context
window."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from google.rpc import code_pb2, status_pb2

from llmmesh.common.model_call import Sampling, ToolCallData
from llmmesh.framework.errors import TOOLS_UNSUPPORTED, FieldViolation, InvalidArgument, to_status
from llmmesh.framework.validation import Violations
from llmmesh.patterns.json_budget import token_budget
from llmmesh.patterns.model_client import RemoteError
from llmmesh.patterns.model_info import ModelInfo, model_info, prime
from llmmesh.settings import PatternLimits
from llmmesh.tools.calculator import Calculator
from llmmesh.tools.registry import ToolRegistry
from llmmesh.tooluse.events import (
    AnswerToken,
    StopReason,
    ToolCalled,
    ToolCalling,
    ToolReturned,
    ToolUseEvent,
    ToolUseResult,
)
from llmmesh.tooluse.request import ToolChoice, ToolUseRequest
from llmmesh.tooluse.run import run
from tests.support.fake_model import Call, FakeModelClient, Reply

MODEL = "fake:1b"


def call(name: str, **arguments: Any) -> str:
    return json.dumps({"action": name, "arguments": arguments})


def answer(text: str) -> str:
    return json.dumps({"action": "final_answer", "answer": text})


def actions(schema: dict[str, Any]) -> set[str]:
    """The actions a step's schema allows."""
    alternatives = schema.get("anyOf", [schema])
    return {a["properties"]["action"]["const"] for a in alternatives}


async def spec(prompt: str = "What is 17 * 23?", tools: tuple[str, ...] = ("calculator",), max_steps: int = 5,
               tool_choice: ToolChoice = ToolChoice.DEFAULT) -> ToolUseRequest:
    toolset = await ToolRegistry(PatternLimits(), grpc_targets=()).select(list(tools), "tools", Violations())
    return ToolUseRequest(prompt, "", "", toolset, max_steps, Sampling(), tool_choice)


def client(*replies: Reply | str, native: bool = False, window: int = 4096) -> FakeModelClient:
    fake = FakeModelClient(replies, model=MODEL)
    prime(fake, ModelInfo(MODEL, window, native))
    return fake


async def events(fake: FakeModelClient, req: ToolUseRequest) -> list[ToolUseEvent]:
    return [e async for e in run(fake, req)]


def result(evs: list[ToolUseEvent]) -> ToolUseResult:
    assert isinstance(evs[-1], ToolUseResult)
    return evs[-1]


async def test_a_prompted_call_runs_the_tool_and_the_answer_follows_its_result() -> None:
    fake = client(call("calculator", expression="17 * 23"), answer("17 * 23 = 391"))
    evs = await events(fake, await spec())
    assert [type(e) for e in evs] == [ToolCalled, ToolReturned, AnswerToken, ToolUseResult]
    r = result(evs)
    assert (r.answer, r.stop_reason, r.steps, r.tool_calling, r.model) == (
        "17 * 23 = 391", StopReason.ANSWERED, 2, ToolCalling.PROMPTED, MODEL)
    assert [(c.name, c.arguments, c.call_id) for c in r.calls] == [("calculator", {"expression": "17 * 23"}, "call_1")]
    assert [o.output for o in r.results] == ["391"]
    assert evs[2] == AnswerToken("17 * 23 = 391") and len(fake.calls) == 2 == r.usage.model_calls
    first, second = fake.calls
    # The first turn must call a tool; the second may answer. No native tools are sent.
    assert actions(first.json_schema) == {"calculator"} and first.tools == ()
    assert actions(second.json_schema) == {"calculator", "final_answer"}
    assert second.sampling.max_tokens <= token_budget(second.json_schema)
    # The worked example comes before the question; the result is read back to the model.
    texts = [m.content for m in first.messages]
    assert "calculator" in texts[0] and "(2 + 3) * 4" in texts[2] and texts[-1] == "What is 17 * 23?"
    assert second.messages[-2].content == call("calculator", expression="17 * 23")
    assert second.messages[-1].content.startswith("calculator returned: 391\n")


async def test_an_answer_that_contradicts_the_tool_is_repaired_once() -> None:
    fake = client(call("calculator", expression="17 * 23"), answer("17 * 23 = 378"), answer("It is 391."))
    r = result(await events(fake, await spec()))
    assert r.answer == "It is 391." and len(fake.calls) == 3
    repair = fake.calls[2].messages
    assert repair[-2].content == answer("17 * 23 = 378")
    assert "calculator returned 391, but the answer states another number" in repair[-1].content
    assert fake.calls[2].sampling.temperature  # a repair leaves greedy decoding


async def test_the_numeric_rule_is_advisory_the_models_second_answer_stands() -> None:
    fake = client(call("calculator", expression="17 * 23"), answer("378"), answer("About 378."))
    r = result(await events(fake, await spec()))
    assert (r.answer, r.stop_reason, len(fake.calls)) == ("About 378.", StopReason.ANSWERED, 3)


@pytest.mark.parametrize("said, rounded_ok", [("pi is about 3.14", True), ("pi is 4", False), ("Here it is.", True)])
async def test_rounded_or_wordy_answers_pass_the_numeric_rule(said: str, rounded_ok: bool) -> None:
    fake = client(call("calculator", expression="pi"), answer(said), answer("3.14159"))
    r = result(await events(fake, await spec("What is pi?")))
    assert r.answer == (said if rounded_ok else "3.14159")


@pytest.mark.parametrize("junk, problem", [("...", "placeholder"), ("); } 72; {", "not readable")])
async def test_a_placeholder_or_debris_is_never_the_answer(junk: str, problem: str) -> None:
    fake = client(call("calculator", expression="2 ** 16"), answer(junk), answer("2 ** 16 = 65536"))
    r = result(await events(fake, await spec("What is 2 ** 16?")))
    assert r.answer == "2 ** 16 = 65536"
    assert problem in fake.calls[2].messages[-1].content


async def test_tool_turns_are_greedy_unless_the_caller_chose_a_temperature() -> None:
    fake = client(call("calculator", expression="1+1"), answer("2"))
    await events(fake, await spec("What is 1+1?"))
    assert [c.sampling.temperature for c in fake.calls] == [0.0, 0.0]
    fake = client(call("calculator", expression="1+1"), answer("2"))
    req = await spec("What is 1+1?")
    await events(fake, dataclasses.replace(req, sampling=Sampling(temperature=0.7)))
    assert [c.sampling.temperature for c in fake.calls] == [0.7, 0.7]


async def test_a_repeated_call_or_the_last_step_may_only_answer() -> None:
    fake = client(call("calculator", expression="1+1"), call("calculator", expression="1+1"), answer("2"))
    r = result(await events(fake, await spec("What is 1+1?")))
    shown = 2 + 4 * len(Calculator.examples)  # the system prompt, each worked example's 4 turns, the prompt
    assert [len(c.messages) for c in fake.calls] == [shown, shown + 2, shown + 4]  # + each call and its result
    assert actions(fake.calls[2].json_schema) == {"final_answer"}
    assert (r.answer, len(r.calls), r.steps) == ("2", 2, 3)

    fake = client(call("calculator", expression="1+1"), answer("2"))
    await events(fake, await spec("What is 1+1?", max_steps=2))
    assert actions(fake.calls[1].json_schema) == {"final_answer"}

    # Without a result, a repeated failing call is no reason to force an answer (it would be made up).
    fake = client(call("calculator", expression="1 x 1"), call("calculator", expression="1 x 1"),
                  call("calculator", expression="1 * 1"), answer("1"))
    r = result(await events(fake, await spec("What is 1 x 1?")))
    assert actions(fake.calls[2].json_schema) == {"calculator", "final_answer"} and r.answer == "1"


async def test_auto_lets_the_first_turn_answer_and_one_step_that_calls_ends_at_max_steps() -> None:
    fake = client(answer("Paris"))
    r = result(await events(fake, await spec("Capital of France?", tool_choice=ToolChoice.AUTO)))
    assert (r.answer, r.calls, r.steps) == ("Paris", (), 1)
    assert actions(fake.calls[0].json_schema) == {"calculator", "final_answer"}

    fake = client(call("calculator", expression="6*7"))
    r = result(await events(fake, await spec(max_steps=1)))
    assert (r.stop_reason, r.answer, [o.output for o in r.results]) == (StopReason.MAX_STEPS, "", ["42"])


async def test_a_call_that_drops_a_number_of_the_question_is_repaired_once() -> None:
    fake = client(call("calculator", expression="3 + 5"), call("calculator", expression="(3 + 5) * 12"), answer("96"))
    r = result(await events(fake, await spec("What is (3 + 5) * 12?")))
    assert ([c.arguments for c in r.calls], r.answer) == ([{"expression": "(3 + 5) * 12"}], "96")
    assert "the arguments leave out 12 from the question" in fake.calls[1].messages[-1].content

    # Advisory: a call without the question's numbers the second time is run as the model wrote it.
    fake = client(call("calculator", expression="2 ** 2"), call("calculator", expression="4"), answer("4"))
    r = result(await events(fake, await spec("What is 2 squared, in 2024?")))
    assert [c.arguments for c in r.calls] == [{"expression": "4"}] and r.answer == "4"
    # Arguments without numbers (a time zone) say nothing about the question's numbers.
    fake = client(call("clock", timezone="Asia/Tokyo"), answer("It is 2025-01-01T09:00:00+09:00."))
    await events(fake, await spec("What time is it in Tokyo, in 24-hour format?", tools=("clock",)))
    assert len(fake.calls) == 2


async def test_repeating_the_call_that_just_failed_is_repaired_with_another_seed() -> None:
    fake = client(call("clock", timezone="Mars/Olympus"), call("clock", timezone="Mars/Olympus"),
                  call("clock", timezone="Asia/Tokyo"), answer("It is 2025-01-01T09:00:00+09:00."))
    r = result(await events(fake, await spec("What time is it in Tokyo?", tools=("clock",))))
    assert [c.arguments["timezone"] for c in r.calls] == ["Mars/Olympus", "Asia/Tokyo"]
    repair = fake.calls[2]
    assert "that is the call that just failed (ERROR INVALID_ARGUMENT: unknown time zone" in repair.messages[-1].content
    assert repair.sampling.seed != fake.calls[1].sampling.seed and repair.sampling.temperature


async def test_tool_errors_are_read_back_and_the_model_can_retry() -> None:
    fake = client(call("calculator", expression="17 x 23"), call("calculator", expression="17 * 23"), answer("391"))
    r = result(await events(fake, await spec()))
    assert [o.error is not None for o in r.results] == [True, False] and r.answer == "391"
    assert fake.calls[1].messages[-1].content.startswith("calculator failed: ERROR INVALID_ARGUMENT")


async def test_several_tools_each_get_their_own_arguments_schema() -> None:
    fake = client(call("clock", timezone="Asia/Tokyo"), answer("It is 09:00 in Tokyo."))
    r = result(await events(fake, await spec("What time is it in Tokyo?", tools=("calculator", "clock"))))
    assert json.loads(r.results[0].output)["timezone"] == "Asia/Tokyo"
    alternatives = {a["properties"]["action"]["const"]: a for a in fake.calls[1].json_schema["anyOf"]}
    assert alternatives["clock"]["properties"]["arguments"]["properties"]["timezone"]["maxLength"] == 120
    expression = alternatives["calculator"]["properties"]["arguments"]["properties"]["expression"]
    assert expression["pattern"] == "^[-+*/%()., 0-9a-z]{1,200}$"  # a grammar bounds it, not maxLength


def refusing(call_: Call) -> Reply | str:
    if call_.tools:
        # What the inference service says when a backend refuses tools: the reason, not only words.
        refusal = f"backend b rejected the request: {MODEL} does not support tools"
        raise RemoteError(to_status(InvalidArgument([FieldViolation("request", refusal)], refusal,
                                                    reason=TOOLS_UNSUPPORTED)))
    answered = call_.messages[-1].content.startswith("calculator returned: 42")
    return answer("42") if answered else call("calculator", expression="6 * 7")


async def test_a_backend_that_refuses_native_tools_gets_prompted_calls_and_the_client_remembers() -> None:
    fake = FakeModelClient(reply=refusing, model=MODEL)
    prime(fake, ModelInfo(MODEL, 4096, native_tools=True))
    r = result(await events(fake, await spec("What is 6 * 7?")))
    assert (r.answer, r.tool_calling, r.steps) == ("42", ToolCalling.PROMPTED, 2)
    assert [bool(c.tools) for c in fake.calls] == [True, False, False]
    assert (await model_info(fake, "")).native_tools is False
    await events(fake, await spec("What is 6 * 7?"))
    assert not any(c.tools for c in fake.calls[3:])  # the next run starts prompted


async def test_other_errors_of_a_native_turn_are_not_swallowed() -> None:
    def failing(call_: Call) -> Reply:
        raise RemoteError(status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message="prompt too long"))
    fake = FakeModelClient(reply=failing, model=MODEL)
    prime(fake, ModelInfo(MODEL, 4096, native_tools=True))
    with pytest.raises(RemoteError, match="prompt too long"):
        await events(fake, await spec())


async def test_native_calls_stream_the_answer_and_report_native() -> None:
    fake = client(Reply(tool_calls=(ToolCallData("call_0", "calculator", {"expression": "6*7"}),)),
                  "The answer is 42.", native=True)
    evs = await events(fake, await spec("What is 6*7?"))
    r = result(evs)
    assert (r.answer, r.tool_calling) == ("The answer is 42.", ToolCalling.NATIVE)
    assert [o.output for o in r.results] == ["42"]
    assert "".join(e.text for e in evs if isinstance(e, AnswerToken)) == r.answer
    assert fake.calls[0].tools[0].name == "calculator" and fake.calls[0].json_schema is None
    assert [m.role for m in fake.calls[1].messages] == ["system", "user", "assistant", "tool"]


async def test_a_long_tool_output_is_clipped_to_the_window_and_a_long_prompt_is_the_callers() -> None:
    fake = client(call("calculator", expression="10 ** 1200"), answer("done"), window=1024)
    r = result(await events(fake, await spec("What is 10 ** 1200?", max_steps=3)))
    assert r.answer == "done" and len(r.results[0].output) == 1201  # the caller gets the whole output
    read_back = fake.calls[1].messages[-1].content
    assert " […]\n" in read_back and len(read_back) < 800  # the model reads what fits
    assert fake.calls[1].messages[1].content == "What is 10 ** 1200?"  # worked examples left out first

    fake = client(answer("never"), window=1024)
    with pytest.raises(InvalidArgument) as err:
        await events(fake, await spec("x " * 5000))
    assert [v.field for v in err.value.violations] == ["prompt"]
