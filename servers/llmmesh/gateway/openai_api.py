"""The OpenAI-compatible routes: thin handlers over the inference service's gRPC contract
(chat.completions -> CompleteChat or CompleteChatStream, models -> ListModels,
embeddings -> Embed)."""

from __future__ import annotations

import grpc
from aiohttp import web

from llmmesh.gateway import errors, openai_request, openai_response
from llmmesh.gateway.chat_stream import ChatStream
from llmmesh.gateway.errors import ApiError
from llmmesh.gateway.json_fields import read_json
from llmmesh.gateway.upstream import INFERENCE, list_models_of, request_options


async def chat_completions(request: web.Request) -> web.StreamResponse:
    params = openai_request.chat_params(await read_json(request))
    options = request_options(request)
    stub = request.app[INFERENCE].stub
    param_of = errors.chat_param(params.max_tokens_param)
    if params.stream:
        call = stub.CompleteChatStream(params.request, **options)
        framer = openai_response.SseFramer(params.request.model, params.include_usage)
        return await ChatStream(call, param_of).respond(request, framer)
    try:
        resp = await stub.CompleteChat(params.request, **options)
    except grpc.aio.AioRpcError as exc:
        raise errors.from_rpc_error(exc, param_of) from None
    return web.json_response(openai_response.completion(resp, params.request.model))


async def list_models(request: web.Request) -> web.Response:
    return web.json_response(openai_response.models(await list_models_of(request)))


async def retrieve_model(request: web.Request) -> web.Response:
    name = request.match_info["model"]
    listed = openai_response.models(await list_models_of(request))
    if not any(m["id"] == name for m in listed["data"]):
        raise ApiError(404, f"The model '{name}' does not exist.", "invalid_request_error", "model",
                       "model_not_found")
    return web.json_response(openai_response.model_entry(name))


async def create_embeddings(request: web.Request) -> web.Response:
    params = openai_request.embed_params(await read_json(request))
    try:
        resp = await request.app[INFERENCE].stub.Embed(params.request, **request_options(request))
    except grpc.aio.AioRpcError as exc:
        raise errors.from_rpc_error(exc, errors.embeddings_param) from None
    return web.json_response(openai_response.embeddings(resp, params))


async def not_found(request: web.Request) -> web.Response:
    raise ApiError(404, f"Unknown request URL: {request.method} {request.path}.", "invalid_request_error",
                   None, "unknown_url")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{model:.+}", retrieve_model)
    app.router.add_post("/v1/embeddings", create_embeddings)
    app.router.add_route("*", "/v1/{tail:.*}", not_found)
