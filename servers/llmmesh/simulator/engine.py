"""The request engine shared by the native and the OpenAI-compatible API.

It resolves faults, enforces concurrency, paces tokens, writes frames, injects mid-stream
faults and detects clients that go away. Wire formats live in the ``Dialect`` subclasses.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from llmmesh.simulator.config import FaultSpec
from llmmesh.simulator.faults import BUSY_MESSAGE, FaultSpecError, format_fault_spec, parse_fault_spec
from llmmesh.simulator.generation import Answer, answer, count_tokens
from llmmesh.simulator.genrequest import BadRequest, GenRequest, decode_body
from llmmesh.simulator.schema_instance import SchemaError
from llmmesh.simulator.state import STATE, SimulatorState
from llmmesh.simulator.stats import RequestRecord

log = logging.getLogger("llmmesh.simulator")

FAULT_HEADER = "x-sim-fault"
_POLL_S = 0.02  # how often waits check whether the client is still there
_FAILURE_MESSAGE = "an error was encountered while running the model: simulated failure at chunk {n}"


class ClientGone(Exception):
    """The client closed the connection before the response finished."""


def not_found_message(model: str) -> str:
    return f'model "{model}" not found, try pulling it first'


def client_gone(request: web.BaseRequest) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def pause(request: web.BaseRequest, state: SimulatorState, seconds: float) -> None:
    """Sleep, but notice a vanished client within ``_POLL_S`` (raises ``ClientGone``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        if client_gone(request):
            raise ClientGone
        remaining = deadline - loop.time()
        if remaining <= 0 or state.closing.is_set():
            return
        await asyncio.sleep(min(remaining, _POLL_S))


async def hang(request: web.BaseRequest, state: SimulatorState) -> None:
    """Send nothing until the client goes away (``ClientGone``) or the server shuts down."""
    while not state.closing.is_set():
        if client_gone(request):
            raise ClientGone
        await asyncio.sleep(_POLL_S)


async def drop(request: web.BaseRequest) -> None:
    """Abort the TCP connection (RST, no terminating chunk) once written frames have left."""
    transport = request.transport
    if transport is None:
        return
    for _ in range(100):
        if transport.get_write_buffer_size() == 0:
            break
        await asyncio.sleep(0.01)
    transport.abort()


def resolve_fault(request: web.BaseRequest, state: SimulatorState, body_fault: str, script_fault: str) -> FaultSpec:
    """Instance fault, overridden by the script rule's, then the body's, then the header's."""
    spec = state.faults.take()
    for text in (script_fault, body_fault, request.headers.get(FAULT_HEADER, "")):
        spec = spec.merge(parse_fault_spec(text))
    return state.faults.roll(spec)


def work_endpoint(
    fn: Callable[[web.Request, SimulatorState, RequestRecord], Awaitable[web.StreamResponse]],
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Wrap a chat/generate/embed handler with stats bookkeeping and disconnect handling."""

    @functools.wraps(fn)
    async def handler(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE]
        record = state.stats.begin(request.path)
        try:
            response = await fn(request, state, record)
        except (ClientGone, ConnectionError):
            state.stats.finish(record, "cancelled")
            return web.Response()  # never reaches the client; aiohttp ignores the closed socket
        except asyncio.CancelledError:
            # Cancelled while the simulator keeps running: the client went away (aiohttp cancels the
            # handler on a lost connection, and the transport may not look closed yet).
            state.stats.finish(record, "shutdown" if state.closing.is_set() else "cancelled")
            raise
        except Exception:
            log.exception("simulator handler failed on %s", request.path)
            state.stats.finish(record, "error", 500)
            return web.json_response({"error": "internal simulator error"}, status=500)
        if record.outcome is None:
            state.stats.finish(record, "completed" if response.status < 400 else "error", response.status)
        return response

    return handler


@dataclass
class Summary:
    """Everything a final frame / full body needs."""

    answer: Answer
    tokens: list[str]  # tokens actually produced
    load_ns: int
    prompt_eval_ns: int
    eval_ns: int
    total_ns: int

    @property
    def text(self) -> str:
        return "".join(self.tokens)

    @property
    def eval_count(self) -> int:
        if self.answer.tool_calls:
            return max(1, count_tokens(json.dumps(list(self.answer.tool_calls))))
        return len(self.tokens)


class Dialect:
    """Wire format of one API family; one instance per request."""

    content_type = "application/x-ndjson"

    def __init__(self, req: GenRequest) -> None:
        self.req = req

    def token_frame(self, token: str) -> bytes:
        raise NotImplementedError

    def tools_frame(self, calls: tuple[dict[str, Any], ...]) -> bytes:
        raise NotImplementedError

    def final_frames(self, summary: Summary) -> list[bytes]:
        raise NotImplementedError

    def error_frame(self, message: str) -> bytes:
        raise NotImplementedError

    def full_body(self, summary: Summary) -> dict[str, Any]:
        raise NotImplementedError

    @staticmethod
    def error_response(status: int, message: str) -> web.Response:
        return web.json_response({"error": message}, status=status)


def _fault_error_message(status: int) -> str:
    return BUSY_MESSAGE if status == 503 else f"simulated fault: HTTP {status}"


async def read_json(request: web.Request) -> dict[str, Any]:
    return decode_body(await request.read())


async def serve_generation(
    request: web.Request,
    state: SimulatorState,
    record: RequestRecord,
    req: GenRequest,
    dialect: Dialect,
) -> web.StreamResponse:
    """Run one chat/generate request end to end (after the body was parsed)."""
    if not state.catalog.has(req.model):
        state.stats.finish(record, "not_found", 404)
        return dialect.error_response(404, not_found_message(req.model))
    try:
        result = answer(req, state.config.tokens, state.scripts, state.config.continuation)
        fault = resolve_fault(request, state, req.sim_fault, result.script_fault)
    except (FaultSpecError, SchemaError) as exc:
        state.stats.finish(record, "bad_request", 400)
        return dialect.error_response(400, str(exc))
    record.describe(req.model, req.full_text(), format_fault_spec(fault))
    record.scripted = result.scripted
    limit = fault.max_concurrency if fault.max_concurrency is not None else state.config.max_concurrency
    with state.generation_slot(limit) as admitted:
        if not admitted:
            state.stats.finish(record, "busy", 503)
            return dialect.error_response(503, BUSY_MESSAGE)
        return await _generate(request, state, record, req, dialect, result, fault)


async def _generate(
    request: web.Request,
    state: SimulatorState,
    record: RequestRecord,
    req: GenRequest,
    dialect: Dialect,
    result: Answer,
    fault: FaultSpec,
) -> web.StreamResponse:
    started = time.monotonic_ns()
    await pause(request, state, (fault.delay_ms or 0) / 1000)
    if fault.busy:
        state.stats.finish(record, "busy", 503)
        return dialect.error_response(503, BUSY_MESSAGE)
    if fault.status is not None:
        state.stats.finish(record, "error", fault.status)
        return dialect.error_response(fault.status, _fault_error_message(fault.status))
    loaded_now = state.catalog.touch(req.model, req.keep_alive_s)
    load_ns = 1_200_000 if loaded_now else 40_000  # nominal: nothing is really loaded
    token_delay = fault.token_delay_ms / 1000 if fault.token_delay_ms is not None else state.config.token_delay_s
    response: web.StreamResponse | None = None
    if req.stream:
        response = web.StreamResponse(status=200, headers={"Content-Type": dialect.content_type})
        await response.prepare(request)

    produced: list[str] = []
    first_token_ns: int | None = None

    def summary() -> Summary:
        now = time.monotonic_ns()
        first = first_token_ns or now
        return Summary(
            answer=result,
            tokens=produced,
            load_ns=load_ns,
            prompt_eval_ns=max(1, first - started),
            eval_ns=max(1, now - first),
            total_ns=max(1, now - started) + load_ns,
        )

    async def emit(frames: list[bytes]) -> web.StreamResponse | None:
        """Write frames (streaming) or just count them; a response means a fault ended it."""
        for frame in frames:
            stopped = await _mid_stream_fault(request, state, record, dialect, response, fault)
            if stopped is not None:
                return stopped
            if response is not None:
                await response.write(frame)
            record.frames += 1
        return None

    for token in result.tokens:
        await pause(request, state, token_delay)
        produced.append(token)
        record.tokens = len(produced)
        if first_token_ns is None:
            first_token_ns = time.monotonic_ns()
            record.mark_first_token()
        if (stopped := await emit([dialect.token_frame(token)])) is not None:
            return stopped
    if result.tool_calls:
        await pause(request, state, token_delay)
        first_token_ns = first_token_ns or time.monotonic_ns()
        record.mark_first_token()
        if (stopped := await emit([dialect.tools_frame(result.tool_calls)])) is not None:
            return stopped
    if (stopped := await emit(dialect.final_frames(summary()))) is not None:
        return stopped
    if response is None:
        return web.json_response(dialect.full_body(summary()))
    await response.write_eof()
    return response


async def _mid_stream_fault(
    request: web.Request,
    state: SimulatorState,
    record: RequestRecord,
    dialect: Dialect,
    response: web.StreamResponse | None,
    fault: FaultSpec,
) -> web.StreamResponse | None:
    """Inject fail/hang/drop before frame number ``record.frames``; a response means "stop here"."""
    n = record.frames
    if fault.fail_at_chunk == n:
        message = _FAILURE_MESSAGE.format(n=n)
        state.stats.finish(record, "error", 200 if response is not None else 500)
        if response is None:  # non-streaming: Ollama answers 500 with the error
            return dialect.error_response(500, message)
        await response.write(dialect.error_frame(message))
        await response.write_eof()
        return response
    if fault.hang_after == n:
        await hang(request, state)
        state.stats.finish(record, "shutdown")
        return response or web.Response(status=503)
    if fault.drop_after == n:
        await drop(request)
        state.stats.finish(record, "dropped")
        return response or web.Response()
    if client_gone(request):
        raise ClientGone
    return None


async def serve_single_shot(
    request: web.Request,
    state: SimulatorState,
    record: RequestRecord,
    model: str,
    prompt: str,
    body_fault: str,
    error_response: Callable[[int, str], web.Response],
    build: Callable[[], dict[str, Any]],
) -> web.StreamResponse:
    """Embeddings: one response frame; status/delay/busy/concurrency and ``*=0`` faults apply."""
    if not state.catalog.has(model):
        state.stats.finish(record, "not_found", 404)
        return error_response(404, not_found_message(model))
    try:
        fault = resolve_fault(request, state, body_fault, "")
    except FaultSpecError as exc:
        state.stats.finish(record, "bad_request", 400)
        return error_response(400, str(exc))
    record.describe(model, prompt, format_fault_spec(fault))
    limit = fault.max_concurrency if fault.max_concurrency is not None else state.config.max_concurrency
    with state.generation_slot(limit) as admitted:
        if not admitted:
            state.stats.finish(record, "busy", 503)
            return error_response(503, BUSY_MESSAGE)
        await pause(request, state, (fault.delay_ms or 0) / 1000)
        if fault.busy:
            state.stats.finish(record, "busy", 503)
            return error_response(503, BUSY_MESSAGE)
        if fault.status is not None:
            state.stats.finish(record, "error", fault.status)
            return error_response(fault.status, _fault_error_message(fault.status))
        if fault.fail_at_chunk == 0:
            state.stats.finish(record, "error", 500)
            return error_response(500, _FAILURE_MESSAGE.format(n=0))
        if fault.hang_after == 0:
            await hang(request, state)
            state.stats.finish(record, "shutdown")
            return web.Response(status=503)
        if fault.drop_after == 0:
            await drop(request)
            state.stats.finish(record, "dropped")
            return web.Response()
        body = build()
        record.frames = 1
        return web.json_response(body)


def bad_request(
    state: SimulatorState, record: RequestRecord, exc: BadRequest, error_response: Callable[[int, str], web.Response]
) -> web.Response:
    state.stats.finish(record, "bad_request", 400)
    return error_response(400, str(exc))
