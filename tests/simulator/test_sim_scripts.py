"""Scripted responses: matching rules, ``times``, model filters, tool calls, faults, runtime loading."""

from __future__ import annotations

import json

import httpx
import ollama
import pytest
from simtest_helpers import MODEL, MakeClient, StartSim

from llmmesh.simulator import ScriptRule
from llmmesh.simulator.generation import split_words

PARIS = "The capital of France is Paris."


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


async def test_scripted_text_is_streamed_word_by_word(start_sim: StartSim, oc: MakeClient) -> None:
    sim = await start_sim(scripts=(ScriptRule(match="capital of France", response=PARIS),))
    parts = [
        p async for p in await oc(sim).chat(model=MODEL, messages=ask("What is the capital of France?"), stream=True)
    ]
    assert (
        [p.message.content for p in parts[:-1]]
        == split_words(PARIS)
        == ["The", " capital", " of", " France", " is", " Paris."]
    )
    assert parts[-1].done_reason == "stop" and parts[-1].eval_count == 6

    cut = await oc(sim).generate(model=MODEL, prompt="capital of France", options={"num_predict": 2})
    assert cut.response == "The capital" and cut.done_reason == "length"
    other = await oc(sim).generate(model=MODEL, prompt="something else")
    assert other.response != PARIS  # unscripted fallback


async def test_rule_order_times_regex_model_and_target(
    start_sim: StartSim, oc: MakeClient, http: httpx.AsyncClient
) -> None:
    rules = [
        {"match": "regex:(?i)^draft\\b", "response": "first draft", "times": 1},
        {"match": "regex:(?i)^draft\\b", "response": "second draft"},
        {"match": "judge", "response": "llama verdict", "model": "llama3.2:1b"},
        {"match": "judge", "response": "default verdict"},
        {"match": "SYS", "response": "system matched"},
        {"match": "only-last", "response": "last matched", "target": "last"},
    ]
    sim = await start_sim()
    put = await http.put(sim.url + "/_sim/scripts", json={"rules": rules})
    assert put.status_code == 200 and len(put.json()["rules"]) == 6

    async def say(text: str, model: str = MODEL) -> str:
        return (await oc(sim).chat(model=model, messages=ask(text))).message.content or ""

    assert [await say("Draft an essay") for _ in range(3)] == ["first draft", "second draft", "second draft"]
    assert await say("please judge", "llama3.2:1b") == "llama verdict"
    assert await say("please judge") == "default verdict"
    gen = await oc(sim).generate(model=MODEL, prompt="hello", system="SYS prompt")
    assert gen.response == "system matched"  # generate matches system + prompt
    history = [*ask("only-last"), {"role": "assistant", "content": "ok"}, *ask("next")]
    assert await say("only-last") == "last matched"
    assert (await oc(sim).chat(model=MODEL, messages=history)).message.content != "last matched"

    used = [r["used"] for r in (await http.get(sim.url + "/_sim/scripts")).json()["rules"]]
    assert used == [1, 2, 1, 1, 1, 1]
    bad = await http.put(sim.url + "/_sim/scripts", json=[{"match": "regex:("}])
    assert bad.status_code == 400


async def test_scripted_tool_calls_then_answer(start_sim: StartSim, oc: MakeClient) -> None:
    # Rules see the whole conversation, so the follow-up rule (matching the tool output) comes first.
    rules = (
        ScriptRule(match="18 degrees", response="It is 18 degrees in Paris."),
        ScriptRule(
            match="weather",
            tool_calls=({"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},),
        ),
    )
    sim = await start_sim(scripts=rules)
    first = await oc(sim).chat(model=MODEL, messages=ask("weather in Paris?"))
    assert first.message.tool_calls and first.message.tool_calls[0].function.arguments == {"city": "Paris"}
    follow_up = [
        *ask("weather in Paris?"),
        {"role": "assistant", "content": "", "tool_calls": [c.model_dump() for c in first.message.tool_calls]},
        {"role": "tool", "content": "18 degrees"},
    ]
    second = await oc(sim).chat(model=MODEL, messages=follow_up)
    assert second.message.content == "It is 18 degrees in Paris." and not second.message.tool_calls


async def test_scripted_json_with_format_and_scripted_fault(start_sim: StartSim, oc: MakeClient) -> None:
    verdict = {"winner": "a", "score": 9}
    rules = (
        ScriptRule(match="compare", response=json.dumps(verdict)),
        ScriptRule(match="flaky", response="never sent", fault="status=503"),
    )
    sim = await start_sim(scripts=rules)
    schema = {"type": "object", "properties": {"winner": {"type": "string"}, "score": {"type": "integer"}}}
    reply = await oc(sim).chat(model=MODEL, messages=ask("compare a and b"), format=schema)
    assert json.loads(reply.message.content or "") == verdict
    with pytest.raises(ollama.ResponseError) as err:
        await oc(sim).chat(model=MODEL, messages=ask("flaky one"))
    assert err.value.status_code == 503
