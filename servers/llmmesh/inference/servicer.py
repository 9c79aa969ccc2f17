"""gRPC face of the inference service: translates messages, nothing else."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc

from llmmesh.common.inference_messages import tool_calls_message
from llmmesh.common.model_call import (
    ChatMessage,
    Finished,
    GenerationEvent,
    ModelCall,
    TextDelta,
    ToolCallData,
    ToolCalls,
)
from llmmesh.common.v1 import common_pb2
from llmmesh.framework.bidi import BidiSession, Interrupted
from llmmesh.framework.errors import MeshError, to_status
from llmmesh.framework.quotas import Quotas
from llmmesh.framework.request_context import request_id
from llmmesh.framework.services import ServiceDeps
from llmmesh.inference import convert
from llmmesh.inference.budget import TokenBudget
from llmmesh.inference.engine import InferenceEngine
from llmmesh.inference.metrics import InferenceMetrics
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc

log = logging.getLogger("llmmesh.inference")

_PROTOCOL = {"ollama": pb.BACKEND_PROTOCOL_OLLAMA, "openai": pb.BACKEND_PROTOCOL_OPENAI}
_CIRCUIT = {"closed": pb.CIRCUIT_STATE_CLOSED, "open": pb.CIRCUIT_STATE_OPEN, "half_open": pb.CIRCUIT_STATE_HALF_OPEN}


class InferenceServicer(pb_grpc.InferenceServiceServicer):
    def __init__(self, engine: InferenceEngine, quotas: Quotas | None = None) -> None:
        self.engine = engine
        # Per-key token budgets: every generation below is admitted and charged through it.
        self.budget = TokenBudget(quotas)

    def _generate(self, call: ModelCall) -> AsyncIterator[GenerationEvent]:
        return self.budget.metered(self.engine.generate(call))

    async def start(self) -> None:
        await self.engine.start()

    async def close(self) -> None:
        await self.engine.close()

    async def Generate(self, request: pb.GenerateRequest, context: Any) -> AsyncIterator[pb.GenerateResponse]:
        call = convert.generate_call(request)
        async for event in self._generate(call):
            if isinstance(event, TextDelta):
                yield pb.GenerateResponse(delta=common_pb2.TokenDelta(text=event.text))
            elif isinstance(event, Finished):
                yield pb.GenerateResponse(done=convert.done_message(event.stats))

    async def CompleteChat(self, request: pb.CompleteChatRequest, context: Any) -> pb.CompleteChatResponse:
        call = convert.chat_call(request)
        text: list[str] = []
        calls: list[pb.ToolCall] = []
        done = pb.GenerationDone()
        async for event in self._generate(call):
            if isinstance(event, TextDelta):
                text.append(event.text)
            elif isinstance(event, ToolCalls):
                calls.extend(tool_calls_message(event.calls))
            else:
                done = convert.done_message(event.stats)
        message = pb.Message(role=pb.ROLE_ASSISTANT, content="".join(text), tool_calls=calls)
        return pb.CompleteChatResponse(message=message, done=done)

    async def Chat(self, request_iterator: AsyncIterator[pb.ChatRequest],
                   context: grpc.aio.ServicerContext) -> AsyncIterator[pb.ChatResponse]:
        session = BidiSession(request_iterator, _is_stop)
        history: tuple[ChatMessage, ...] = ()
        turn = 0
        async with session:
            async for req in session.requests():
                if req.WhichOneof("action") == "control":
                    if req.control.action == pb.CHAT_CONTROL_ACTION_RESET:
                        history = ()
                    continue  # STOP with no generation running is a no-op
                turn += 1
                text: list[str] = []
                calls: list[ToolCallData] = []
                try:
                    call = convert.chat_call(req.turn, history)
                    async for event in session.until_interrupted(self._generate(call)):
                        if isinstance(event, TextDelta):
                            text.append(event.text)
                            yield pb.ChatResponse(turn=turn, delta=common_pb2.TokenDelta(text=event.text))
                        elif isinstance(event, ToolCalls):
                            calls.extend(event.calls)
                            yield pb.ChatResponse(turn=turn, tool_calls=pb.ToolCallsEvent(
                                tool_calls=tool_calls_message(event.calls)))
                        elif isinstance(event, Interrupted):
                            yield pb.ChatResponse(turn=turn, done=pb.GenerationDone(
                                model=call.model, done_reason="cancelled", output_tokens=len(text)))
                        else:
                            yield pb.ChatResponse(turn=turn, done=convert.done_message(event.stats))
                    history = (*call.messages, ChatMessage("assistant", "".join(text), tuple(calls)))
                except Exception as exc:  # one turn failing does not end the conversation
                    if not isinstance(exc, MeshError):
                        log.error("chat turn failed", exc_info=exc)
                    if context.cancelled():
                        return
                    yield pb.ChatResponse(turn=turn, error=to_status(exc, request_id.get()))

    async def Embed(self, request: pb.EmbedRequest, context: Any) -> pb.EmbedResponse:
        inputs = convert.embed_inputs(request)
        self.budget.admit()
        result = await self.engine.embed(request.model, inputs)
        self.budget.charge(result.prompt_tokens)
        return pb.EmbedResponse(model=result.model, backend=result.backend, prompt_tokens=result.prompt_tokens,
                                embeddings=[pb.Embedding(values=list(v)) for v in result.vectors])

    async def ListModels(self, request: pb.ListModelsRequest, context: Any) -> pb.ListModelsResponse:
        models = [pb.ModelInfo(name=m, backends=b, loaded_on=loaded, aliases=a, context_window=caps.context_window,
                               native_tools=bool(caps.native_tools))
                  for m, b, loaded, a, caps in self.engine.models()]
        return pb.ListModelsResponse(models=models, default_model=self.engine.default_model())

    async def ListBackends(self, request: pb.ListBackendsRequest, context: Any) -> pb.ListBackendsResponse:
        return pb.ListBackendsResponse(backends=[
            pb.BackendInfo(
                name=b.name, url=b.config.url, protocol=_PROTOCOL[b.config.protocol.value],
                health=pb.BACKEND_HEALTH_HEALTHY if b.healthy else pb.BACKEND_HEALTH_UNHEALTHY,
                circuit=_CIRCUIT[b.breaker.state.value], in_flight=b.in_flight,
                models=sorted(b.models | set(b.config.models)), loaded_models=sorted(b.loaded), last_error=b.last_error,
            )
            for b in self.engine.pool.backends
        ])


def _is_stop(req: pb.ChatRequest) -> bool:
    return req.WhichOneof("action") == "control" and req.control.action == pb.CHAT_CONTROL_ACTION_STOP


def build(deps: ServiceDeps) -> InferenceServicer:
    return InferenceServicer(InferenceEngine(deps.settings.inference, InferenceMetrics.create(deps.registry)),
                             deps.quotas)


