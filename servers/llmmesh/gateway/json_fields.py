"""Reading a front door's JSON body: the body itself, and small typed readers of its fields.

A wrong type is a 400 that names the parameter, whichever API the body belongs to; value ranges
are the mesh's job (its field violations come back mapped onto the API's parameter names).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from llmmesh.gateway.errors import invalid


async def read_json(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise invalid(None, "We could not parse the JSON body of your request.", None) from None


def is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: object) -> bool:
    return (isinstance(v, int | float)) and not isinstance(v, bool) and math.isfinite(v)


def string(body: Mapping[str, Any], key: str, param: str, required: bool = False) -> str:
    value = body.get(key)
    if value is None:
        if required:
            raise invalid(param, f"Missing required parameter: '{param}'.", "missing_required_parameter")
        return ""
    if not isinstance(value, str):
        raise invalid(param, f"Invalid type for '{param}': expected a string.", "invalid_type")
    return value


def obj(value: object, param: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise invalid(param, f"Invalid type for '{param}': expected an object.", "invalid_type")
    return value


def array(value: object, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise invalid(param, f"Invalid type for '{param}': expected an array.", "invalid_type")
    return value


def strings(value: object, param: str) -> list[str]:
    """A string or an array of strings, as a list."""
    if isinstance(value, str):
        return [value]
    items = array(value, param)
    if not all(isinstance(s, str) for s in items):
        raise invalid(param, f"Invalid type for '{param}': expected a string or an array of strings.", "invalid_type")
    return items


def boolean(body: Mapping[str, Any], key: str, default: bool) -> bool:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid(key, f"Invalid type for '{key}': expected a boolean.", "invalid_type")
    return value


def clamp_int32(value: int) -> int:
    """Out-of-range values are the inference service's to refuse (it names the limit); clamped so
    they fit the int32 field it reads them from."""
    return max(-(2**31), min(value, 2**31 - 1))
