"""A tiny real grpc.aio server that looks like the monolith to Envoy, for config tests only.

It answers health for every llmmesh service, advertises the whole mesh API in reflection, and
implements just enough of InferenceService to exercise the transcoder: a unary GET, a server
stream (failing mid-stream on the word "fail"), and a rich INVALID_ARGUMENT error. JudgeService is
registered with Evaluate answering UNIMPLEMENTED; other services are not registered at all.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status

from llmmesh.common.v1 import common_pb2
from llmmesh.inference.v1 import inference_service_pb2 as inference_pb2
from llmmesh.inference.v1 import inference_service_pb2_grpc as inference_grpc
from llmmesh.judge.v1 import judge_service_pb2_grpc as judge_grpc
from llmmesh.topology.description import SERVICES


def _stub_modules() -> list:
    """The generated `*_pb2` module of every topology service (llmmesh.judge.v1.judge_service_pb2...)."""
    mods = []
    for spec in SERVICES:
        package = spec.grpc_service.rsplit(".", 1)[0]
        mods.append(importlib.import_module(f"{package}.{spec.name}_service_pb2"))
    return mods


class FakeInference(inference_grpc.InferenceServiceServicer):
    async def ListModels(self, request, context):
        return inference_pb2.ListModelsResponse(
            models=[inference_pb2.ModelInfo(name="tiny", backends=["a"])], default_model="tiny"
        )

    async def Generate(self, request, context) -> AsyncIterator[inference_pb2.GenerateResponse]:
        for word in request.prompt.split():
            if word == "fail":
                await context.abort(grpc.StatusCode.UNAVAILABLE, "backend went away")
            yield inference_pb2.GenerateResponse(delta=common_pb2.TokenDelta(text=word))
        yield inference_pb2.GenerateResponse(
            done=inference_pb2.GenerationDone(model=request.model or "tiny", done_reason="stop")
        )

    async def Embed(self, request, context):
        # Rejects every request the way the error interceptor will: INVALID_ARGUMENT + BadRequest.
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field="inputs", description="must not be empty")
            ]
        )
        detail = any_pb2.Any()
        detail.Pack(bad)
        status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message="invalid request", details=[detail])
        await context.abort_with_status(rpc_status.to_status(status))


class FakeJudge(judge_grpc.JudgeServiceServicer):
    async def Evaluate(self, request, context):
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Evaluate is not implemented here")


async def start_fake_mesh() -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    inference_grpc.add_InferenceServiceServicer_to_server(FakeInference(), server)
    # Registered but unimplemented: answers UNIMPLEMENTED only after reading the request, like a
    # real service. A method the server does not know is refused on the headers alone, which can
    # beat Envoy's own 400 for a malformed JSON body.
    judge_grpc.add_JudgeServiceServicer_to_server(FakeJudge(), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [svc.full_name for mod in _stub_modules() for svc in mod.DESCRIPTOR.services_by_name.values()]
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, port
