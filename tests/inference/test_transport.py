"""The backend transport (aiohttp) against a real HTTP server: lines framed across chunks however
they arrive, error statuses mapped to the engine's failures, a silent backend timed out, and a
caller that goes away closing the backend's connection at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from llmmesh.common.backends import parse_backend
from llmmesh.inference.failures import BackendFailure, BackendRejected, ModelMissing, Unsupported
from llmmesh.inference.pool import Backend, make_backend
from llmmesh.inference.transport import Transport

BIG = "x" * 200_000  # over aiohttp's readline limit (128 KiB)


class Server:
    def __init__(self) -> None:
        self.disconnected = asyncio.Event()
        self.bodies: list[bytes] = []

    async def chunks(self, request: web.Request) -> web.StreamResponse:
        self.bodies.append(await request.read())
        resp = web.StreamResponse()
        await resp.prepare(request)
        for piece in (b'{"a": 1}\n{"b"', b': 2}\r\n\r\n{"big": "', BIG.encode(), b'"}\n', b"tail"):
            await resp.write(piece)
            await asyncio.sleep(0.01)  # separate reads on the client
        return resp

    async def hang(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b"first\n")
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:  # aiohttp cancels the handler when the client disconnects
            self.disconnected.set()
            raise
        return resp

    async def status(self, request: web.Request) -> web.Response:
        code = int(request.match_info["code"])
        return web.json_response({"error": {"message": f"status {code}"}}, status=code)


@pytest.fixture
async def served() -> AsyncIterator[tuple[Server, Backend, Transport]]:
    server = Server()
    app = web.Application()
    app.add_routes([web.post("/chunks", server.chunks), web.post("/hang", server.hang),
                    web.post("/status/{code}", server.status)])
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    transport = Transport("", connect_timeout_s=2.0, idle_timeout_s=0.5, max_connections=4)
    backend = make_backend(parse_backend(f"t=http://127.0.0.1:{port}"), 3, 5.0)
    try:
        yield server, backend, transport
    finally:
        await transport.close()
        await runner.cleanup()


async def test_lines_are_framed_across_chunks_with_crlf_long_lines_and_a_last_line_without_newline(
        served: tuple[Server, Backend, Transport]) -> None:
    server, backend, transport = served
    async with transport.stream(backend, "/chunks", {"model": "m", "text": "é"}) as lines:
        got = [line async for line in lines]
    assert got == ['{"a": 1}', '{"b": 2}', "", f'{{"big": "{BIG}"}}', "tail"]
    assert server.bodies == ['{"model":"m","text":"é"}'.encode()]


@pytest.mark.parametrize(("code", "error"), [(404, ModelMissing), (400, BackendRejected), (422, BackendRejected),
                                             (501, Unsupported), (503, BackendFailure)])
async def test_error_statuses_map_to_the_engines_failures(served: tuple[Server, Backend, Transport], code: int,
                                                          error: type[Exception]) -> None:
    _, backend, transport = served
    with pytest.raises(error, match=f"status {code}"):
        async with transport.stream(backend, f"/status/{code}", {}):
            pass
    with pytest.raises(error, match=f"status {code}"):
        await transport.post_json(backend, f"/status/{code}", {})


async def test_a_backend_silent_past_the_idle_timeout_fails_over(served: tuple[Server, Backend, Transport]) -> None:
    server, backend, transport = served
    seen = []
    with pytest.raises(BackendFailure, match="went silent"):
        async with transport.stream(backend, "/hang", {}) as lines:
            async for line in lines:
                seen.append(line)
    assert seen == ["first"]
    await asyncio.wait_for(server.disconnected.wait(), 5)


async def test_a_cancelled_reader_closes_the_backend_connection_at_once(
        served: tuple[Server, Backend, Transport]) -> None:
    server, backend, _ = served
    # An idle timeout far beyond the wait below: only closing on cancel can end the request in time.
    transport = Transport("", connect_timeout_s=2.0, idle_timeout_s=60.0, max_connections=4)
    started = asyncio.Event()

    async def read() -> None:
        async with transport.stream(backend, "/hang", {}) as lines:
            async for _ in lines:
                started.set()

    task = asyncio.create_task(read())
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    try:
        await asyncio.wait_for(server.disconnected.wait(), 10)
    finally:
        await transport.close()


async def test_an_unreachable_backend_is_a_failure_not_a_crash() -> None:
    transport = Transport("", connect_timeout_s=1.0, idle_timeout_s=1.0, max_connections=1)
    backend = make_backend(parse_backend("u=http://127.0.0.1:9"), 3, 5.0)
    try:
        with pytest.raises(BackendFailure, match="transport error"):
            async with transport.stream(backend, "/x", {}):
                pass
        with pytest.raises(BackendFailure):
            await transport.get_json(backend, "/x", 1.0)
    finally:
        await transport.close()
