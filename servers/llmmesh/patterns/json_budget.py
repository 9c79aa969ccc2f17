"""How many tokens a JSON document valid against a schema can take, at most.

A structured step's `max_tokens` comes from here, so a model that follows the schema can always
finish the document: constrained decoding (llama.cpp's and Ollama's JSON-schema grammars) stops a
string at its `maxLength` and a list at its `maxItems`. An unbounded string or list has no such
bound, so a schema without them is a programming error, raised when the budget is computed.
A grammar ignores `maxLength` beside a `pattern`: there the pattern's longest match is the bound,
and a pattern that can match without end is unbounded.

The count is deliberately pessimistic: one token per character of free text (BPE tokens hold one
or more characters), plus the punctuation and keys around it, plus slack for the whitespace a
grammar allows between tokens.
"""

from __future__ import annotations

import json
import re
import re._parser as sre_parse  # a pattern's longest match, which `re` knows and does not publish
from typing import Any

# Tokens for a number or a literal (true/false/null), sign and fraction included.
_SCALAR = 12
# Per value: separators, quotes and the whitespace a grammar lets a model put between tokens.
_PUNCT = 3


class UnboundedSchema(ValueError):
    pass


def longest_match(pattern: str) -> int | None:
    """The most characters `pattern` can match, None when it has no bound (or cannot be read)."""
    try:
        longest = sre_parse.parse(pattern).getwidth()[1]
    except (re.error, TypeError, ValueError):
        return None
    return longest if longest < sre_parse.MAXREPEAT else None


def token_budget(schema: dict[str, Any]) -> int:
    """Worst-case tokens of a document valid against `schema`, with 25% slack."""
    return int(_tokens(schema, "") * 1.25) + 16


def _literal(value: Any) -> int:
    return len(json.dumps(value)) + _PUNCT


def _tokens(schema: dict[str, Any], path: str) -> int:
    if "const" in schema:
        return _literal(schema["const"])
    if "enum" in schema:
        return max(_literal(v) for v in schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return max(_tokens(s, f"{path}/{key}[{i}]") for i, s in enumerate(schema[key]))
    kind = schema.get("type")
    if isinstance(kind, list):  # ["string", "null"]: the costliest alternative
        return max(_tokens({**schema, "type": k}, path) for k in kind)
    if kind == "string":
        if "pattern" in schema:
            longest = longest_match(schema["pattern"])
            if longest is None:
                raise UnboundedSchema(f"string at {path or '<root>'} has a pattern without a longest match")
            return longest + _PUNCT
        if "maxLength" not in schema:
            raise UnboundedSchema(f"string at {path or '<root>'} has no maxLength")
        return int(schema["maxLength"]) + _PUNCT
    if kind == "array":
        if "maxItems" not in schema:
            raise UnboundedSchema(f"array at {path or '<root>'} has no maxItems")
        return int(schema["maxItems"]) * (_tokens(schema.get("items", {}), f"{path}/items") + _PUNCT) + _PUNCT
    if kind == "object":
        props: dict[str, Any] = schema.get("properties", {})
        if schema.get("additionalProperties", False) not in (False, None) and not props:
            raise UnboundedSchema(f"object at {path or '<root>'} allows arbitrary properties")
        return sum(_literal(name) + _tokens(sub, f"{path}/{name}") for name, sub in props.items()) + _PUNCT
    if kind in ("integer", "number", "boolean", "null"):
        return _SCALAR
    raise UnboundedSchema(f"value at {path or '<root>'} has no bounded type")
