"""The OpenAI-compatible routes: thin handlers over the inference service's gRPC contract
(chat.completions -> CompleteChat or a one-turn Chat stream, models -> ListModels,
embeddings -> Embed)."""

from __future__ import annotations

import json
from typing import Any

import grpc
from aiohttp import web

from llmmesh.gateway import errors, openai_request, openai_response
from llmmesh.gateway.chat_stream import ChatStream
from llmmesh.gateway.errors import OpenAIError
from llmmesh.gateway.upstream import Inference, call_options
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.settings import GatewaySettings

INFERENCE: web.AppKey[Inference] = web.AppKey("inference", Inference)
SETTINGS: web.AppKey[GatewaySettings] = web.AppKey("settings", GatewaySettings)


async def _json_body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise errors.invalid(None, "We could not parse the JSON body of your request.", None) from None


def _options(request: web.Request) -> dict[str, Any]:
    return call_options(request, request.app[SETTINGS].timeout_s)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    params = openai_request.chat_params(await _json_body(request))
    options = _options(request)
    stub = request.app[INFERENCE].stub
    if params.stream:
        call = stub.Chat(iter([pb.ChatRequest(turn=params.turn())]), **options)
        return await ChatStream(call, params).respond(request)
    try:
        resp = await stub.CompleteChat(params.request, **options)
    except grpc.aio.AioRpcError as exc:
        raise errors.from_rpc_error(exc, errors.chat_param(params.max_tokens_param)) from None
    return web.json_response(openai_response.completion(resp, params.request.model))


async def _models(request: web.Request) -> pb.ListModelsResponse:
    try:
        return await request.app[INFERENCE].stub.ListModels(pb.ListModelsRequest(), **_options(request))
    except grpc.aio.AioRpcError as exc:
        raise errors.from_rpc_error(exc) from None


async def list_models(request: web.Request) -> web.Response:
    return web.json_response(openai_response.models(await _models(request)))


async def retrieve_model(request: web.Request) -> web.Response:
    name = request.match_info["model"]
    listed = openai_response.models(await _models(request))
    if not any(m["id"] == name for m in listed["data"]):
        raise OpenAIError(404, f"The model '{name}' does not exist.", "invalid_request_error", "model",
                          "model_not_found")
    return web.json_response(openai_response.model_entry(name))


async def create_embeddings(request: web.Request) -> web.Response:
    params = openai_request.embed_params(await _json_body(request))
    try:
        resp = await request.app[INFERENCE].stub.Embed(params.request, **_options(request))
    except grpc.aio.AioRpcError as exc:
        raise errors.from_rpc_error(exc, errors.embeddings_param) from None
    return web.json_response(openai_response.embeddings(resp, params))


async def not_found(request: web.Request) -> web.Response:
    raise OpenAIError(404, f"Unknown request URL: {request.method} {request.path}.", "invalid_request_error",
                      None, "unknown_url")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{model:.+}", retrieve_model)
    app.router.add_post("/v1/embeddings", create_embeddings)
    app.router.add_route("*", "/v1/{tail:.*}", not_found)
