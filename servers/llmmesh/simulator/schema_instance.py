"""Produce a deterministic, valid instance of a JSON schema.

Covers what structured-output callers send (hand-written schemas and pydantic's
``model_json_schema()``): ``type`` (single or list), object ``properties``/``required``/
``minProperties``/``additionalProperties``, arrays (``items``, ``prefixItems``, ``minItems``,
``maxItems``, ``uniqueItems``), strings (``minLength``, ``maxLength``, common ``format`` values),
number/integer bounds (``minimum``, ``maximum``, exclusive bounds, ``multipleOf``), ``boolean``,
``null``, ``enum``, ``const``, ``anyOf``/``oneOf`` (first non-null choice), ``allOf`` (merged),
and local ``$ref`` (``#/$defs/...``, ``#/definitions/...``). ``pattern`` is not supported.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any

_WORDS = (
    "alpha", "amber", "atlas", "beacon", "birch", "cedar", "comet", "delta", "ember", "falcon",
    "fern", "garnet", "harbor", "iris", "jade", "juniper", "kestrel", "lumen", "maple", "meadow",
    "nova", "onyx", "orbit", "pebble", "quartz", "raven", "river", "sage", "sierra", "summit",
    "tundra", "umber", "vale", "willow", "zephyr",
)  # fmt: skip
_FORMATS = {
    "date-time": "2025-01-01T12:00:00Z",
    "date": "2025-01-01",
    "time": "12:00:00",
    "email": "user@example.com",
    "uri": "https://example.com/item",
    "url": "https://example.com/item",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
}
_MAX_DEPTH = 24


class SchemaError(ValueError):
    """The schema cannot be instantiated (unsupported or self-contradictory)."""


def schema_instance(schema: Mapping[str, Any] | bool, seed: int = 0) -> Any:
    """A value valid against ``schema``; the same (schema, seed) always gives the same value."""
    root = schema if isinstance(schema, Mapping) else {}
    return _Gen(root, random.Random(seed)).value(schema, 0)


class _Gen:
    def __init__(self, root: Mapping[str, Any], rng: random.Random) -> None:
        self.root = root
        self.rng = rng

    def value(self, schema: Mapping[str, Any] | bool, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise SchemaError("schema nests too deeply (recursive $ref without a way out?)")
        if schema is True:
            return self.word()
        if schema is False:
            raise SchemaError("schema 'false' has no valid instance")
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            options = list(schema["enum"])
            if not options:
                raise SchemaError("empty enum")
            return options[self.rng.randrange(len(options))]
        if "allOf" in schema:
            return self.value(self.merge_all(schema), depth + 1)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                choices = [self.resolve(s) if isinstance(s, Mapping) else s for s in schema[key]]
                non_null = [s for s in choices if not (isinstance(s, Mapping) and s.get("type") == "null")]
                return self.value((non_null or choices)[0], depth + 1)
        kind = self.type_of(schema)
        return getattr(self, f"gen_{kind}")(schema, depth)

    def resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        seen = 0
        while "$ref" in schema:
            ref = schema["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#"):
                raise SchemaError(f"only local $ref is supported, got {ref!r}")
            target: Any = self.root
            for part in [p for p in ref[1:].split("/") if p]:
                part = part.replace("~1", "/").replace("~0", "~")
                if not isinstance(target, Mapping) or part not in target:
                    raise SchemaError(f"unresolvable $ref {ref!r}")
                target = target[part]
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **siblings}
            seen += 1
            if seen > _MAX_DEPTH:
                raise SchemaError("$ref cycle")
        return schema

    def merge_all(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            part = self.resolve(part)
            for key, val in part.items():
                if key == "properties":
                    merged["properties"] = {**merged.get("properties", {}), **val}
                elif key == "required":
                    merged["required"] = sorted(set(merged.get("required", [])) | set(val))
                else:
                    merged.setdefault(key, val)
        return merged

    @staticmethod
    def type_of(schema: Mapping[str, Any]) -> str:
        kind = schema.get("type")
        if isinstance(kind, list):
            non_null = [k for k in kind if k != "null"]
            kind = non_null[0] if non_null else "null"
        if kind is None:
            if "properties" in schema or "required" in schema:
                return "object"
            if "items" in schema or "prefixItems" in schema:
                return "array"
            if any(k in schema for k in ("minimum", "maximum", "multipleOf")):
                return "number"
            return "string"
        if kind not in ("object", "array", "string", "number", "integer", "boolean", "null"):
            raise SchemaError(f"unsupported type {kind!r}")
        return kind

    def word(self) -> str:
        return _WORDS[self.rng.randrange(len(_WORDS))]

    # -- generators, one per JSON type -------------------------------------------------------

    def gen_object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        props: Mapping[str, Any] = schema.get("properties", {})
        required = list(schema.get("required", []))
        # Deep in recursive schemas, keep only what is required so the recursion ends.
        names = required if depth > _MAX_DEPTH // 2 else list(props) + [r for r in required if r not in props]
        out: dict[str, Any] = {}
        for name in names:
            out[name] = self.value(props.get(name, self.extra_schema(schema)), depth + 1)
        extra = self.extra_schema(schema)
        while len(out) < _count(schema, "minProperties", 0):
            if extra is False:
                raise SchemaError("minProperties needs more properties than the schema allows")
            out[f"key{len(out) + 1}"] = self.value(extra, depth + 1)
        return out

    @staticmethod
    def extra_schema(schema: Mapping[str, Any]) -> Mapping[str, Any] | bool:
        extra = schema.get("additionalProperties", True)
        return {"type": "string"} if extra is True else extra

    def gen_array(self, schema: Mapping[str, Any], depth: int) -> list[Any]:
        low = _count(schema, "minItems", 0)
        high = _count(schema, "maxItems", max(low, 2))
        count = max(low, min(high, 2 if depth <= _MAX_DEPTH // 2 else low))
        prefix = schema.get("prefixItems") or (schema["items"] if isinstance(schema.get("items"), list) else [])
        items = schema.get("items", True) if not isinstance(schema.get("items"), list) else True
        out: list[Any] = []
        attempts = 0
        while len(out) < count:
            sub = prefix[len(out)] if len(out) < len(prefix) else items
            candidate = self.value(sub, depth + 1)
            if schema.get("uniqueItems") and candidate in out:
                attempts += 1
                if attempts > 50:
                    raise SchemaError("cannot produce enough unique array items")
                continue
            out.append(candidate)
        return out

    def gen_string(self, schema: Mapping[str, Any], depth: int) -> str:
        fmt = schema.get("format")
        if fmt == "uuid":
            bits = [self.rng.getrandbits(n) for n in (32, 16, 12, 12, 48)]
            text = f"{bits[0]:08x}-{bits[1]:04x}-4{bits[2]:03x}-8{bits[3]:03x}-{bits[4]:012x}"
        elif fmt in _FORMATS:
            text = _FORMATS[fmt]
        else:
            text = " ".join(self.word() for _ in range(1 + self.rng.randrange(3)))
        low = _count(schema, "minLength", 0)
        high = _count(schema, "maxLength", None)
        if len(text) < low:
            text += "x" * (low - len(text))
        if high is not None:
            text = text[:high]
        return text

    def gen_integer(self, schema: Mapping[str, Any], depth: int) -> int:
        low, high = self.bounds(schema, step=1)
        low, high = math.ceil(low), math.floor(high)
        step = schema.get("multipleOf")
        if step:
            first = math.ceil(low / step)
            last = math.floor(high / step)
            if first > last:
                raise SchemaError("no multiple of multipleOf within bounds")
            return int(self.rng.randint(first, last) * step)
        if low > high:
            raise SchemaError("integer bounds are empty")
        return self.rng.randint(low, high)

    def gen_number(self, schema: Mapping[str, Any], depth: int) -> float | int:
        step = schema.get("multipleOf")
        if step:
            low, high = self.bounds(schema, step=step)
            first, last = math.ceil(low / step), math.floor(high / step)
            if first > last:
                raise SchemaError("no multiple of multipleOf within bounds")
            value = self.rng.randint(first, last) * step
            return int(value) if float(value).is_integer() else value
        low, high = self.bounds(schema, step=0.01)
        if low > high:
            raise SchemaError("number bounds are empty")
        value = round(self.rng.uniform(low, high), 2)
        return min(max(value, low), high)

    def gen_boolean(self, schema: Mapping[str, Any], depth: int) -> bool:
        return self.rng.random() < 0.5

    def gen_null(self, schema: Mapping[str, Any], depth: int) -> None:
        return None

    @staticmethod
    def bounds(schema: Mapping[str, Any], step: float) -> tuple[float, float]:
        """Inclusive [low, high]; exclusive bounds move inwards by ``step``."""
        low = schema.get("minimum")
        high = schema.get("maximum")
        ex_low = schema.get("exclusiveMinimum")
        ex_high = schema.get("exclusiveMaximum")
        # Draft 4 used booleans that modify minimum/maximum; later drafts use numbers.
        if ex_low is True and low is not None:
            low = low + step
        elif isinstance(ex_low, int | float) and not isinstance(ex_low, bool):
            low = ex_low + step if low is None else max(low, ex_low + step)
        if ex_high is True and high is not None:
            high = high - step
        elif isinstance(ex_high, int | float) and not isinstance(ex_high, bool):
            high = ex_high - step if high is None else min(high, ex_high - step)
        if low is None and high is None:
            return 0, 100
        if low is None:
            return high - 100, high
        if high is None:
            return low, low + 100
        return low, high


def _count(schema: dict[str, Any], key: str, default: int | None) -> int | None:
    """Size keywords as ints: a schema that went through google.protobuf.Struct has 3.0, not 3."""
    value = schema.get(key, default)
    return None if value is None else int(value)
