"""Pure parts: fault specs, schema instances, token limits, keep_alive."""

from __future__ import annotations

import random
from typing import Any, Literal

import pydantic
import pytest
from simtest_jsonschema import validate

from llmmesh.simulator import FaultSpec, parse_fault_spec
from llmmesh.simulator.faults import FaultSpecError, InstanceFaults, format_fault_spec
from llmmesh.simulator.generation import apply_limits, split_words
from llmmesh.simulator.models import parse_keep_alive
from llmmesh.simulator.schema_instance import SchemaError, schema_instance


def test_fault_spec_parsing_round_trip_and_merge() -> None:
    spec = parse_fault_spec(" delay_ms=5, drop_after=3 ,busy, health=down, rate=0.25 ")
    assert spec == FaultSpec(delay_ms=5, drop_after=3, busy=True, health="down", rate=0.25)
    assert parse_fault_spec(format_fault_spec(spec)) == spec
    assert parse_fault_spec("hang") == FaultSpec(hang_after=0)
    assert parse_fault_spec("drop") == FaultSpec(drop_after=0)
    assert parse_fault_spec("") == FaultSpec() and FaultSpec().is_empty()
    assert spec.merge(parse_fault_spec("delay_ms=9")).delay_ms == 9
    assert spec.merge(parse_fault_spec("delay_ms=9")).drop_after == 3
    for bad in ("status=42", "delay_ms=-1", "nonsense", "health=sideways", "rate=2", "times=0", "x=1"):
        with pytest.raises(FaultSpecError):
            parse_fault_spec(bad)


def test_instance_fault_times_clears_itself() -> None:
    faults = InstanceFaults(parse_fault_spec("status=500,times=2"))
    assert [faults.take().status for _ in range(3)] == [500, 500, None]
    assert faults.spec.is_empty()


def test_apply_limits_and_split_words() -> None:
    tokens = [" a", " bb", " cc", " d"]
    assert apply_limits(tokens, None, ()) == (tokens, "stop")
    assert apply_limits(tokens, 2, ()) == ([" a", " bb"], "length")
    assert apply_limits(tokens, -1, ()) == (tokens, "stop")
    assert apply_limits(tokens, None, ("c",)) == ([" a", " bb", " "], "stop")  # cut inside a token
    assert apply_limits(tokens, 2, ("cc",)) == ([" a", " bb"], "length")  # stop text never produced
    assert "".join(split_words("  Hi  there.\n")) == "  Hi  there.\n"


def test_keep_alive_parsing() -> None:
    assert parse_keep_alive(None) == 300
    assert parse_keep_alive("1h30m") == 5400
    assert parse_keep_alive("10s") == 10 and parse_keep_alive(0) == 0 and parse_keep_alive("0") == 0
    assert parse_keep_alive(-1) is None and parse_keep_alive("-1m") is None


class Address(pydantic.BaseModel):
    street: str
    zip_code: str = pydantic.Field(min_length=5, max_length=5)


class Verdict(pydantic.BaseModel):
    winner: Literal["a", "b", "tie"]
    score: int = pydantic.Field(ge=1, le=10)
    confidence: float = pydantic.Field(gt=0, lt=1)
    reasons: list[str] = pydantic.Field(min_length=2)
    address: Address | None = None
    history: list[Address] = []
    tags: dict[str, int] = {}


def test_schema_instance_satisfies_pydantic_models() -> None:
    schema = Verdict.model_json_schema()  # uses $defs, $ref, anyOf-with-null, exclusive bounds
    for seed in range(20):
        instance = schema_instance(schema, seed=seed)
        Verdict.model_validate(instance)  # an independent validator
        validate(instance, schema)
    assert schema_instance(schema, seed=3) == schema_instance(schema, seed=3)
    with pytest.raises(SchemaError):
        schema_instance({"type": "integer", "minimum": 5, "maximum": 1})


def random_schema(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    """A random schema from the supported subset (a small home-made fuzzer)."""
    kind = rng.choice(["object", "array"] if depth == 0 else ["leaf"] * 3 + ["object", "array"] * (depth < 3))
    if kind == "object":
        props = {f"p{i}": random_schema(rng, depth + 1) for i in range(rng.randint(0, 4))}
        required = sorted(p for p in props if rng.random() < 0.5)
        return {"type": "object", "properties": props, "required": required, "additionalProperties": False}
    if kind == "array":
        low = rng.randint(0, 3)
        return {"type": "array", "items": random_schema(rng, depth + 1), "minItems": low, "maxItems": low + 2}
    low = rng.randint(-50, 50)
    return rng.choice(
        [
            {"type": "integer", "minimum": low, "maximum": low + rng.randint(0, 20)},
            {"type": "integer", "multipleOf": 3, "minimum": low, "maximum": low + 10},
            {"type": "number", "exclusiveMinimum": low, "exclusiveMaximum": low + 1},
            {"type": "string", "minLength": 4, "maxLength": 6},
            {"type": "boolean"},
            {"type": ["null", "string"]},
            {"enum": ["x", 1, None]},
            {"const": {"k": [1]}},
            {"anyOf": [{"type": "null"}, {"type": "integer", "maximum": low}]},
            {"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}}, {"required": ["a"]}]},
        ]
    )


def test_schema_instance_is_valid_for_random_schemas() -> None:
    for seed in range(300):
        schema = random_schema(random.Random(seed))
        validate(schema_instance(schema, seed=seed), schema)


def test_the_test_validator_rejects_bad_instances() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer", "maximum": 3}}, "required": ["a"]}
    for bad in ({"a": "x"}, {"a": 4}, {}, []):
        with pytest.raises(Exception):  # noqa: B017 - AssertionError here, ValidationError with jsonschema
            validate(bad, schema)
