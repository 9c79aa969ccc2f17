"""`clock`: the current date and time, in UTC or an IANA time zone, as ISO 8601."""

from __future__ import annotations

import json
import zoneinfo
from datetime import UTC, datetime
from typing import Any

from llmmesh.tools.base import BUILTIN, ToolError, ToolExample


class Clock:
    name = "clock"
    description = ("The current date and time (ISO 8601), in UTC or in the given IANA time zone "
                   "such as Europe/Paris.")
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "timezone": {"type": "string", "maxLength": 64, "pattern": "^[A-Za-z0-9_+\\-/]+$",
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
            raise ToolError("INVALID_ARGUMENT", f"unknown time zone {name!r}") from None
        now = datetime.now(UTC).astimezone(tz)
        return json.dumps({"datetime": now.isoformat(timespec="seconds"), "timezone": name,
                           "weekday": now.strftime("%A"), "unix": int(now.timestamp())})
