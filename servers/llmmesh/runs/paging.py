"""ListRuns' page tokens: opaque to clients, they carry where the last page ended and a digest of
the filters it was listed with, so a token replayed with other filters is refused rather than
silently paging a different listing."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime

from llmmesh.runs.store import Cursor, RunFilter

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


class BadPageToken(ValueError):
    pass


def _digest(where: RunFilter) -> str:
    shown = [where.pattern, where.status, where.model, where.principal,
             *(t.isoformat() if t else None for t in (where.created_after, where.created_before))]
    return hashlib.sha256(json.dumps(shown, default=str).encode()).hexdigest()[:16]


def encode(cursor: Cursor, where: RunFilter) -> str:
    raw = json.dumps({"t": cursor.created_at.isoformat(), "i": cursor.run_id, "f": _digest(where)})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(token: str, where: RunFilter) -> Cursor:
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        cursor = Cursor(datetime.fromisoformat(raw["t"]), str(raw["i"]))
        digest = raw["f"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BadPageToken("is not a page token of this listing") from exc
    if digest != _digest(where):
        raise BadPageToken("belongs to a listing with other filters")
    return cursor
