"""Hypothesis strategies derived from the proto descriptors, for the gRPC and the REST surface.

Nothing here is written per message type: every RPC of every mesh service is found by walking the
generated descriptors, and its request is built field by field from the field's type —

- strings: short unicode, long unicode, huge (up to 300k characters), and names the mesh knows
  (models, tools, criteria, roles) so that some requests get past validation into real runs;
- integers at their type's boundaries (0, ±1, 2^31-1, -2^31, 2^63-1, 2^64-1, just past the mesh's
  limits) and anywhere in range; doubles including NaN, ±inf, -0.0 and 1e308;
- enums: every declared value and unknown numbers (proto3 enums are open);
- repeated fields, usually short, sometimes long; nested messages to a bounded depth; oneofs (one
  member or none); proto3 `optional` presence;
- google.protobuf.Struct: arbitrary JSON, nested, with NaN and huge numbers;
- Timestamp and Duration: any seconds and nanos (over REST, clamped to what proto JSON can write).

REST bodies are the same messages as JSON (proto or JSON field names), then mutated: a field given
a value of the wrong type, unknown fields, unknown enum names, numbers beyond int64, truncated or
otherwise malformed JSON, wrong top-level types, deep nesting. Client-streaming methods take a
JSON array of messages over REST, so their bodies are arrays.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from typing import Any

from google.api import annotations_pb2
from google.protobuf import descriptor_pool, json_format, message_factory, struct_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from llmmesh.framework.services import generated_module
from llmmesh.judge.criteria import BUILTINS
from llmmesh.topology.description import SERVICES

MAX_DEPTH = 3
KNOWN_WORDS = ("", " ", "smollm2:135m", "llama3.2:1b", "m", "calculator", "clock", "http_get", "*", "judge",
               *BUILTINS, "ROLE_USER", "What is 2+2?", "4", "x" * 65, "\x00", "../../etc/passwd", "{}", "null",
               "http://169.254.169.254/latest/meta-data/", "' OR 1=1 --", "<script>", "%s%n", "\u202e")
INT32 = (0, 1, -1, 2, 3, 8, 16, 64, 1024, 8192, 8193, 262_145, 2**31 - 1, -(2**31))
INT64 = (*INT32, 2**53 + 1, 2**63 - 1, -(2**63))
UINT32 = (0, 1, 2**31, 2**32 - 1)
UINT64 = (0, 1, 2**63, 2**64 - 1)
DOUBLES = (0.0, -0.0, 0.5, 1.0, 2.0, 2.0000001, -1.0, 1e308, -1e308, 5e-324, math.inf, -math.inf, math.nan)


@dataclass(frozen=True)
class Rpc:
    """One RPC of the mesh, as the fuzzers call it."""

    service: str
    method: MethodDescriptor

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.method.name}"

    @property
    def client_streaming(self) -> bool:
        return self.method.client_streaming

    @property
    def server_streaming(self) -> bool:
        return self.method.server_streaming

    @property
    def request_class(self) -> type[Message]:
        return message_class(self.method.input_type)

    @property
    def response_class(self) -> type[Message]:
        return message_class(self.method.output_type)

    @property
    def http(self) -> tuple[str, str] | None:
        """(HTTP method, path) from the google.api.http annotation."""
        rule = self.method.GetOptions().Extensions[annotations_pb2.http]
        pattern = rule.WhichOneof("pattern")
        return (pattern.upper(), getattr(rule, pattern)) if pattern else None


def all_rpcs() -> list[Rpc]:
    out = []
    for spec in SERVICES:
        generated_module(spec)  # puts the service's descriptors into the default pool
        service = descriptor_pool.Default().FindServiceByName(spec.grpc_service)
        out += [Rpc(spec.grpc_service, m) for m in service.methods]
    return out


@cache
def message_class(desc: Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(desc)


# ---- scalars -------------------------------------------------------------------------------------

_unicode = st.text(st.characters(codec="utf-8"), max_size=24)
# Long strings are a short random piece repeated: every character drawn costs Hypothesis a choice,
# and a batch of requests must fit its per-example budget.
_strings = st.one_of(
    st.sampled_from(KNOWN_WORDS),
    _unicode,
    st.tuples(st.text(st.characters(codec="utf-8"), min_size=1, max_size=6), st.integers(10, 4000)).map(
        lambda piece_times: piece_times[0] * piece_times[1]),
    st.integers(1_000, 300_000).map(lambda n: "x" * n),
    st.integers(1, 4096).map(lambda n: "\U0001f600" * n),
)


def _ints(boundaries: tuple[int, ...], lo: int, hi: int) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(boundaries), st.integers(lo, hi))


_SCALARS: dict[int, st.SearchStrategy[Any]] = {
    FieldDescriptor.TYPE_STRING: _strings,
    FieldDescriptor.TYPE_BYTES: st.binary(max_size=64),
    FieldDescriptor.TYPE_BOOL: st.booleans(),
    FieldDescriptor.TYPE_DOUBLE: st.one_of(st.sampled_from(DOUBLES), st.floats()),
    FieldDescriptor.TYPE_FLOAT: st.one_of(st.sampled_from(DOUBLES[:4]), st.floats(width=32)),
    FieldDescriptor.TYPE_INT32: _ints(INT32, -(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: _ints(INT32, -(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: _ints(INT32, -(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: _ints(INT64, -(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: _ints(INT64, -(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: _ints(INT64, -(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: _ints(UINT32, 0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: _ints(UINT32, 0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: _ints(UINT64, 0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: _ints(UINT64, 0, 2**64 - 1),
}

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.floats(), st.sampled_from((2**53, 1e308, -0.0)), _unicode),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_unicode, inner, max_size=4)),
    max_leaves=12,
)


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(value)
    return out


structs = st.dictionaries(_unicode, json_values, max_size=5).map(_struct)


@cache
def _enum(field: FieldDescriptor) -> st.SearchStrategy[int]:
    known = [v.number for v in field.enum_type.values]
    return st.one_of(st.sampled_from(known), st.integers(-3, 1000), st.sampled_from((2**31 - 1, -(2**31))))


# ---- messages ------------------------------------------------------------------------------------


def _synthetic(oneof: Any) -> bool:
    """A proto3 `optional` field's one-member oneof, not a real choice."""
    return len(oneof.fields) == 1 and oneof.name == "_" + oneof.fields[0].name


@cache
def _single(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return messages(field.message_type, depth + 1)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return _enum(field)
    return _SCALARS[field.type]


@cache
def _value(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    one = _single(field, depth)
    if not field.is_repeated:
        return one
    # Usually a few; sometimes enough to cross a small count limit (panel, agents, stop words).
    # The large limits (512 messages, 64 tools, 256 inputs) are hit in tests/security.
    return st.one_of(st.lists(one, max_size=3), st.lists(one, min_size=10, max_size=20))


def _set(msg: Message, field: FieldDescriptor, value: Any) -> None:
    if field.is_repeated:
        target = getattr(msg, field.name)
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            for item in value:
                target.add().CopyFrom(item)
        else:
            target.extend(value)
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        getattr(msg, field.name).CopyFrom(value)
    else:
        setattr(msg, field.name, value)


@cache
def messages(desc: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Any message of type `desc`, nested messages included down to MAX_DEPTH."""
    if desc.full_name == "google.protobuf.Struct":
        return structs
    cls = message_class(desc)
    if depth >= MAX_DEPTH:
        return st.just(cls())

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        msg = cls()
        chosen = {o.name: draw(st.sampled_from([None, *o.fields])) for o in desc.oneofs if not _synthetic(o)}
        for field in desc.fields:
            oneof = field.containing_oneof
            if oneof is not None and not _synthetic(oneof):
                if chosen[oneof.name] is not field:
                    continue
            elif not draw(st.integers(0, 3)):  # present three times in four
                continue
            _set(msg, field, draw(_value(field, depth)))
        return msg

    return build()


def requests(rpc: Rpc) -> st.SearchStrategy[list[Message]]:
    """What a client sends: one message, or for client streams zero to three."""
    one = messages(rpc.method.input_type)
    if rpc.client_streaming:
        return st.lists(one, max_size=3)
    return one.map(lambda m: [m])


# ---- REST bodies -----------------------------------------------------------------------------------

_wrong_types = st.one_of(st.none(), st.booleans(), st.just([]), st.just({}), st.just("not a number"),
                         st.sampled_from((1e400, -(2**70), 2**64, "ROLE_NOPE", "NaN", [[[]]])), st.integers())


def _as_json(msg: Message, proto_names: bool) -> Any:
    try:
        return json_format.MessageToDict(msg, preserving_proto_field_name=proto_names)
    except json_format.SerializeToJsonError:  # a value proto JSON has no form for (see _representable)
        scrubbed = type(msg)()
        scrubbed.CopyFrom(msg)
        _representable(scrubbed)
        return json_format.MessageToDict(scrubbed, preserving_proto_field_name=proto_names)


# Proto JSON's ranges: a Timestamp is a time in the years 1 to 9999, a Duration within ±10,000 years.
_JSON_SECONDS = {"google.protobuf.Timestamp": (-62_135_596_800, 253_402_300_799),
                 "google.protobuf.Duration": (-315_576_000_000, 315_576_000_000)}


def _representable(msg: Message) -> None:
    """Bring every value in `msg` that proto JSON cannot write into its range (in place): NaN/inf
    numbers in a Struct become 1e308, Timestamps and Durations clamp to their range's ends. The
    binary forms still reach the servers over gRPC (tests/fuzz's gRPC surface, tests/security)."""
    if isinstance(msg, struct_pb2.Value) and msg.WhichOneof("kind") == "number_value":
        if not math.isfinite(msg.number_value):
            msg.number_value = 1e308
        return
    bounds = _JSON_SECONDS.get(msg.DESCRIPTOR.full_name)
    if bounds is not None:
        try:
            msg.ToJsonString()  # type: ignore[attr-defined]
        except ValueError:  # seconds out of range, or nanos out of range or of the other sign
            msg.seconds = min(max(msg.seconds, bounds[0]), bounds[1])  # type: ignore[attr-defined]
            msg.nanos = 0  # type: ignore[attr-defined]
        return
    for field, value in msg.ListFields():
        if field.type != FieldDescriptor.TYPE_MESSAGE:
            continue
        if field.message_type.GetOptions().map_entry:
            items = value.values() if hasattr(value, "values") else []
        elif field.is_repeated:
            items = value
        else:
            items = [value]
        for item in items:
            if isinstance(item, Message):
                _representable(item)


@st.composite
def _mutate(draw: st.DrawFn, value: Any) -> Any:
    """Replace or add one member somewhere in `value` with a value of the wrong type."""
    if isinstance(value, dict):
        keys = list(value)
        key = draw(st.sampled_from(keys)) if keys and draw(st.booleans()) else draw(st.sampled_from(
            ("unknown_field", "options", "messages", "model", "prompt", "panel", "agents", "evaluate", "run")))
        if key in value and isinstance(value[key], dict | list) and draw(st.booleans()):
            return {**value, key: draw(_mutate(value[key]))}
        return {**value, key: draw(_wrong_types)}
    if isinstance(value, list) and value:
        i = draw(st.integers(0, len(value) - 1))
        return [*value[:i], draw(_mutate(value[i])), *value[i + 1:]]
    return draw(_wrong_types)


def _encode(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


_malformed = st.one_of(
    st.sampled_from((b"", b"{", b"}", b"[", b"{\"a\":}", b"{\"prompt\": \"x\"", b"null", b"true", b"\"str\"", b"42",
                     b"{\"prompt\": \"\\ud800\"}", b"\xff\xfe\x00", b"{\"prompt\": 1e999}", b"[" * 5000 + b"]" * 5000,
                     b"{\"a\":" * 2000 + b"1" + b"}" * 2000, b"{} {}", b"{\"messages\": [null]}")),
    st.binary(max_size=64),
)


def rest_bodies(rpc: Rpc) -> st.SearchStrategy[bytes]:
    """The body of one REST call of `rpc` (a JSON array for client-streaming methods)."""

    @st.composite
    def derived(draw: st.DrawFn) -> bytes:
        msgs = draw(requests(rpc))
        proto_names = draw(st.booleans())
        docs = [_as_json(m, proto_names) for m in msgs]
        value: Any = docs if rpc.client_streaming else docs[0]
        if draw(st.integers(0, 2)) == 0:
            value = draw(_mutate(value))
        text = _encode(value)
        if draw(st.integers(0, 9)) == 0:  # cut it short
            text = text[: draw(st.integers(0, max(0, len(text) - 1)))]
        return text

    return st.one_of(derived(), derived(), derived(), _malformed)
