"""Sending fuzzed requests to a live mesh and judging what comes back.

Every call has a deadline. An outcome is a short label (`grpc:INVALID_ARGUMENT`, `rest:400`,
`rest:200/error:5`, …) and is *forbidden* when it means a bug rather than a refusal:

- gRPC: INTERNAL, UNKNOWN, DATA_LOSS or UNIMPLEMENTED as the status or in a stream's `error`
  event; DEADLINE_EXCEEDED (nothing should take the fuzzers' generous deadline: it is a hang);
  a stream that ends OK without its terminal event (done, result or error). Not counted: the
  client-side INTERNAL of grpc/grpc#36066 (see `_client_write_after_status`), labelled apart.
- REST: any 5xx except 503 (no backend can serve: documented, with RetryInfo); an error body that
  is not a JSON google.rpc.Status; a 200 that is not JSON (or, for streams, SSE frames ending
  with a terminal event); an `error` event with code INTERNAL/UNKNOWN; a client-side timeout.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
from google.protobuf.message import Message

from tests.fuzz.strategies import Rpc

DEADLINE_S = 20.0
FORBIDDEN_CODES = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS,
                             grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.DEADLINE_EXCEEDED})
FORBIDDEN_STATUS_NUMBERS = frozenset(c.value[0] for c in FORBIDDEN_CODES)
TERMINAL_EVENTS = frozenset({"done", "result", "error"})
ALLOWED_5XX = frozenset({503})


@dataclass(frozen=True)
class Outcome:
    label: str
    forbidden: bool = False
    detail: str = ""


@dataclass
class Tally:
    outcomes: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    def add(self, outcome: Outcome, what: str) -> None:
        self.requests += 1
        self.outcomes[outcome.label] += 1
        if outcome.forbidden:
            self.failures.append(f"{outcome.label}: {outcome.detail[:300]} <- {what[:500]}")


def _event_kind(event: Message) -> str:
    oneof = event.DESCRIPTOR.oneofs_by_name.get("event")
    return (event.WhichOneof("event") or "") if oneof is not None else "message"


def _check_events(events: list[Message]) -> Outcome | None:
    for event in events:
        if _event_kind(event) == "error" and event.error.code in FORBIDDEN_STATUS_NUMBERS:
            return Outcome(f"grpc:event-error:{event.error.code}", True, event.error.message)
    return None


async def call_grpc(channel: grpc.aio.Channel, rpc: Rpc, msgs: list[Message],
                    metadata: list[tuple[str, str]]) -> Outcome:
    serialize, parse = (lambda m: m.SerializeToString()), rpc.response_class.FromString
    events: list[Message] = []
    try:
        if rpc.client_streaming:
            stream = channel.stream_stream(rpc.path, serialize, parse)(iter(msgs), timeout=DEADLINE_S,
                                                                        metadata=metadata)
            events = [e async for e in stream]
        elif rpc.server_streaming:
            stream = channel.unary_stream(rpc.path, serialize, parse)(msgs[0], timeout=DEADLINE_S, metadata=metadata)
            events = [e async for e in stream]
        else:
            await channel.unary_unary(rpc.path, serialize, parse)(msgs[0], timeout=DEADLINE_S, metadata=metadata)
    except grpc.aio.AioRpcError as exc:
        bad = _check_events(events)
        if bad is not None:
            return bad
        if _client_write_after_status(exc):
            return Outcome("grpc:client-write-after-status")
        return Outcome(f"grpc:{exc.code().name}", exc.code() in FORBIDDEN_CODES, exc.details() or "")
    bad = _check_events(events)
    if bad is not None:
        return bad
    if rpc.server_streaming and events and _event_kind(events[-1]) not in TERMINAL_EVENTS | {"message"}:
        return Outcome("grpc:OK/no-terminal-event", True, str(events[-1])[:200])
    return Outcome("grpc:OK")


def _client_write_after_status(exc: grpc.aio.AioRpcError) -> bool:
    """grpcio's asyncio *client* bug grpc/grpc#36066: when the server ends a client-streaming RPC
    (auth refused, first message invalid) while the client is still writing, the failed write
    overwrites the server's status with a local INTERNAL. The server sent the right status (the
    same requests through the sync client, or without later writes, show it); it never left it."""
    return (exc.code() == grpc.StatusCode.INTERNAL and exc.details() == "Internal error from Core"
            and 'Failed "execute_batch"' in (exc.debug_error_string() or "")
            and "SendMessageOperation" in (exc.debug_error_string() or ""))


def _sse(body: str) -> list[Any]:
    frames = [f for f in body.split("\n\n") if f.strip()]
    return [json.loads(f.removeprefix("data: ")) for f in frames]


def _judge_ok(rpc: Rpc, resp: httpx.Response) -> Outcome:
    if not rpc.server_streaming:
        resp.json()
        return Outcome("rest:200")
    events = _sse(resp.text)
    for event in events:
        error = event.get("error")
        if error is not None and error.get("code") in FORBIDDEN_STATUS_NUMBERS:
            return Outcome(f"rest:200/error:{error.get('code')}", True, error.get("message", ""))
    if events and not (set(events[-1]) & TERMINAL_EVENTS):
        return Outcome("rest:200/no-terminal-event", True, json.dumps(events[-1])[:200])
    return Outcome("rest:200/stream")


async def call_rest(http: httpx.AsyncClient, rpc: Rpc, body: bytes, headers: dict[str, str], query: str) -> Outcome:
    method, path = rpc.http or ("POST", "/")
    try:
        resp = await http.request(method, path + query, content=body if method != "GET" else None,
                                  headers={"content-type": "application/json", **headers}, timeout=DEADLINE_S)
    except httpx.TimeoutException as exc:
        return Outcome("rest:timeout", True, type(exc).__name__)
    status = resp.status_code
    try:
        if status == 200:
            return _judge_ok(rpc, resp)
        error = resp.json()
        code = error.get("code") if isinstance(error, dict) else None
        if not isinstance(code, int):
            return Outcome(f"rest:{status}/not-a-status", True, resp.text[:200])
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
        return Outcome(f"rest:{status}/unparseable", True, f"{type(exc).__name__}: {resp.text[:200]!r}")
    forbidden = (status >= 500 and status not in ALLOWED_5XX) or code in FORBIDDEN_STATUS_NUMBERS
    return Outcome(f"rest:{status}", forbidden, error.get("message", "") if isinstance(error, dict) else "")


def rss_bytes(pid: int) -> int:
    """Resident set size of a live process, from /proc."""
    for line in open(f"/proc/{pid}/status").read().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")
