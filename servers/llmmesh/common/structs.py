"""google.protobuf.Struct ⇄ plain JSON, as every service that carries JSON (tool arguments, JSON
schemas) in a Struct needs it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format, struct_pb2

from llmmesh.framework.errors import FieldViolation, InvalidArgument


def struct_to_dict(value: struct_pb2.Struct, field: str = "arguments") -> dict[str, Any]:
    """A Struct as plain JSON. Struct keeps every number as a double, so whole numbers come back
    as ints: JSON schemas (`maxLength: 200`) and tool arguments mean integers there.

    A Struct can hold NaN or ±Infinity, which JSON cannot: that is the caller's invalid `field`
    (INVALID_ARGUMENT), not a server failure."""
    try:
        return _whole_numbers(json_format.MessageToDict(value))
    except (json_format.SerializeToJsonError, ValueError):  # ValueError: nested in a Struct
        raise InvalidArgument([FieldViolation(field, "numbers must be finite (no NaN or Infinity)")]) from None


def _whole_numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    return value


def dict_to_struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(dict(value))
    return out


def canonical_key_order(schema: Any) -> Any:
    """A JSON schema with a deterministic property order.

    google.protobuf.Struct is a map: the caller's key order is lost in transit and comes back in a
    per-process hash order. Constrained decoding writes properties in schema order, and order
    matters to a model (a judge should reason before it scores), so each object's `properties`
    are put back as `required` lists them, then the rest by name; other keys are sorted."""
    if isinstance(schema, list):
        return [canonical_key_order(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: canonical_key_order(schema[key]) for key in sorted(schema)}
    props = out.get("properties")
    if isinstance(props, dict):
        required = [name for name in schema.get("required", []) if isinstance(name, str) and name in props]
        rest = sorted(name for name in props if name not in required)
        out["properties"] = {name: props[name] for name in [*required, *rest]}
    return out
