"""`create_server`: one grpc.aio server hosting any subset of the mesh's services.

Health (grpc.health.v1) per service, server reflection, interceptors in the documented order,
API keys with per-key quotas, optional mutual TLS, Prometheus on its own port, and a graceful
stop: NOT_SERVING first so load balancers route away, then stop accepting and let in-flight RPCs
drain.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry

from llmmesh.framework import tls, tracing
from llmmesh.framework.auth import AllowAll, ApiKeyAuthenticator, Authenticator
from llmmesh.framework.identity import ServiceIdentity, read_service_key
from llmmesh.framework.interceptors.auth import AuthInterceptor
from llmmesh.framework.interceptors.errors import ErrorInterceptor
from llmmesh.framework.interceptors.metrics import MetricsInterceptor
from llmmesh.framework.interceptors.request_log import RequestLogInterceptor
from llmmesh.framework.interceptors.tracing import TracingInterceptor
from llmmesh.framework.local_channel import HandlerTable, LocalChannel
from llmmesh.framework.metrics import GrpcServerMetrics, MetricsEndpoint, serve_metrics
from llmmesh.framework.quotas import Quotas
from llmmesh.framework.services import ServiceDeps, add_to_server, build_servicer, generated_module
from llmmesh.framework.shared_state import SharedState, build_shared_state
from llmmesh.patterns import presets
from llmmesh.runs.log import RunLog
from llmmesh.settings import Settings
from llmmesh.topology.description import HEALTH_SERVICE, INGRESS_INFRA_HOST, SERVICES, parse_services

log = logging.getLogger("llmmesh.server")


class MeshServer:
    def __init__(self, server: grpc.aio.Server, health_servicer: health.aio.HealthServicer,
                 servicers: dict[str, Any], settings: Settings, registry: CollectorRegistry,
                 shared_state: SharedState, local: LocalChannel, runs: RunLog | None = None) -> None:
        self.grpc = server
        # The same services, called from inside this process (the hosted gateway) without the network.
        self.local = local
        # The run store's writer: closed after the servicers, so their last runs are written.
        self.runs = runs
        self.health = health_servicer
        self.servicers = servicers
        self.settings = settings
        self.registry = registry
        # Quotas and the response cache (in this process, or in Redis).
        self.shared_state = shared_state
        self.metrics: MetricsEndpoint | None = None
        self._stopping: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.shared_state.start()
        for servicer in self.servicers.values():
            if hasattr(servicer, "start"):
                await servicer.start()
        await self.grpc.start()
        if self.settings.metrics_port is not None:
            self.metrics = serve_metrics(self.registry, self.settings.host, self.settings.metrics_port)
        serving = health_pb2.HealthCheckResponse.SERVING
        await self.health.set("", serving)
        for name in self.servicers:
            await self.health.set(name, serving)

    def stop(self) -> asyncio.Task[None]:
        """Start the graceful stop once; later calls return the same task."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop())
        return self._stopping

    async def _stop(self) -> None:
        log.info("stopping: NOT_SERVING, draining", extra={"drain_delay_s": self.settings.drain_delay_s})
        await self.health.enter_graceful_shutdown()
        # Keep serving while health checkers notice NOT_SERVING and stop sending new requests.
        await asyncio.sleep(self.settings.drain_delay_s)
        await self.grpc.stop(self.settings.grace_period_s)
        for servicer in self.servicers.values():
            if hasattr(servicer, "close"):
                await servicer.close()
        if self.runs is not None:
            await self.runs.close()
        await self.shared_state.close()
        if self.metrics is not None:
            self.metrics.close()
        log.info("stopped")

    async def wait_for_termination(self) -> None:
        await self.grpc.wait_for_termination()
        if self._stopping is not None:
            await self._stopping


def service_identity(settings: Settings) -> ServiceIdentity:
    """The internal key (and certificate) this process's services call others with. With API keys
    on and no LLMMESH_SERVICE_KEY_FILE, a random key for this process alone: enough for the
    monolith, where pattern services call the inference service of the same process."""
    key = ""
    if settings.auth.service_key_file:
        key = read_service_key(settings.auth.service_key_file)
    elif settings.auth.api_keys_file:
        key = secrets.token_urlsafe(32)
        if set(settings.services) != {s.name for s in SERVICES}:
            log.warning("API keys are on without LLMMESH_SERVICE_KEY_FILE: calls between processes "
                        "(pattern service -> inference) will be refused")
    return ServiceIdentity(key, settings.tls)


def _authenticator(settings: Settings, identity: ServiceIdentity) -> Authenticator:
    if not settings.auth.api_keys_file:
        return AllowAll()
    names = {s.grpc_service: s.name for s in SERVICES}
    return ApiKeyAuthenticator.from_file(settings.auth.api_keys_file, names, identity.key)


def create_server(settings: Settings, registry: CollectorRegistry | None = None) -> tuple[MeshServer, int]:
    """Build (not start) a server for `settings.services`; returns it with its bound port."""
    registry = registry if registry is not None else CollectorRegistry()
    # Configuration files first: a bad one stops the start with its own error before anything is
    # built or bound (a grpc.aio server needs an event loop, a port, ...).
    named_presets = presets.load(settings.presets_file)
    identity = service_identity(settings)
    shared_state = build_shared_state(settings.shared_state, settings.cache, registry)
    quotas = Quotas(shared_state, registry=registry)
    interceptors = [
        # Only when tracing is on (llmmesh.framework.tracing.configure): off, RPCs skip it.
        *([TracingInterceptor()] if tracing.enabled() else []),
        RequestLogInterceptor(),
        MetricsInterceptor(GrpcServerMetrics.create(registry)),
        AuthInterceptor(_authenticator(settings, identity), quotas),
        ErrorInterceptor(),
    ]
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.so_reuseport", 0),
    ]
    server = grpc.aio.server(interceptors=interceptors, options=options)
    address = f"{settings.host}:{settings.port}"
    if settings.tls.enabled:
        port = server.add_secure_port(address, tls.server_credentials(settings.tls))
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        raise RuntimeError(f"could not bind {settings.host}:{settings.port}")

    specs = parse_services(",".join(settings.services))
    runs = RunLog(settings.runs, registry)
    deps = ServiceDeps(settings, registry, settings.inference_target or f"{settings.host}:{port}", identity, quotas,
                       shared_state, runs=runs, presets=named_presets)
    servicers: dict[str, Any] = {}
    local = HandlerTable()
    for spec in specs:
        servicer = build_servicer(spec, deps)
        add_to_server(spec, servicer, server)
        add_to_server(spec, servicer, local)
        servicers[spec.grpc_service] = servicer

    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    # The process behind the ingress's reflection route describes the whole mesh API, as a client
    # sees it through the ingress (importing every generated module puts their descriptors in the
    # pool); any other process describes what it hosts.
    described = SERVICES if INGRESS_INFRA_HOST in settings.services else specs
    for spec in described:
        generated_module(spec)
    reflection.enable_server_reflection(
        [s.grpc_service for s in described] + [HEALTH_SERVICE, reflection.SERVICE_NAME], server
    )
    return MeshServer(server, health_servicer, servicers, settings, registry, shared_state,
                      LocalChannel(local, interceptors), runs=runs), port
