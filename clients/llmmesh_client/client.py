"""`AsyncLlmMesh` and `LlmMesh`: one client surface for the mesh's services, async and sync.

    async with AsyncLlmMesh("localhost:8080", api_key="...") as mesh:
        async for event in mesh.inference.generate("Why is the sky blue?", options={"max_tokens": 32}):
            ...

    with LlmMesh("localhost:8080") as mesh:
        verdict = mesh.judge.evaluate(question="2+2?", answer="4")

The sync client runs the async one on a private event-loop thread (see `llmmesh_client.blocking`
for why), so both flavours have the same methods, arguments, deadlines, retries and errors.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Unpack

from grpc_health.v1 import health_pb2

from llmmesh_client.blocking import Facade, LoopThread, blocking
from llmmesh_client.config import DEFAULT_TARGET, ClientConfig, ClientOptions, open_channel
from llmmesh_client.methods import HEALTH
from llmmesh_client.services.collaboration import AsyncCollaboration, Collaboration
from llmmesh_client.services.compare import AsyncCompare, Compare
from llmmesh_client.services.inference import AsyncInference, Inference
from llmmesh_client.services.judge import AsyncJudge, Judge
from llmmesh_client.services.jury import AsyncJury, Jury
from llmmesh_client.services.planexecute import AsyncPlanExecute, PlanExecute
from llmmesh_client.services.reflection import AsyncReflection, Reflection
from llmmesh_client.services.runs import AsyncRuns, Runs
from llmmesh_client.services.tooluse import AsyncToolUse, ToolUse
from llmmesh_client.transport import Transport


class AsyncLlmMesh:
    """The async client. Create it inside a running event loop (it opens a grpc.aio channel)."""

    def __init__(self, target: str = DEFAULT_TARGET, **options: Unpack[ClientOptions]) -> None:
        self.config = ClientConfig.build(target, options)
        self.channel = open_channel(self.config)
        transport = Transport(self.channel, self.config)
        self._transport = transport
        self.inference = AsyncInference(transport)
        self.judge = AsyncJudge(transport)
        self.jury = AsyncJury(transport)
        self.tooluse = AsyncToolUse(transport)
        self.planexecute = AsyncPlanExecute(transport)
        self.reflection = AsyncReflection(transport)
        self.collaboration = AsyncCollaboration(transport)
        self.compare = AsyncCompare(transport)
        self.runs = AsyncRuns(transport)

    def health(self, service: str = "", *, timeout: float | None = None,
               request_id: str | None = None) -> Awaitable[str]:
        """gRPC health of `service` (full name, e.g. llmmesh.judge.v1.JudgeService; empty for the
        server as a whole): "SERVING", "NOT_SERVING", … Unknown services raise NotFoundError."""
        call = self._transport.unary(HEALTH["Check"], health_pb2.HealthCheckRequest(service=service),
                                     timeout=timeout, request_id=request_id)
        return _status_name(call)

    async def close(self) -> None:
        """Close the channel; calls still running are cancelled."""
        await self.channel.close()

    async def __aenter__(self) -> AsyncLlmMesh:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def _status_name(call: Awaitable[health_pb2.HealthCheckResponse]) -> str:
    return health_pb2.HealthCheckResponse.ServingStatus.Name((await call).status)


class LlmMesh(Facade[AsyncLlmMesh]):
    """The sync client: the async client driven from a private event-loop thread."""

    health = blocking(AsyncLlmMesh.health)
    _close_channel = blocking(AsyncLlmMesh.close)

    def __init__(self, target: str = DEFAULT_TARGET, **options: Unpack[ClientOptions]) -> None:
        runner = LoopThread()
        try:
            inner = runner.call(lambda: AsyncLlmMesh(target, **options))
        except BaseException:
            runner.close()
            raise
        super().__init__(inner, runner)
        self.config = inner.config
        self.inference = Inference(inner.inference, runner)
        self.judge = Judge(inner.judge, runner)
        self.jury = Jury(inner.jury, runner)
        self.tooluse = ToolUse(inner.tooluse, runner)
        self.planexecute = PlanExecute(inner.planexecute, runner)
        self.reflection = Reflection(inner.reflection, runner)
        self.collaboration = Collaboration(inner.collaboration, runner)
        self.compare = Compare(inner.compare, runner)
        self.runs = Runs(inner.runs, runner)
        self._closed = False

    def close(self) -> None:
        """Close the channel (cancelling calls still running) and stop the loop thread."""
        if self._closed:
            return
        self._closed = True
        try:
            self._close_channel()
        finally:
            self._runner.close()

    def __enter__(self) -> LlmMesh:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
