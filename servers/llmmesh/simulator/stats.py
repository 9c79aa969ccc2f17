"""Request counters and a bounded log of recent requests, served at ``GET /_sim/stats``.

Only "work" requests (chat, generate, embeddings, OpenAI chat) go through ``begin``/``finish``;
health and listing endpoints are only counted per endpoint, so frequent health checks do not
push real requests out of the recent list.

Outcomes: ``completed``; ``cancelled`` (the client went away before the response finished);
everything else counts as ``errored``: ``error`` (HTTP error or in-stream error line), ``busy``
(503), ``not_found``, ``bad_request``, ``dropped`` (connection aborted by a fault),
``shutdown``.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

from llmmesh.simulator.models import now_rfc3339

RECENT_LIMIT = 100
_PROMPT_TAIL = 80


@dataclass
class RequestRecord:
    id: int
    path: str
    epoch: int
    started_at: str
    started: float = field(default_factory=time.monotonic)
    model: str = ""
    prompt_tail: str = ""
    fault: str = ""
    scripted: bool = False
    outcome: str | None = None
    status: int | None = None
    frames: int = 0  # NDJSON lines / SSE events written
    tokens: int = 0  # content tokens produced
    ttft_ms: float | None = None
    duration_ms: float | None = None

    def describe(self, model: str, prompt: str, fault: str) -> None:
        self.model = model
        self.prompt_tail = prompt[-_PROMPT_TAIL:]
        self.fault = fault

    def mark_first_token(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = round((time.monotonic() - self.started) * 1000, 3)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        del out["started"], out["epoch"]
        return out


class Stats:
    def __init__(self) -> None:
        self._next_id = 1
        self._epoch = 0
        self._active: dict[int, RequestRecord] = {}
        self.reset()

    def reset(self) -> None:
        """Zero the counters; requests still running are not counted when they finish."""
        self._epoch += 1
        self.started = 0
        self.completed = 0
        self.errored = 0
        self.cancelled = 0
        self.tokens_out = 0
        self.peak_generations = 0
        self.endpoints: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.recent: deque[RequestRecord] = deque(maxlen=RECENT_LIMIT)

    def count_endpoint(self, path: str) -> None:
        self.endpoints[path] += 1

    def begin(self, path: str) -> RequestRecord:
        record = RequestRecord(id=self._next_id, path=path, epoch=self._epoch, started_at=now_rfc3339())
        self._next_id += 1
        self._active[record.id] = record
        self.started += 1
        self.endpoints[path] += 1
        return record

    def generation_started(self, in_flight_generations: int) -> None:
        self.peak_generations = max(self.peak_generations, in_flight_generations)

    def finish(self, record: RequestRecord, outcome: str, status: int | None = None) -> None:
        if record.outcome is not None:  # already finished
            return
        record.outcome = outcome
        record.status = status
        record.duration_ms = round((time.monotonic() - record.started) * 1000, 3)
        self._active.pop(record.id, None)
        if record.epoch != self._epoch:
            return
        self.outcomes[outcome] += 1
        self.tokens_out += record.tokens
        if outcome == "completed":
            self.completed += 1
        elif outcome == "cancelled":
            self.cancelled += 1
        else:
            self.errored += 1
        self.recent.append(record)

    def snapshot(self, in_flight_generations: int) -> dict[str, Any]:
        return {
            "started": self.started,
            "completed": self.completed,
            "errored": self.errored,
            "cancelled": self.cancelled,
            "in_flight": len(self._active),
            "in_flight_generations": in_flight_generations,
            "peak_in_flight_generations": self.peak_generations,
            "tokens_out": self.tokens_out,
            "endpoints": dict(self.endpoints),
            "outcomes": dict(self.outcomes),
            "active": [r.to_json() for r in self._active.values()],
            "recent": [r.to_json() for r in self.recent],
        }
