"""The quality benchmark's own parts, without a model: the task set loads and covers every pattern
(and the README's examples), the checks tell a usable result from a useless one, and a REST answer
(JSON, Server-Sent Events, or a google.rpc.Status) becomes the right outcome."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from scripts.bench.quality import taskset
from scripts.bench.quality.calls import run_task
from scripts.bench.quality.checks import check, mentions_number, text_problem

TASKS = taskset.load()
# Which labels make sense for which pattern.
LABELS = {"judge": {"verdict", "winner"}, "jury": {"verdict"}, "tooluse": {"tool", "number", "echo"},
          "planexecute": {"number", "tool"}, "reflection": set(), "collaboration": set()}


def task(key: str) -> taskset.Task:
    return next(t for t in TASKS if t.key == key)


def test_the_task_set_has_tens_of_tasks_per_pattern_with_sensible_labels() -> None:
    for pattern in taskset.PATTERNS:
        mine = [t for t in TASKS if t.pattern == pattern]
        assert len(mine) >= 20, (pattern, len(mine))
        for t in mine:
            assert set(t.expect) <= LABELS[pattern], t
            assert isinstance(t.body, dict) and t.body, t
    arithmetic = [t for t in TASKS if "arithmetic" in t.tags]
    assert len(arithmetic) >= 20 and all(t.expect.get("tool") == "calculator" for t in arithmetic)
    judge = [t for t in TASKS if t.pattern == "judge"]
    assert {t.expect.get("verdict") for t in judge} >= {"pass", "fail"}
    assert {t.expect.get("winner") for t in judge} >= {"a", "b"}


def test_every_pattern_has_readme_examples_and_they_parse() -> None:
    readme = taskset.readme_tasks()
    assert {t.pattern for t in readme} == set(taskset.PATTERNS), [t.key for t in readme]
    for t in readme:
        assert t.request and isinstance(t.request, dict), t
        assert t.route.startswith(taskset.ROUTES[t.pattern]), t


def test_select_limits_per_pattern_or_takes_exact_keys() -> None:
    chosen = taskset.select(TASKS, ["judge", "tooluse"], limit=3)
    assert [t.pattern for t in chosen] == ["judge"] * 3 + ["tooluse"] * 3
    assert [t.key for t in taskset.select(TASKS, ids=["tooluse/mul-17-23"])] == ["tooluse/mul-17-23"]
    with pytest.raises(ValueError, match="unknown task keys"):
        taskset.select(TASKS, ids=["judge/nope"])


@pytest.mark.parametrize("text", ["", "  ", "winner", "Answer.", "<answer>", '{"answer": "Paris"}',
                                  "Your Favorite Bakery. " * 12,
                                  " ".join(f"{i}. The best bakery in town" for i in range(1, 15))])
def test_useless_answers_are_rejected(text: str) -> None:
    assert text_problem("answer", text)


@pytest.mark.parametrize("text", ["Paris is the capital of France.", "17 * 23 = 391",
                                  "Fresh bread every morning, baked with love in the heart of town."])
def test_usable_answers_are_accepted(text: str) -> None:
    assert text_problem("answer", text) == ""


def test_numbers_are_found_whatever_their_format() -> None:
    assert mentions_number("17 x 23 = 391.", 391)
    assert mentions_number("The sum is 1,368", 1368) and mentions_number("It is 391.0", 391)
    assert not mentions_number("17 x 23 = 381.", 391)


def tool_result(answer: str, outputs: dict[str, str]) -> dict[str, Any]:
    calls = [{"call_id": f"c{i}", "name": name} for i, name in enumerate(outputs)]
    results = [{"call_id": f"c{i}", "name": name, "output": out} for i, (name, out) in enumerate(outputs.items())]
    return {"answer": answer, "calls": calls, "results": results, "stop_reason": "STOP_REASON_ANSWERED"}


def test_tool_use_is_correct_only_through_the_tool() -> None:
    t = task("tooluse/mul-17-23")
    through = check(t, tool_result("17 * 23 = 391", {"calculator": "391"}))
    assert through.success and through.correct
    guessed = check(t, tool_result("17 * 23 = 391", {}))
    assert guessed.success and guessed.correct is False and "no successful calculator call" in guessed.misses[0]
    wrong_call = check(t, tool_result("It is 391", {"calculator": "381"}))
    assert wrong_call.correct is False
    assert not check(t, {**tool_result("391", {}), "stop_reason": "STOP_REASON_MAX_STEPS"}).success


def test_the_clock_answer_must_repeat_the_clock() -> None:
    t = task("tooluse/clock-tokyo")
    out = json.dumps({"datetime": "2026-01-01T21:05:00+09:00", "timezone": "Asia/Tokyo", "weekday": "Thursday"})
    assert check(t, tool_result("It is 21:05 in Tokyo.", {"clock": out})).correct
    assert check(t, tool_result("It is 9:05 PM in Tokyo.", {"clock": out})).correct
    assert check(t, tool_result("It is noon in Tokyo.", {"clock": out})).correct is False


def test_judge_verdicts_are_checked_against_the_labels() -> None:
    result = {"judge": "m", "verdict": "VERDICT_PASS", "score": 5, "min_score": 1, "max_score": 5,
              "reasoning": "Paris is right."}
    assert check(task("judge/paris-pass"), result).correct
    assert check(task("judge/paris-lyon-fail"), result).correct is False
    assert not check(task("judge/paris-pass"), {**result, "score": 9}).success
    pair = {"judge": "m", "verdict": "VERDICT_A", "score": 1, "pairwise": {"orders": [
        {"order": "a,b", "winner": "VERDICT_A", "reasoning": "4 is right."},
        {"order": "b,a", "winner": "VERDICT_A", "reasoning": "4 is right."}]}}
    assert check(task("judge/pair-sum"), pair).correct
    assert check(task("judge/pair-italy"), pair).correct is False


def debate(answer: str, winner: str = "alice") -> dict[str, Any]:
    return {"answer": answer, "strategy": "STRATEGY_DEBATE", "verdict": {"winner": winner, "rationale": "Clearer."},
            "transcript": [{"agent": "alice", "round": 1, "content": "Yes, 7 is prime: only 1 and 7 divide it."},
                           {"agent": "bob", "round": 1, "content": "No."}]}


def test_a_debate_answers_with_the_winning_argument() -> None:
    t = task("collaboration/debate-prime")
    assert check(t, debate("Yes, 7 is prime: only 1 and 7 divide it.")).success
    assert not check(t, debate("alice")).success
    assert not check(t, debate("winner")).success
    assert not check(t, debate("Yes, 7 is prime: only 1 and 7 divide it.", winner="")).success


def client(handler: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url="http://mesh", transport=httpx.MockTransport(handler))


async def test_an_error_status_becomes_the_outcome_with_its_reason() -> None:
    status = {"code": 14, "message": "malformed structured output from 'smollm2:135m'", "details": [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "MALFORMED_MODEL_OUTPUT",
         "domain": "llmmesh", "metadata": {}}]}
    async with client(lambda req: httpx.Response(503, json=status)) as c:
        o = await run_task(c, task("judge/paris-pass"))
    assert not o.success and o.correct is False and o.check is None
    assert o.error is not None and (o.error.code, o.error.reason) == ("UNAVAILABLE", "MALFORMED_MODEL_OUTPUT")


async def test_a_streamed_example_is_judged_by_its_terminal_result() -> None:
    t = next(t for t in taskset.readme_tasks() if t.pattern == "tooluse" and t.streaming)
    result = tool_result("65536", {"calculator": "65536"})
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in ({"tool_call": result["calls"][0]}, {"result": result}))

    def answer(req: httpx.Request) -> httpx.Response:
        assert req.url.path.endswith(":stream") and isinstance(json.loads(req.content), list)
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    async with client(answer) as c:
        o = await run_task(c, t)
    assert o.success and o.result == result, o.why()
