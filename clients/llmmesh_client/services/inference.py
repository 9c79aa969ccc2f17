"""InferenceService: generation (streamed, whole, or as a chat session), embeddings, inventory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from typing import Any, TypeVar

from llmmesh_client._proto.llmmesh.common.v1 import common_pb2
from llmmesh_client._proto.llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh_client.blocking import Facade, blocking, iterating, wrapping
from llmmesh_client.convert import build
from llmmesh_client.methods import INFERENCE
from llmmesh_client.sessions import AsyncChatSession, ChatSession, MessageLike
from llmmesh_client.transport import Transport

Options = common_pb2.GenerationOptions | Mapping[str, Any]
ToolLike = pb.Tool | Mapping[str, Any]
R = TypeVar("R", pb.CompleteChatRequest, pb.CompleteChatStreamRequest)


class AsyncInference:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def generate(self, prompt: str, *, model: str = "", system: str = "", options: Options | None = None,
                 json_schema: Mapping[str, Any] | None = None, timeout: float | None = None,
                 request_id: str | None = None) -> AsyncIterator[pb.GenerateResponse]:
        """Stream one generation: `delta` events, then one `done` (an `error` event is raised)."""
        request = build(pb.GenerateRequest, {"prompt": prompt, "model": model, "system": system,
                                             "options": options, "json_schema": json_schema})
        return self._t.server_stream(INFERENCE["Generate"], request, timeout=timeout, request_id=request_id)

    def complete_chat(self, messages: Sequence[MessageLike], *, model: str = "",
                      options: Options | None = None, tools: Sequence[ToolLike] | None = None,
                      json_schema: Mapping[str, Any] | None = None, timeout: float | None = None,
                      request_id: str | None = None) -> Awaitable[pb.CompleteChatResponse]:
        """One chat completion answered whole: `.message` (text or tool calls) and `.done`."""
        request = _completion_request(pb.CompleteChatRequest, messages, model, options, tools, json_schema)
        return self._t.unary(INFERENCE["CompleteChat"], request, timeout=timeout, request_id=request_id)

    def complete_chat_stream(self, messages: Sequence[MessageLike], *, model: str = "",
                             options: Options | None = None, tools: Sequence[ToolLike] | None = None,
                             json_schema: Mapping[str, Any] | None = None, timeout: float | None = None,
                             request_id: str | None = None) -> AsyncIterator[pb.CompleteChatStreamResponse]:
        """One chat completion, streamed: `delta` and `tool_calls` events, then one `done`."""
        request = _completion_request(pb.CompleteChatStreamRequest, messages, model, options, tools, json_schema)
        return self._t.server_stream(INFERENCE["CompleteChatStream"], request, timeout=timeout,
                                     request_id=request_id)

    def chat(self, *, model: str = "", system: str = "", options: Options | None = None,
             tools: Sequence[ToolLike] | None = None, json_schema: Mapping[str, Any] | None = None,
             timeout: float | None = None, request_id: str | None = None) -> AsyncChatSession:
        """Open a multi-turn chat session; the arguments are defaults for every turn. The stream
        starts with the first `send()`; `timeout` bounds the whole session."""
        call = self._t.bidi(INFERENCE["Chat"], timeout=timeout, request_id=request_id)
        return AsyncChatSession(call, model=model, system=system, options=options, tools=tools,
                                json_schema=json_schema)

    def embed(self, inputs: Sequence[str], *, model: str = "", timeout: float | None = None,
              request_id: str | None = None) -> Awaitable[pb.EmbedResponse]:
        request = build(pb.EmbedRequest, {"inputs": inputs, "model": model})
        return self._t.unary(INFERENCE["Embed"], request, timeout=timeout, request_id=request_id)

    def list_models(self, *, timeout: float | None = None,
                    request_id: str | None = None) -> Awaitable[pb.ListModelsResponse]:
        return self._t.unary(INFERENCE["ListModels"], pb.ListModelsRequest(), timeout=timeout,
                             request_id=request_id)

    def list_backends(self, *, timeout: float | None = None,
                      request_id: str | None = None) -> Awaitable[pb.ListBackendsResponse]:
        return self._t.unary(INFERENCE["ListBackends"], pb.ListBackendsRequest(), timeout=timeout,
                             request_id=request_id)


def _completion_request(kind: type[R], messages: Sequence[MessageLike], model: str, options: Options | None,
                        tools: Sequence[ToolLike] | None, json_schema: Mapping[str, Any] | None) -> R:
    """A CompleteChatRequest or CompleteChatStreamRequest: the same fields."""
    return build(kind, {"messages": messages, "model": model, "options": options,
                                          "tools": tools, "json_schema": json_schema})


class Inference(Facade[AsyncInference]):
    generate = iterating(AsyncInference.generate)
    complete_chat = blocking(AsyncInference.complete_chat)
    complete_chat_stream = iterating(AsyncInference.complete_chat_stream)
    chat = wrapping(AsyncInference.chat, ChatSession)
    embed = blocking(AsyncInference.embed)
    list_models = blocking(AsyncInference.list_models)
    list_backends = blocking(AsyncInference.list_backends)
