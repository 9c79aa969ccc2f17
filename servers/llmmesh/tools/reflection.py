"""Discovering a gRPC server's services through server reflection (grpc.reflection.v1alpha).

One reflection stream asks for the service list, then for the file of each service and any
dependency the server did not send along; the files go into a private DescriptorPool, which then
describes every method and its messages without any generated code on our side.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import grpc
from google.protobuf import descriptor_database, descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

log = logging.getLogger("llmmesh.tools.grpc")

# Infrastructure every server has; never offered as tools.
SKIPPED_PREFIXES = ("grpc.",)


class DiscoveryError(Exception):
    pass


@dataclass(frozen=True)
class Discovered:
    pool: descriptor_pool.DescriptorPool
    services: tuple[ServiceDescriptor, ...]


async def _served(channel: grpc.aio.Channel, names: list[str], timeout_s: float) -> list[str]:
    """Drop services the server lists but does not serve. Reflection may describe a wider API than
    the process hosts (llmmesh's inference process describes the whole mesh, for the ingress);
    grpc.health knows what is actually served there. A server without health keeps every name."""
    stub = health_pb2_grpc.HealthStub(channel)
    served = []
    for name in names:
        try:
            resp = await stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                return names
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                continue
            raise DiscoveryError(f"health check of {name} failed: {exc.code().name}") from None
        if resp.status == health_pb2.HealthCheckResponse.SERVING:
            served.append(name)
    return served


async def discover(channel: grpc.aio.Channel, timeout_s: float) -> Discovered:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo(timeout=timeout_s)

    async def ask(request: reflection_pb2.ServerReflectionRequest) -> reflection_pb2.ServerReflectionResponse:
        await call.write(request)
        response = await call.read()
        if response is grpc.aio.EOF:
            raise DiscoveryError("the reflection stream ended early")
        if response.HasField("error_response"):
            raise DiscoveryError(f"reflection error: {response.error_response.error_message}")
        return response

    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}

    def add(response: reflection_pb2.ServerReflectionResponse) -> None:
        for raw in response.file_descriptor_response.file_descriptor_proto:
            fdp = descriptor_pb2.FileDescriptorProto.FromString(raw)
            files.setdefault(fdp.name, fdp)

    try:
        listed = await ask(reflection_pb2.ServerReflectionRequest(list_services=""))
        names = [s.name for s in listed.list_services_response.service if not s.name.startswith(SKIPPED_PREFIXES)]
        names = await _served(channel, names, timeout_s)
        for name in names:
            try:
                add(await ask(reflection_pb2.ServerReflectionRequest(file_containing_symbol=name)))
            except DiscoveryError as exc:
                # A listed service the server cannot describe (its code is not loaded there).
                log.info("skipping %s: %s", name, exc)
        unavailable: set[str] = set()
        while missing := sorted({d for f in files.values() for d in f.dependency} - files.keys() - unavailable):
            for name in missing:
                try:
                    add(await ask(reflection_pb2.ServerReflectionRequest(file_by_filename=name)))
                except DiscoveryError:
                    unavailable.add(name)
                unavailable.update({name} - files.keys())
        await call.done_writing()
    finally:
        call.cancel()

    database = descriptor_database.DescriptorDatabase()
    for fdp in files.values():
        database.Add(fdp)
    pool = descriptor_pool.DescriptorPool(database)
    services = []
    for name in names:
        try:
            services.append(pool.FindServiceByName(name))
        except (KeyError, TypeError) as exc:  # not sent, or a dependency is missing
            log.info("skipping %s: %s", name, exc)
    if names and not services:
        raise DiscoveryError("the server lists services but describes none of them")
    return Discovered(pool, tuple(services))
