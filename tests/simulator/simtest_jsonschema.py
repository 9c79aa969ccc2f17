"""JSON-schema validation for the tests: ``jsonschema`` when installed, else a small independent
validator for the subset the simulator claims to support."""

from __future__ import annotations

import math
from typing import Any

try:  # pragma: no cover - depends on the environment
    import jsonschema as _jsonschema
except ImportError:  # pragma: no cover
    _jsonschema = None

_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def validate(instance: Any, schema: Any) -> None:
    """Raise AssertionError (or jsonschema.ValidationError) when ``instance`` does not match."""
    if _jsonschema is not None:
        _jsonschema.validate(instance, schema)
        return
    _check(instance, schema, schema, "$")


def _resolve(schema: Any, root: Any) -> Any:
    while isinstance(schema, dict) and "$ref" in schema:
        target = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _check(value: Any, schema: Any, root: Any, path: str) -> None:
    schema = _resolve(schema, root)
    if schema is True or schema == {}:
        return
    assert schema is not False, f"{path}: schema false"
    if "const" in schema:
        assert value == schema["const"], f"{path}: {value!r} != const"
    if "enum" in schema:
        assert value in schema["enum"], f"{path}: {value!r} not in enum"
    for part in schema.get("allOf", []):
        _check(value, part, root, path)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            passed = 0
            for option in schema[key]:
                try:
                    _check(value, option, root, path)
                    passed += 1
                except AssertionError:
                    pass
            assert passed >= 1 if key == "anyOf" else passed == 1, f"{path}: {key} failed"
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        assert any(_TYPES[k](value) for k in kinds), f"{path}: {value!r} is not {kind}"
    if isinstance(value, dict):
        for name in schema.get("required", []):
            assert name in value, f"{path}: missing required {name!r}"
        props = schema.get("properties", {})
        for name, sub in value.items():
            if name in props:
                _check(sub, props[name], root, f"{path}.{name}")
            elif schema.get("additionalProperties") is False:
                raise AssertionError(f"{path}: unexpected property {name!r}")
            elif isinstance(schema.get("additionalProperties"), dict):
                _check(sub, schema["additionalProperties"], root, f"{path}.{name}")
        assert len(value) >= schema.get("minProperties", 0), f"{path}: too few properties"
    if isinstance(value, list):
        assert len(value) >= schema.get("minItems", 0), f"{path}: too few items"
        assert len(value) <= schema.get("maxItems", math.inf), f"{path}: too many items"
        if isinstance(schema.get("items"), dict):
            for i, item in enumerate(value):
                _check(item, schema["items"], root, f"{path}[{i}]")
        if schema.get("uniqueItems"):
            assert len({repr(v) for v in value}) == len(value), f"{path}: items not unique"
    if isinstance(value, str):
        assert len(value) >= schema.get("minLength", 0), f"{path}: too short"
        assert len(value) <= schema.get("maxLength", math.inf), f"{path}: too long"
    if _TYPES["number"](value):
        if "minimum" in schema:
            assert value >= schema["minimum"], f"{path}: {value} < minimum"
        if "maximum" in schema:
            assert value <= schema["maximum"], f"{path}: {value} > maximum"
        if _TYPES["number"](schema.get("exclusiveMinimum")):
            assert value > schema["exclusiveMinimum"], f"{path}: {value} <= exclusiveMinimum"
        if _TYPES["number"](schema.get("exclusiveMaximum")):
            assert value < schema["exclusiveMaximum"], f"{path}: {value} >= exclusiveMaximum"
        if schema.get("multipleOf"):
            ratio = value / schema["multipleOf"]
            assert abs(ratio - round(ratio)) < 1e-9, f"{path}: {value} not a multiple"
