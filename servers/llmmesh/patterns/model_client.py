"""How pattern services reach models: the InferenceService contract over gRPC, nothing else.

Deadlines, request ids, the admission class and the cache mode (x-llmmesh-priority, -cache) of
the calling RPC propagate to every model call; so does its caller,
named next to the service identity's key when API keys are on (llmmesh.framework.identity), so
its token budget pays. Token usage of all calls made inside a `metered()` block is summed into
its UsageMeter (tasks spawned inside the block share it, so a parallel jury is counted whole), and
into every enclosing block's (a pattern run inside a comparison, a run inside its servicer's record),
with the models and backends that answered.
Remote failures become RemoteError, which keeps the remote status code and rich details so the
caller's client sees the real cause.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from opentelemetry.trace import SpanKind

from llmmesh.common.inference_messages import role_enum, tool_calls_message
from llmmesh.common.model_call import ChatMessage, Sampling, ToolCallData, ToolDef
from llmmesh.common.structs import dict_to_struct, struct_to_dict
from llmmesh.common.v1 import common_pb2
from llmmesh.framework import request_context, tracing
from llmmesh.framework.errors import MeshError, status_code
from llmmesh.framework.identity import ServiceIdentity
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc

# Upper bound for a model call when the caller set no deadline.
DEFAULT_CALL_TIMEOUT_S = 600.0
# While the inference service is away, reconnect every second at most (gRPC's default backoff
# grows to 2 minutes), so calls waiting for it go on soon after it is back.
RECONNECT_OPTIONS: list[tuple[str, object]] = [("grpc.initial_reconnect_backoff_ms", 100),
                                               ("grpc.max_reconnect_backoff_ms", 1000)]
# Output cap of a call whose step chose no budget (see patterns.options.step_sampling).
DEFAULT_MAX_TOKENS = 512


class RemoteError(MeshError):
    """A model call failed in the inference service; carries its status as is."""

    def __init__(self, status: status_pb2.Status) -> None:
        super().__init__(status.message)
        self.code = status_code(status)
        self._details = list(status.details)

    def details(self) -> list[Any]:
        return self._details

    @property
    def reason(self) -> str:
        """The status's ErrorInfo reason ("" without one)."""
        info = error_details_pb2.ErrorInfo()
        return next((info.reason for d in self._details if d.Is(info.DESCRIPTOR) and d.Unpack(info)), "")


@dataclass(frozen=True)
class Completion:
    text: str
    tool_calls: tuple[ToolCallData, ...]
    model: str
    prompt_tokens: int
    output_tokens: int
    done_reason: str
    # Every backend that served part of the generation, in order; and its output rate.
    backends: tuple[str, ...] = ()
    tokens_per_second: float = 0.0


@dataclass
class UsageMeter:
    prompt_tokens: int = 0
    output_tokens: int = 0
    model_calls: int = 0
    started: float = field(default_factory=time.perf_counter)
    # The models that answered and the backends that served them, each once, in order of use.
    models: dict[str, None] = field(default_factory=dict)
    backends: dict[str, None] = field(default_factory=dict)
    # The enclosing `metered()` block's meter, which counts every call too.
    parent: UsageMeter | None = None

    def add(self, c: Completion) -> None:
        meter: UsageMeter | None = self
        while meter is not None:
            meter.prompt_tokens += c.prompt_tokens
            meter.output_tokens += c.output_tokens
            meter.model_calls += 1
            if c.model:
                meter.models[c.model] = None
            meter.backends.update(dict.fromkeys(c.backends))
            meter = meter.parent

    def to_proto(self) -> common_pb2.Usage:
        return common_pb2.Usage(prompt_tokens=self.prompt_tokens, output_tokens=self.output_tokens,
                                model_calls=self.model_calls, duration_ms=(time.perf_counter() - self.started) * 1000)


_meter: contextvars.ContextVar[UsageMeter | None] = contextvars.ContextVar("llmmesh_usage_meter", default=None)


@contextmanager
def metered() -> Iterator[UsageMeter]:
    meter = UsageMeter(parent=_meter.get())
    token = _meter.set(meter)
    try:
        yield meter
    finally:
        _meter.reset(token)


def count(completion: Completion) -> None:
    """Adds a finished model call to the usage of the `metered()` block it ran in (if any)."""
    meter = _meter.get()
    if meter is not None:
        meter.add(completion)


def _message(m: ChatMessage) -> pb.Message:
    return pb.Message(role=role_enum(m.role), content=m.content, tool_call_id=m.tool_call_id, name=m.name,
                      tool_calls=tool_calls_message(m.tool_calls))


def _options(s: Sampling) -> common_pb2.GenerationOptions:
    o = common_pb2.GenerationOptions(stop=list(s.stop), max_tokens=DEFAULT_MAX_TOKENS)
    for name in ("temperature", "max_tokens", "seed", "num_ctx", "top_p", "frequency_penalty"):
        value = getattr(s, name)
        if value is not None:
            setattr(o, name, value)
    return o


def _call_options(identity: ServiceIdentity) -> dict[str, Any]:
    remaining = request_context.time_remaining()
    metadata = [("x-request-id", request_context.request_id.get())] if request_context.request_id.get() else []
    metadata.extend(request_context.passed_on.get())  # the caller's admission class and cache mode
    metadata += identity.metadata()
    # A call made while the inference service is away (restarting: the launcher, a Kubernetes pod)
    # waits for it, within its deadline, instead of failing at once. Only a call not yet sent waits:
    # one the service had when it died still fails, never replayed.
    return {"timeout": DEFAULT_CALL_TIMEOUT_S if remaining is None else remaining, "metadata": metadata,
            "wait_for_ready": True}


class ModelClient:
    def __init__(self, target: str, identity: ServiceIdentity | None = None) -> None:
        self._target = target
        # The service key (naming the caller this call is made for) and mutual TLS, when on.
        self._identity = identity or ServiceIdentity()
        self._channel: grpc.aio.Channel | None = None
        self._stub: pb_grpc.InferenceServiceStub | None = None

    @property
    def stub(self) -> pb_grpc.InferenceServiceStub:
        if self._stub is None:  # lazily: the channel must be created on the serving event loop
            self._channel = self._identity.channel(self._target, RECONNECT_OPTIONS)
            self._stub = pb_grpc.InferenceServiceStub(self._channel)
        return self._stub

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()

    async def list_models(self, *, timeout_s: float | None = None) -> pb.ListModelsResponse:
        """The inference service's ListModels: names, aliases, context windows, native tools."""
        options = _call_options(self._identity)
        if timeout_s is not None:
            options["timeout"] = min(options["timeout"], timeout_s)
        return await self.stub.ListModels(pb.ListModelsRequest(), **options)

    async def stream(self, model: str, messages: Sequence[ChatMessage], *, sampling: Sampling | None = None,
                     json_schema: dict[str, Any] | None = None,
                     tools: Sequence[ToolDef] = ()) -> AsyncIterator[str | Completion]:
        """Text deltas as they come, then one Completion."""
        request = pb.CompleteChatStreamRequest(model=model, messages=[_message(m) for m in messages],
                                               options=_options(sampling or Sampling()),
                                               tools=[pb.Tool(name=t.name, description=t.description,
                                                              parameters=dict_to_struct(t.parameters)) for t in tools])
        if json_schema is not None:
            request.json_schema.CopyFrom(dict_to_struct(json_schema))
        # The span is current only while the call starts (its client interceptor runs then), never
        # across a yield: a caller that stops reading at the Completion must not inherit it.
        completion: Completion | None = None
        span = tracing.span(f"chat {model}".strip(), tracing.genai_request("chat", model, sampling),
                            kind=SpanKind.CLIENT, current=False)
        with span as current:
            if tracing.record_content():
                current.set_attribute("gen_ai.input.messages", tracing.messages_json(messages))
            text: list[str] = []
            calls: list[ToolCallData] = []
            try:
                with tracing.attached(current):
                    events = self.stub.CompleteChatStream(request, **_call_options(self._identity))
                async for ev in events:
                    kind = ev.WhichOneof("event")
                    if kind == "delta":
                        text.append(ev.delta.text)
                        yield ev.delta.text
                    elif kind == "tool_calls":
                        calls.extend(ToolCallData(c.id, c.name, struct_to_dict(c.arguments))
                                     for c in ev.tool_calls.tool_calls)
                    elif kind == "error":
                        raise RemoteError(ev.error)
                    elif kind == "done":
                        done = ev.done
                        completion = Completion("".join(text), tuple(calls), done.model, done.prompt_tokens,
                                                done.output_tokens, done.done_reason,
                                                tuple(done.backends) or ((done.backend,) if done.backend else ()),
                                                done.tokens_per_second)
                        tracing.set_attributes(current, tracing.genai_response(done))
                        if tracing.record_content():
                            current.set_attribute("gen_ai.output.messages", tracing.messages_json(
                                [ChatMessage("assistant", completion.text)]))
                        break
            except grpc.aio.AioRpcError as exc:
                raise RemoteError(_status_of(exc)) from None
            if completion is None:
                raise RemoteError(status_pb2.Status(code=grpc.StatusCode.UNAVAILABLE.value[0],
                                                    message="inference stream ended without a final event"))
        count(completion)
        yield completion

    async def complete(self, model: str, messages: Sequence[ChatMessage], **kwargs: Any) -> Completion:
        async for item in self.stream(model, messages, **kwargs):
            if isinstance(item, Completion):
                return item
        raise AssertionError("unreachable: stream() always ends with a Completion or raises")


def _status_of(exc: grpc.aio.AioRpcError) -> status_pb2.Status:
    rich = rpc_status.from_call(exc)
    if rich is not None:
        return rich
    return status_pb2.Status(code=exc.code().value[0], message=exc.details() or exc.code().name)
