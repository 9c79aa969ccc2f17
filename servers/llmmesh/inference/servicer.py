"""gRPC face of the inference service: translates messages, nothing else."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import grpc

from llmmesh.common.cache_mode import CacheMode
from llmmesh.common.inference_messages import tool_calls_message
from llmmesh.common.model_call import (
    ChatMessage,
    Finished,
    GenerationEvent,
    ModelCall,
    Queued,
    TextDelta,
    ToolCallData,
    ToolCalls,
)
from llmmesh.common.v1 import common_pb2
from llmmesh.framework.batching import batches
from llmmesh.framework.bidi import BidiSession, Interrupted
from llmmesh.framework.errors import MeshError, to_status
from llmmesh.framework.quotas import Quotas
from llmmesh.framework.request_context import request_id
from llmmesh.framework.services import ServiceDeps
from llmmesh.inference import convert
from llmmesh.inference.admission import Claim
from llmmesh.inference.budget import TokenBudget
from llmmesh.inference.cache import CacheMetrics, ResponseCache
from llmmesh.inference.engine import InferenceEngine
from llmmesh.inference.fair_share import fair_share_over
from llmmesh.inference.metrics import InferenceMetrics
from llmmesh.inference.traced import traced
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc

log = logging.getLogger("llmmesh.inference")

_PROTOCOL = {"ollama": pb.BACKEND_PROTOCOL_OLLAMA, "openai": pb.BACKEND_PROTOCOL_OPENAI,
             "anthropic": pb.BACKEND_PROTOCOL_ANTHROPIC}
_CIRCUIT = {"closed": pb.CIRCUIT_STATE_CLOSED, "open": pb.CIRCUIT_STATE_OPEN, "half_open": pb.CIRCUIT_STATE_HALF_OPEN}


class InferenceServicer(pb_grpc.InferenceServiceServicer):
    def __init__(self, engine: InferenceEngine, quotas: Quotas | None = None,
                 cache: ResponseCache | None = None) -> None:
        self.engine = engine
        # Per-key token budgets: every generation below is admitted and charged through it.
        self.budget = TokenBudget(quotas, engine.metrics.key_tokens)
        # Deterministic requests answered again from it, before routing and outside the budget.
        self.cache = cache

    def _metered(self, call: ModelCall, claim: Claim) -> AsyncIterator[GenerationEvent]:
        return self.budget.metered(self.engine.generate(call, claim))

    def _generate(self, call: ModelCall, cache: CacheMode, claim: Claim) -> AsyncIterator[GenerationEvent]:
        if self.cache is None or not self.cache.applies(call, cache):
            return traced(call, self._metered(call, claim))
        return traced(call, self.cache.serve(call, cache, partial(self._metered, claim=claim)))

    async def start(self) -> None:
        await self.engine.start()

    async def close(self) -> None:
        await self.engine.close()

    async def Generate(self, request: pb.GenerateRequest, context: Any) -> AsyncIterator[pb.GenerateResponse]:
        call = convert.generate_call(request)
        cache = convert.cache_mode(request.cache, _metadata(context))
        claim = Claim.of_caller(convert.priority(request.priority, _metadata(context)))
        async for event in coalesced(self._generate(call, cache, claim)):
            if isinstance(event, TextDelta):
                yield pb.GenerateResponse(delta=common_pb2.TokenDelta(text=event.text))
            elif isinstance(event, Queued):
                yield pb.GenerateResponse(queued=_queued(event))
            elif isinstance(event, Finished):
                yield pb.GenerateResponse(done=convert.done_message(event.stats))

    async def CompleteChat(self, request: pb.CompleteChatRequest, context: Any) -> pb.CompleteChatResponse:
        call = convert.chat_call(request)
        cache = convert.cache_mode(request.cache, _metadata(context))
        claim = Claim.of_caller(convert.priority(request.priority, _metadata(context)))
        text: list[str] = []
        calls: list[pb.ToolCall] = []
        done = pb.GenerationDone()
        async for event in self._generate(call, cache, claim):  # a unary call waits in the queue silently
            if isinstance(event, TextDelta):
                text.append(event.text)
            elif isinstance(event, ToolCalls):
                calls.extend(tool_calls_message(event.calls))
            elif isinstance(event, Finished):
                done = convert.done_message(event.stats)
        message = pb.Message(role=pb.ROLE_ASSISTANT, content="".join(text), tool_calls=calls)
        return pb.CompleteChatResponse(message=message, done=done)

    async def CompleteChatStream(self, request: pb.CompleteChatStreamRequest,
                                 context: Any) -> AsyncIterator[pb.CompleteChatStreamResponse]:
        call = convert.chat_call(request)
        cache = convert.cache_mode(request.cache, _metadata(context))
        claim = Claim.of_caller(convert.priority(request.priority, _metadata(context)))
        async for event in coalesced(self._generate(call, cache, claim)):
            yield pb.CompleteChatStreamResponse(**_event_fields(event))

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
                tokens = 0
                calls: list[ToolCallData] = []
                try:
                    call = convert.chat_call(req.turn, history)
                    cache = convert.cache_mode(req.turn.cache, _metadata(context))
                    claim = Claim.of_caller(convert.priority(req.turn.priority, _metadata(context)))
                    async for event in session.until_interrupted(coalesced(self._generate(call, cache, claim))):
                        if isinstance(event, Interrupted):
                            yield pb.ChatResponse(turn=turn, done=pb.GenerationDone(
                                model=call.model, done_reason="cancelled", output_tokens=tokens))
                            continue
                        if isinstance(event, TextDelta):
                            text.append(event.text)
                            tokens += event.tokens
                        elif isinstance(event, ToolCalls):
                            calls.extend(event.calls)
                        yield pb.ChatResponse(turn=turn, **_event_fields(event))
                    history = (*call.messages, ChatMessage("assistant", "".join(text), tuple(calls)))
                except Exception as exc:  # one turn failing does not end the conversation
                    if not isinstance(exc, MeshError):
                        log.error("chat turn failed", exc_info=exc)
                    if context.cancelled():
                        return
                    yield pb.ChatResponse(turn=turn, error=to_status(exc, request_id.get()))

    async def Embed(self, request: pb.EmbedRequest, context: Any) -> pb.EmbedResponse:
        inputs = convert.embed_inputs(request)
        await self.budget.admit()
        result = await self.engine.embed(request.model, inputs)
        await self.budget.charge(result.prompt_tokens)
        return pb.EmbedResponse(model=result.model, backend=result.backend, prompt_tokens=result.prompt_tokens,
                                embeddings=[pb.Embedding(values=list(v)) for v in result.vectors])

    async def ListModels(self, request: pb.ListModelsRequest, context: Any) -> pb.ListModelsResponse:
        models = [pb.ModelInfo(name=m, backends=b, loaded_on=loaded, aliases=a, context_window=caps.context_window,
                               native_tools=bool(caps.native_tools),
                               routes=convert.route_targets(self.engine.routes.targets_of(m)))
                  for m, b, loaded, a, caps in self.engine.models()]
        return pb.ListModelsResponse(models=models, default_model=self.engine.default_model())

    async def ListBackends(self, request: pb.ListBackendsRequest, context: Any) -> pb.ListBackendsResponse:
        return pb.ListBackendsResponse(backends=[
            pb.BackendInfo(
                name=b.name, url=b.config.shown_url, protocol=_PROTOCOL[b.config.protocol.value],
                health=pb.BACKEND_HEALTH_HEALTHY if b.healthy else pb.BACKEND_HEALTH_UNHEALTHY,
                circuit=_CIRCUIT[b.breaker.state.value], in_flight=b.in_flight,
                models=sorted(b.models | set(b.config.models)), loaded_models=sorted(b.loaded), last_error=b.last_error,
                continuation=b.protocol.continuation.value,
            )
            for b in self.engine.pool.backends
        ])


async def coalesced(events: AsyncIterator[GenerationEvent]) -> AsyncIterator[GenerationEvent]:
    """`events` with the text deltas that queued up while the client was being written to joined
    into one: a client that keeps up still gets each token at once; a lagging one gets fewer, larger
    messages instead of a backlog of one message per token (see llmmesh.framework.batching)."""
    async for batch in batches(events, size=_text_bytes):
        run: list[TextDelta] = []
        for event in batch:
            if isinstance(event, TextDelta):
                run.append(event)
                continue
            if run:
                yield _joined(run)
                run = []
            yield event
        if run:
            yield _joined(run)


def _text_bytes(event: GenerationEvent) -> int:
    return len(event.text) if isinstance(event, TextDelta) else 0


def _joined(run: list[TextDelta]) -> TextDelta:
    if len(run) == 1:
        return run[0]
    return TextDelta("".join(d.text for d in run), sum(d.tokens for d in run))


def _event_fields(event: GenerationEvent) -> dict[str, Any]:
    """The `event` oneof of a chat stream's response (Chat, CompleteChatStream) for `event`."""
    if isinstance(event, TextDelta):
        return {"delta": common_pb2.TokenDelta(text=event.text)}
    if isinstance(event, Queued):
        return {"queued": _queued(event)}
    if isinstance(event, ToolCalls):
        return {"tool_calls": pb.ToolCallsEvent(tool_calls=tool_calls_message(event.calls))}
    return {"done": convert.done_message(event.stats)}


def _queued(event: Queued) -> pb.QueuePosition:
    return pb.QueuePosition(position=event.position, queue_length=event.queue_length)


def _metadata(context: Any) -> dict[str, str]:
    return dict(context.invocation_metadata() or ())


def _is_stop(req: pb.ChatRequest) -> bool:
    return req.WhichOneof("action") == "control" and req.control.action == pb.CHAT_CONTROL_ACTION_STOP


def build(deps: ServiceDeps) -> InferenceServicer:
    engine = InferenceEngine(deps.settings.inference, InferenceMetrics.create(deps.registry),
                             fair_share=fair_share_over(deps.shared_state))
    cache = None
    if deps.settings.cache.enabled:
        cache = ResponseCache(deps.shared_state, deps.settings.cache, CacheMetrics.create(deps.registry),
                              engine.resolve, engine.inventory.digests)
    return InferenceServicer(engine, deps.quotas, cache)


