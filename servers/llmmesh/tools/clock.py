"""`clock`: the current date and time, in UTC or an IANA time zone, as ISO 8601."""

from __future__ import annotations

import difflib
import functools
import json
import zoneinfo
from datetime import UTC, datetime
from typing import Any

from llmmesh.tools.base import BUILTIN, ToolError, ToolExample

# An IANA name as written: Area[/Location[/Sublocation]] of letters, `_` between words, or
# Etc/GMT±N (the digit-bearing legacy names such as EST5EDT are left out). Under constrained
# decoding it stops a small model from running on past the name ("Asia/Tokyo_2023_12_28T00Z"),
# and it bounds the name (107 characters at most) as a grammar must: llama.cpp's ignores maxLength
# where a pattern is given.
TIMEZONE_PATTERN = r"^(Etc/GMT[+-][0-9]{1,2}|[A-Z][A-Za-z-]{1,14}(/[A-Z][A-Za-z-]{0,14}(_[A-Za-z-]{1,14}){0,2}){0,2})$"


class Clock:
    name = "clock"
    description = ("The current date and time (ISO 8601), in UTC or in the given IANA time zone "
                   "such as Europe/Paris.")
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "timezone": {"type": "string", "maxLength": 120, "pattern": TIMEZONE_PATTERN,
                         "description": "IANA time zone name; UTC when omitted"},
        },
        "additionalProperties": False,
    }
    source = BUILTIN
    examples = (ToolExample(
        "What time is it in Paris?", {"timezone": "Europe/Paris"},
        json.dumps({"datetime": "2025-05-01T14:30:00+02:00", "timezone": "Europe/Paris", "weekday": "Thursday",
                    "unix": 1746102600}),
        "In Europe/Paris it is 2025-05-01T14:30:00+02:00, a Thursday."),)

    async def call(self, arguments: dict[str, Any]) -> str:
        requested = arguments.get("timezone") or "UTC"
        name = _zone_name(requested)
        if not name:
            raise ToolError("INVALID_ARGUMENT", f"unknown time zone {requested!r}{_suggestion(requested)}")
        now = datetime.now(UTC).astimezone(zoneinfo.ZoneInfo(name))
        # `timezone` is the zone used: a name read as the zone it begins with says so here.
        return json.dumps({"datetime": now.isoformat(timespec="seconds"), "timezone": name,
                           "weekday": now.strftime("%A"), "unix": int(now.timestamp())})


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _zone_name(requested: str) -> str:
    """The zone `requested` names: itself, or else the longest zone it begins with, up to a
    separator ("Asia/Tokyo_2023…", "UTC/12": small models run on past the name); "" if none."""
    zones = _zones()
    if requested in zones:
        return requested
    starts = [z for z in zones if requested.startswith(z) and not requested[len(z)].isalnum()]
    return max(starts, key=len, default="")


def _suggestion(name: str) -> str:
    """The nearest real zone names, for the model (or person) to correct its call with."""
    close = difflib.get_close_matches(name, sorted(_zones()), n=3, cutoff=0.5)
    return f"; did you mean {' or '.join(close)}?" if close else ""
