"""A run as its servicer records it: the request, each stream event, then the result or the error,
with the run's usage. Recording is cheap on the run's path (events are kept as the messages the
stream sends, consecutive token deltas of one source merged); turning them into JSON is left to
the store's background writer (`record()`).

Events are bounded: past `max_events` events or `max_event_bytes` bytes (protobuf encoding) the
rest are counted, not kept, and the stored events end with a `{"truncated": …}` marker.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from llmmesh.framework.errors import to_status
from llmmesh.framework.request_context import request_id
from llmmesh.patterns.model_client import UsageMeter
from llmmesh.runs.record import RunRecord, RunStatus, new_run_id, utc_now

TOKEN_DELTA = "llmmesh.common.v1.TokenDelta"
# grpc.StatusCode.CANCELLED's value.
CANCELLED = 1


def to_json(message: Message) -> dict[str, Any]:
    """A message as REST shows it (snake_case field names, enums by name)."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


@dataclass
class _Deltas:
    """Consecutive token deltas of one event kind and source, merged."""

    kind: str
    source: str
    parts: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        delta: dict[str, Any] = {"text": "".join(self.parts)}
        if self.source:
            delta["source"] = self.source
        return {self.kind: delta}


class _Events:
    def __init__(self, max_events: int, max_bytes: int) -> None:
        self.kept: list[Message | _Deltas] = []
        self.dropped = 0
        self._max_events, self._max_bytes, self._bytes = max_events, max_bytes, 0

    def add(self, event: Message) -> None:
        kind = event.WhichOneof("event")
        value = getattr(event, kind) if kind else None
        is_delta = value is not None and value.DESCRIPTOR.full_name == TOKEN_DELTA
        size = len(value.text) if is_delta else event.ByteSize()
        if self.dropped or self._bytes + size > self._max_bytes:
            self.dropped += 1
            return
        last = self.kept[-1] if self.kept else None
        if is_delta and isinstance(last, _Deltas) and (last.kind, last.source) == (kind, value.source):
            last.parts.append(value.text)
        elif len(self.kept) >= self._max_events:
            self.dropped += 1
            return
        elif is_delta:
            self.kept.append(_Deltas(kind, value.source, [value.text]))
        else:
            self.kept.append(event)
        self._bytes += size

    def to_json(self) -> list[dict[str, Any]]:
        out = [e.to_json() if isinstance(e, _Deltas) else to_json(e) for e in self.kept]
        if self.dropped:
            out.append({"truncated": {"events_dropped": self.dropped}})
        return out


class RunCapture:
    """One run being recorded. `keep` is False when the request opted out (`store: false`): the run
    still has its id, nothing is written."""

    def __init__(self, pattern: str, method: str, request: Message, principal: str, *, keep: bool = True,
                 max_events: int = 2000, max_event_bytes: int = 1 << 20) -> None:
        self.run_id = new_run_id()
        self.pattern, self.method, self.principal, self.keep = pattern, method, principal, keep
        self.created_at = utc_now()
        self._started = time.perf_counter()
        self._duration_ms = 0.0
        self._request = request
        self._events = _Events(max_events, max_event_bytes)
        self._result: Message | None = None
        self._status = RunStatus.FAILED
        self._error = (0, "")
        self._meter = UsageMeter()
        self._finished = False

    @property
    def finished(self) -> bool:
        """It succeeded or failed (and may be stored)."""
        return self._finished

    def event(self, event: Message) -> None:
        self._events.add(event)

    def succeeded(self, result: Message, meter: UsageMeter) -> None:
        self._finish(meter)
        self._status, self._result = RunStatus.SUCCEEDED, result

    def failed(self, exc: BaseException, meter: UsageMeter) -> None:
        self._finish(meter)
        if isinstance(exc, asyncio.CancelledError | GeneratorExit):
            self._status, self._error = RunStatus.CANCELLED, (CANCELLED, "the client cancelled the run")
            return
        status = to_status(exc, request_id.get())
        self._status = RunStatus.CANCELLED if status.code == CANCELLED else RunStatus.FAILED
        self._error = (status.code, status.message)

    def _finish(self, meter: UsageMeter) -> None:
        self._duration_ms = (time.perf_counter() - self._started) * 1000
        self._meter, self._finished = meter, True

    def record(self) -> RunRecord:
        """The run as stored: its messages turned into JSON (the background writer calls this)."""
        m = self._meter
        return RunRecord(
            run_id=self.run_id, pattern=self.pattern, method=self.method, status=self._status,
            principal=self.principal, created_at=self.created_at, duration_ms=self._duration_ms,
            models=tuple(m.models), backends=tuple(m.backends), prompt_tokens=m.prompt_tokens,
            output_tokens=m.output_tokens, model_calls=m.model_calls, request=to_json(self._request),
            events=self._events.to_json(), events_dropped=self._events.dropped,
            result=None if self._result is None else to_json(self._result),
            error_code=self._error[0], error_message=self._error[1])
