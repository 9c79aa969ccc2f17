"""The calculator, the clock, and what the registry guarantees for every tool: schema-checked
arguments, a timeout, an output cap, and failures reported instead of raised."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import zoneinfo
from datetime import datetime
from typing import Any

import pytest

from llmmesh.framework.validation import Violations
from llmmesh.settings import PatternLimits
from llmmesh.tools.base import BUILTIN, ToolError, ToolOutcome
from llmmesh.tools.calculator import Calculator
from llmmesh.tools.registry import ToolRegistry, ToolSet


async def run(name: str, arguments: Any, limits: PatternLimits | None = None) -> ToolOutcome:
    registry = ToolRegistry(limits or PatternLimits())
    tools = await registry.select([], "tools", Violations())
    return await tools.call(name, arguments, "c1")


@pytest.mark.parametrize(("expression", "expected"), [
    ("2+2", "4"),
    ("(2 + 3) * 4 - 6 / 3", "18.0"),
    ("7 // 2 + 7 % 3", "4"),
    ("-2 ** 2", "-4"),
    ("+3 - -3", "6"),
    ("2 ** 100", str(2**100)),
    ("sqrt(16) + abs(-1)", "5.0"),
    ("round(pi, 3)", "3.142"),
    ("max(1, 5, 3) - min(4, 2)", "3"),
    ("log(e) + log10(1000) + log(8, 2)", "7.0"),
    ("floor(2.7) + ceil(2.1)", "5"),
    ("cos(0) + sin(0)", "1.0"),
])
async def test_calculator_computes(expression: str, expected: str) -> None:
    out = await run("calculator", {"expression": expression})
    assert (out.output, out.error) == (expected, None)


@pytest.mark.parametrize(("expression", "why"), [
    ("__import__('os')", "unknown function '__import__'"),
    ("__import__('os').system('true')", "unknown function 'Attribute'"),
    ("(1).real", "unsupported syntax: Attribute"),
    ("().__class__.__bases__", "unsupported syntax: Attribute"),
    ("open('/etc/passwd')", "unknown function 'open'"),
    ("x + 1", "unknown name 'x'"),
    ("sqrt.__doc__", "unsupported syntax: Attribute"),
    ("9**9**9", "power too large"),
    ("2**10000", "power too large"),
    ("10**1000 * 10**1000", "product too large"),
    ("2.0 ** 100000", "exponent too large"),
    ("round(5, -10**9)", "ndigits"),
    ("lambda: 1", "unsupported syntax: Lambda"),
    ("[1, 2]", "unsupported syntax: List"),
    ("'a' * 3", "unsupported literal"),
    ("True + 1", "unsupported literal"),
    ("1j", "unsupported literal"),
    ("1 if 2 else 3", "unsupported syntax: IfExp"),
    ("max(*[1])", "positional arguments only"),
    ("1/0", "division by zero"),
    ("(-8) ** 0.5", "not a real number"),
    ("1e308 * 10", "not a finite number"),
    ("exp(1000)", "math error"),
    ("1 +", "not an arithmetic expression"),
    ("+".join(["1"] * 150), "too complex"),
])
async def test_calculator_refuses_escapes_and_explosions(expression: str, why: str) -> None:
    # The evaluator itself, behind the schema (which already refuses most of these characters).
    with pytest.raises(ToolError) as err:
        await Calculator().call({"expression": expression})
    assert err.value.code == "INVALID_ARGUMENT" and why in err.value.message, err.value


@pytest.mark.parametrize(("expression", "why"), [
    ("1" + "+1" * 300, "is too long"),  # the schema bounds the length
    ("__import__('os')", "does not match"),  # and admits only what arithmetic is written with
    ("1234 + 5678 = 6912", "does not match"),
])
async def test_calculator_schema_refuses_what_is_not_an_expression(expression: str, why: str) -> None:
    out = await run("calculator", {"expression": expression})
    assert out.output == "" and out.error is not None
    assert out.error.code == "INVALID_ARGUMENT" and why in out.error.message, out.error


async def test_huge_powers_are_refused_without_computing_them() -> None:
    # Computing 9**9**9 would take minutes and gigabytes: an answer at all shows it was not computed.
    out = await run("calculator", {"expression": "9**9**9**9"})
    assert out.error is not None and "too large" in out.error.message


async def test_clock_in_a_time_zone_is_iso_8601_with_that_offset() -> None:
    out = await run("clock", {"timezone": "Asia/Kolkata"})
    value = json.loads(out.output)
    stamp = datetime.fromisoformat(value["datetime"])
    assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 5.5 * 3600
    assert value["timezone"] == "Asia/Kolkata" and value["weekday"] == stamp.strftime("%A")
    paris = datetime.fromisoformat(json.loads((await run("clock", {"timezone": "Europe/Paris"})).output)["datetime"])
    assert paris.utcoffset() == datetime.now(zoneinfo.ZoneInfo("Europe/Paris")).utcoffset()
    utc = json.loads((await run("clock", {})).output)
    assert utc["datetime"].endswith("+00:00") and utc["timezone"] == "UTC"
    assert abs(utc["unix"] - datetime.now().timestamp()) < 60


@pytest.mark.parametrize("tz", ["Mars/Olympus", "../../etc/passwd", "Europe"])
async def test_clock_refuses_unknown_time_zones(tz: str) -> None:
    out = await run("clock", {"timezone": tz})
    assert out.error is not None and out.error.code == "INVALID_ARGUMENT"


async def test_a_wrong_time_zone_is_answered_with_the_nearest_real_ones() -> None:
    out = await run("clock", {"timezone": "Asia/Tokio"})
    assert out.error is not None and "did you mean Asia/Tokyo" in out.error.message
    # A name a model ran on past is read as the zone it begins with, and the output says so.
    read = json.loads((await run("clock", {"timezone": "Asia/Tokyo_Nepal_Bangalore-Bang"})).output)
    assert read["timezone"] == "Asia/Tokyo"
    # The schema admits IANA names as written, not a name the model ran on from.
    assert "does not match" in (await run("clock", {"timezone": "Asia/Tokyo_2023_12_28T00Z"})).error.message
    for name in ("America/Argentina/Buenos_Aires", "Europe/Isle_of_Man", "Etc/GMT+9", "UTC", "Japan"):
        assert (await run("clock", {"timezone": name})).error is None, name


@pytest.mark.parametrize(("arguments", "where"), [
    ({}, "<root>: 'expression' is a required property"),
    ({"expression": 5}, "at expression: 5 is not of type 'string'"),
    ({"expression": "1", "extra": True}, "Additional properties"),
    ("2+2", "must be a JSON object"),
])
async def test_arguments_are_checked_against_the_schema_before_the_call(arguments: Any, where: str) -> None:
    out = await run("calculator", arguments)
    assert out.error is not None and out.error.code == "INVALID_ARGUMENT" and where in out.error.message


class Slow:
    name, description, source = "slow", "sleeps", BUILTIN
    parameters: dict[str, Any] = {"type": "object"}

    async def call(self, arguments: dict[str, Any]) -> str:
        await asyncio.sleep(30)
        return "never"


class Chatty:
    name, description, source = "chatty", "talks", BUILTIN
    parameters: dict[str, Any] = {"type": "object"}

    async def call(self, arguments: dict[str, Any]) -> str:
        return "x" * 1000


class Broken:
    name, description, source = "broken", "fails", BUILTIN
    parameters: dict[str, Any] = {"type": "object"}

    async def call(self, arguments: dict[str, Any]) -> str:
        raise RuntimeError("secret internals")


async def test_timeout_output_cap_and_crashes_become_results() -> None:
    limits = PatternLimits(tool_timeout_s=0.2, tool_output_chars=100)
    tools = ToolSet(ToolRegistry(limits), {t.name: t for t in (Slow(), Chatty(), Broken())})
    slow, chatty, broken, unknown = await asyncio.gather(
        tools.call("slow", {}, "a"), tools.call("chatty", {}, "b"), tools.call("broken", {}, "c"),
        tools.call("calculator", {"expression": "1"}, "d"))
    assert slow.error is not None and slow.error.code == "DEADLINE_EXCEEDED" and "0.2s" in slow.error.message
    assert (chatty.output, chatty.truncated, chatty.error) == ("x" * 100, True, None)
    assert chatty.for_model().endswith("[output truncated]")
    assert broken.error is not None and broken.error.code == "INTERNAL"
    assert "secret" not in broken.error.message  # exception text stays in the server log
    # Only the tools selected for the run can be called.
    assert unknown.error is not None and unknown.error.code == "NOT_FOUND"
    assert [o.call_id for o in (slow, chatty, broken, unknown)] == ["a", "b", "c", "d"]


async def test_select_reports_unknown_and_repeated_names_and_defaults_to_builtins() -> None:
    registry = ToolRegistry(PatternLimits())
    v = Violations()
    chosen = await registry.select(["clock", "bogus", "clock"], "run.tools", v)
    assert [(x.field, "bogus" in x.description or "twice" in x.description) for x in v.items] == [
        ("run.tools[1]", True), ("run.tools[2]", True)]
    assert list(chosen.tools) == ["clock"]
    everything = await registry.select([], "tools", Violations())
    assert [d.name for d in everything.defs] == ["calculator", "clock", "http_get"]
    assert math.isclose(float((await everything.call("calculator", {"expression": "tau/2"})).output), math.pi)


async def test_the_worked_examples_are_true() -> None:
    # Shown to small models as earlier turns, so they must be calls the tool accepts, and the
    # calculator's must show what it really returns.
    registry = ToolRegistry(dataclasses.replace(PatternLimits(), http_tool_allow=("status.example.com",)))
    assert not ToolRegistry(PatternLimits()).builtins["http_get"].examples  # disabled: nothing to show
    for tool in registry.builtins.values():
        assert tool.examples, tool.name
        for example in tool.examples:
            assert not list(registry.validator(tool).iter_errors(example.arguments)), example
    for example in registry.builtins["calculator"].examples:
        assert await Calculator().call(example.arguments) == example.output and example.output in example.answer
    (clock,) = registry.builtins["clock"].examples
    shown, real = json.loads(clock.output), json.loads((await run("clock", clock.arguments)).output)
    assert shown.keys() == real.keys() and shown["datetime"] in clock.answer
