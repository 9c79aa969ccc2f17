"""JSON schema of a protobuf message, following the proto3 JSON mapping.

That is the shape `json_format.ParseDict` accepts, so a model's arguments that validate against
the schema parse into the request message. Properties use the proto field names (ParseDict takes
those as well as the lowerCamelCase JSON names); unknown properties are refused, as ParseDict
would refuse them.
"""

from __future__ import annotations

import copy
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

# Deeper nesting (or a message that contains itself) is described as "any object".
MAX_DEPTH = 8

F = FieldDescriptor
_INT64 = {"type": ["integer", "string"], "pattern": "^-?[0-9]+$"}
_UINT64 = {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 0}
_SCALARS: dict[int, dict[str, Any]] = {
    F.TYPE_DOUBLE: {"type": "number"},
    F.TYPE_FLOAT: {"type": "number"},
    F.TYPE_INT32: {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1},
    F.TYPE_SINT32: {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1},
    F.TYPE_SFIXED32: {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1},
    F.TYPE_UINT32: {"type": "integer", "minimum": 0, "maximum": 2**32 - 1},
    F.TYPE_FIXED32: {"type": "integer", "minimum": 0, "maximum": 2**32 - 1},
    # proto3 JSON writes 64-bit integers as strings and reads either form.
    F.TYPE_INT64: _INT64,
    F.TYPE_SINT64: _INT64,
    F.TYPE_SFIXED64: _INT64,
    F.TYPE_UINT64: _UINT64,
    F.TYPE_FIXED64: _UINT64,
    F.TYPE_BOOL: {"type": "boolean"},
    F.TYPE_STRING: {"type": "string"},
    F.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    return {**schema, "type": [*types, "null"]}


_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {"description": "any JSON value"},
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$",
                                 "description": "seconds with an s suffix, e.g. 1.5s"},
    "google.protobuf.FieldMask": {"type": "string", "description": "comma-separated field paths"},
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
    "google.protobuf.Any": {"type": "object", "properties": {"@type": {"type": "string"}}, "required": ["@type"]},
    "google.protobuf.DoubleValue": _nullable(_SCALARS[F.TYPE_DOUBLE]),
    "google.protobuf.FloatValue": _nullable(_SCALARS[F.TYPE_FLOAT]),
    "google.protobuf.Int32Value": _nullable(_SCALARS[F.TYPE_INT32]),
    "google.protobuf.UInt32Value": _nullable(_SCALARS[F.TYPE_UINT32]),
    "google.protobuf.Int64Value": _nullable(_INT64),
    "google.protobuf.UInt64Value": _nullable(_UINT64),
    "google.protobuf.BoolValue": _nullable(_SCALARS[F.TYPE_BOOL]),
    "google.protobuf.StringValue": _nullable(_SCALARS[F.TYPE_STRING]),
    "google.protobuf.BytesValue": _nullable(_SCALARS[F.TYPE_BYTES]),
}


def message_schema(message: Descriptor, *, _depth: int = 0, _path: tuple[str, ...] = ()) -> dict[str, Any]:
    known = _WELL_KNOWN.get(message.full_name)
    if known is not None:
        return copy.deepcopy(known)
    if message.full_name in _path or _depth >= MAX_DEPTH:
        return {"type": "object", "description": f"a {message.full_name} message"}
    path = (*_path, message.full_name)
    properties = {f.name: _field_schema(f, _depth + 1, path) for f in message.fields}
    return {"type": "object", "properties": properties, "additionalProperties": False}


def _field_schema(field: FieldDescriptor, depth: int, path: tuple[str, ...]) -> dict[str, Any]:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        # Map keys are always JSON strings (ParseDict converts numeric and bool keys back).
        value = field.message_type.fields_by_name["value"]
        return {"type": "object", "additionalProperties": _single(value, depth, path)}
    single = _single(field, depth, path)
    return {"type": "array", "items": single} if field.is_repeated else single


def _single(field: FieldDescriptor, depth: int, path: tuple[str, ...]) -> dict[str, Any]:
    if field.type == F.TYPE_ENUM:
        if field.enum_type.full_name == "google.protobuf.NullValue":
            return {"type": "null"}
        return {"type": "string", "enum": [v.name for v in field.enum_type.values]}
    if field.type in (F.TYPE_MESSAGE, F.TYPE_GROUP):
        return message_schema(field.message_type, _depth=depth, _path=path)
    return copy.deepcopy(_SCALARS[field.type])
