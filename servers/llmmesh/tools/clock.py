"""`clock`: the current date and time, in UTC or an IANA time zone, as ISO 8601."""

from __future__ import annotations

import difflib
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
        "In Paris it is 2025-05-01T14:30:00+02:00."),)

    async def call(self, arguments: dict[str, Any]) -> str:
        name = arguments.get("timezone") or "UTC"
        try:
            tz = zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            raise ToolError("INVALID_ARGUMENT", f"unknown time zone {name!r}{_suggestion(name)}") from None
        now = datetime.now(UTC).astimezone(tz)
        return json.dumps({"datetime": now.isoformat(timespec="seconds"), "timezone": name,
                           "weekday": now.strftime("%A"), "unix": int(now.timestamp())})


def _suggestion(name: str) -> str:
    """The nearest real zone names, for the model (or person) to correct its call with."""
    close = difflib.get_close_matches(name, sorted(zoneinfo.available_timezones()), n=3, cutoff=0.5)
    return f"; did you mean {' or '.join(close)}?" if close else ""
