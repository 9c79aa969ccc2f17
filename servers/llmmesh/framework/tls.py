"""Credentials from ServiceTlsSettings: the services' mutual TLS, for grpc and for plain HTTP.

One certificate per process serves both ways: as the server certificate Envoy verifies against the
CA, and as the client certificate a service presents when it calls another (and Envoy presents
its own when it connects). Files are read when credentials are built, i.e. at start-up.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc

from llmmesh.framework.client_tracing import client_interceptors
from llmmesh.settings import ServiceTlsSettings


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


def server_credentials(tls: ServiceTlsSettings) -> grpc.ServerCredentials:
    """TLS only, and a client certificate signed by the CA is required."""
    return grpc.ssl_server_credentials([(_read(tls.key_file), _read(tls.cert_file))],
                                       root_certificates=_read(tls.ca_file), require_client_auth=True)


def channel_credentials(tls: ServiceTlsSettings) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(_read(tls.ca_file), _read(tls.key_file), _read(tls.cert_file))


def aio_channel(target: str, tls: ServiceTlsSettings, options: list[tuple[str, object]] | None = None,
                ) -> grpc.aio.Channel:
    """A channel to another mesh service: mutual TLS when configured, else plaintext."""
    interceptors = client_interceptors()  # trace context to the callee when tracing is on
    if tls.enabled:
        return grpc.aio.secure_channel(target, channel_credentials(tls), options=options, interceptors=interceptors)
    return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)


def sync_channel(target: str, tls: ServiceTlsSettings) -> grpc.Channel:
    if tls.enabled:
        return grpc.secure_channel(target, channel_credentials(tls))
    return grpc.insecure_channel(target)


def server_ssl_context(tls: ServiceTlsSettings) -> ssl.SSLContext:
    """For an HTTP server (the gateway): TLS with a required client certificate."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=tls.ca_file)
    ctx.load_cert_chain(tls.cert_file, tls.key_file)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_ssl_context(tls: ServiceTlsSettings) -> ssl.SSLContext:
    """For an HTTP client (probes of the gateway): verifies the server, presents our certificate."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=tls.ca_file)
    ctx.load_cert_chain(tls.cert_file, tls.key_file)
    return ctx
