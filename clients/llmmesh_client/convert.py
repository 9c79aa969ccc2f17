"""Keyword arguments → request messages, driven by the proto descriptors.

The generated constructors already take dicts for sub-messages (and for `google.protobuf.Struct`).
On top of that this accepts what people naturally type:
- enum values by short, case-insensitive name: `mode="pairwise"`, `aggregation="majority-vote"`,
  `role="user"` (as well as the full name or the number);
- chat messages as `("user", "hi")` pairs;
- `None` for "leave unset", so optional keyword arguments can be passed through untouched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from llmmesh_client._proto.llmmesh.inference.v1 import inference_service_pb2 as inference_pb

M = TypeVar("M", bound=Message)

_OPAQUE = {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"}
_CHAT_MESSAGE = inference_pb.Message.DESCRIPTOR.full_name


def build(cls: type[M], fields: Mapping[str, Any]) -> M:
    """`cls(**fields)` after normalising enum names, message pairs and Nones."""
    return cls(**_prepare(cls.DESCRIPTOR, fields))


def enum_value(enum: EnumDescriptor, value: int | str) -> int:
    """An enum number from a number, a full name (`JUDGE_MODE_PAIRWISE`) or a short name (`pairwise`)."""
    if isinstance(value, int):
        return value
    key = value.strip().upper().replace("-", "_").replace(" ", "_")
    prefix = enum.values[0].name.removesuffix("UNSPECIFIED")
    for name in (key, prefix + key):
        if name in enum.values_by_name:
            return enum.values_by_name[name].number
    raise ValueError(f"{value!r} is not a {enum.name}; choose from {', '.join(enum_choices(enum))}")


def enum_choices(enum: EnumDescriptor) -> list[str]:
    """Short lower-case names of an enum's values, without UNSPECIFIED (for CLIs and messages)."""
    prefix = enum.values[0].name.removesuffix("UNSPECIFIED")
    return [v.name.removeprefix(prefix).lower().replace("_", "-") for v in enum.values[1:]]


def _prepare(desc: Descriptor, fields: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if value is None:
            continue
        field = desc.fields_by_name.get(name)
        if field is None:
            raise TypeError(f"{desc.name} has no field {name!r}")
        if field.is_repeated and not _is_map(field):
            if isinstance(value, str | bytes) or not isinstance(value, Iterable):
                raise TypeError(f"{desc.name}.{name} takes a sequence, not {type(value).__name__}")
            out[name] = [_single(field, v) for v in value]
        else:
            out[name] = _single(field, value)
    return out


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _single(field: FieldDescriptor, value: Any) -> Any:
    if field.enum_type is not None and isinstance(value, str):
        return enum_value(field.enum_type, value)
    msg = field.message_type
    if msg is None or msg.full_name in _OPAQUE or _is_map(field):
        return value
    if msg.full_name == _CHAT_MESSAGE and isinstance(value, tuple):
        role, content = value
        value = {"role": role, "content": content}
    if isinstance(value, Mapping):
        return _prepare(msg, value)
    return value
