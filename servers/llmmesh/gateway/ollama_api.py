"""The Ollama-compatible routes: thin handlers over the inference service's gRPC contract
(/api/chat -> CompleteChat or CompleteChatStream, /api/generate -> Generate, /api/embed and
/api/embeddings -> Embed, /api/tags, /api/ps and /api/show -> ListModels). Streams are NDJSON,
on by default as in Ollama. Models live on the backends: pull, push, create, copy and delete
answer 501 saying so."""

from __future__ import annotations

from typing import Any

import grpc
from aiohttp import web
from aiohttp.typedefs import Handler

from llmmesh.gateway import errors, ollama_request, ollama_response
from llmmesh.gateway.chat_stream import ChatStream
from llmmesh.gateway.errors import ApiError
from llmmesh.gateway.json_fields import obj, read_json, string
from llmmesh.gateway.ollama_response import Kind, NdjsonFramer
from llmmesh.gateway.upstream import INFERENCE, list_models_of, request_options
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.topology.description import OLLAMA_BLOBS_PREFIX

MANAGED_ON_BACKENDS = ("Models are managed on the backends: {action} them there (e.g. `ollama {verb}` on each "
                       "Ollama host); the mesh lists what its backends have (GET /api/tags).")


def _reply(data: dict[str, Any], stream: bool) -> web.Response:
    """A one-object answer: one NDJSON line when the client asked for a stream, else JSON."""
    if stream:
        return web.Response(body=ollama_response.line(data), headers=ollama_response.NDJSON_HEADERS)
    return web.json_response(data)


async def _check_model(request: web.Request, name: str) -> None:
    """404 as Ollama answers it, for a request that generates nothing (load or unload only)."""
    if ollama_response.find(await list_models_of(request), name) is None:
        raise ApiError(404, f"model '{name}' not found", param="model", code="model_not_found")


async def _generation(request: web.Request, call: Any, model: str, kind: Kind) -> web.StreamResponse:
    return await ChatStream(call).respond(request, NdjsonFramer(model, kind))


async def chat(request: web.Request) -> web.StreamResponse:
    params = ollama_request.chat_params(await read_json(request))
    model = params.request.model
    if params.load_only:
        await _check_model(request, model)
        return _reply(ollama_response.load(model, "chat", params.unload), params.stream)
    stub, options = request.app[INFERENCE].stub, request_options(request)
    if params.stream:
        call = stub.CompleteChatStream(params.request, **options)
        return await _generation(request, call, model, "chat")
    try:
        resp = await stub.CompleteChat(params.request, **options)
    except grpc.aio.AioRpcError as exc:
        raise errors.from_rpc_error(exc) from None
    return web.json_response(ollama_response.chat(resp, model))


async def generate(request: web.Request) -> web.StreamResponse:
    params = ollama_request.generate_params(await read_json(request))
    model = params.request.model
    if params.load_only:
        await _check_model(request, model)
        return _reply(ollama_response.load(model, "generate", params.unload), params.stream)
    call = request.app[INFERENCE].stub.Generate(params.request, **request_options(request))
    if params.stream:
        return await _generation(request, call, model, "generate")
    text, done = await ChatStream(call).collect()
    return web.json_response(ollama_response.generate(text, done, model))


async def _embed(request: web.Request, params: ollama_request.EmbedParams) -> pb.EmbedResponse:
    try:
        return await request.app[INFERENCE].stub.Embed(params.request, **request_options(request))
    except grpc.aio.AioRpcError as exc:
        raise errors.from_rpc_error(exc, errors.embeddings_param) from None


async def embed(request: web.Request) -> web.Response:
    params = ollama_request.embed_params(await read_json(request))
    if not any(params.request.inputs):  # Ollama loads the model and embeds nothing
        await _check_model(request, params.request.model)
        return web.json_response({"model": params.request.model, "embeddings": []})
    return web.json_response(ollama_response.embed(await _embed(request, params), params))


async def embeddings(request: web.Request) -> web.Response:
    """The deprecated /api/embeddings: one `prompt` in, one `embedding` out."""
    params = ollama_request.embed_params(await read_json(request), key="prompt")
    if not any(params.request.inputs):
        await _check_model(request, params.request.model)
        return web.json_response({"embedding": []})
    (vector,) = ollama_response.embed(await _embed(request, params), params)["embeddings"]
    return web.json_response({"embedding": vector})


async def tags(request: web.Request) -> web.Response:
    return web.json_response(ollama_response.tags(await list_models_of(request)))


async def ps(request: web.Request) -> web.Response:
    return web.json_response(ollama_response.ps(await list_models_of(request)))


async def show(request: web.Request) -> web.Response:
    body = obj(await read_json(request), "body")
    name = string(body, "model", "model") or string(body, "name", "name")
    if not name:
        raise errors.invalid("model", "model is required")
    info = ollama_response.find(await list_models_of(request), name)
    if info is None:
        raise ApiError(404, f"model '{name}' not found", param="model", code="model_not_found")
    return web.json_response(ollama_response.show(info))


async def version(request: web.Request) -> web.Response:
    return web.json_response({"version": ollama_response.OLLAMA_VERSION})


def _managed_on_backends(action: str, verb: str) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        raise ApiError(501, MANAGED_ON_BACKENDS.format(action=action, verb=verb), "server_error",
                       code="not_implemented")

    return handler


async def not_found(request: web.Request) -> web.Response:
    raise ApiError(404, f"unknown path {request.method} {request.path}", code="unknown_url")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/chat", chat)
    app.router.add_post("/api/generate", generate)
    app.router.add_post("/api/embed", embed)
    app.router.add_post("/api/embeddings", embeddings)
    app.router.add_get("/api/tags", tags)
    app.router.add_get("/api/ps", ps)
    app.router.add_post("/api/show", show)
    app.router.add_get("/api/version", version)
    for path, action, verb in (("/api/pull", "pull", "pull"), ("/api/push", "push", "push"),
                               ("/api/create", "create", "create"), ("/api/copy", "copy", "cp"),
                               ("/api/delete", "delete", "rm"), (OLLAMA_BLOBS_PREFIX + "{digest}", "create", "create")):
        app.router.add_route("*", path, _managed_on_backends(action, verb))
    app.router.add_route("*", "/api/{tail:.*}", not_found)
