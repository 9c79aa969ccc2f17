"""The TLS flags shared by `llmmesh-envoy` and `./scripts/up`: `--tls-cert/--tls-key` serve the
ingress over TLS; `--mtls-ca/--mtls-cert/--mtls-key` put mutual TLS between Envoy and the services
(one certificate for the mesh: Envoy presents it, and the services `up` starts serve it too)."""

from __future__ import annotations

import argparse

from llmmesh.settings import ServiceTlsSettings
from llmmesh.topology.params import IngressTls


def add_tls_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tls-cert", help="serve the ingress over TLS with this certificate (PEM)")
    parser.add_argument("--tls-key", help="private key of --tls-cert")
    parser.add_argument("--mtls-ca", help="mutual TLS Envoy <-> services: the CA certificates are checked against")
    parser.add_argument("--mtls-cert", help="mutual TLS: the mesh's certificate (Envoy presents it)")
    parser.add_argument("--mtls-key", help="private key of --mtls-cert")


def tls_files(args: argparse.Namespace) -> list[str]:
    """The TLS files given, to check they exist where the caller reads them itself."""
    given = (args.tls_cert, args.tls_key, args.mtls_ca, args.mtls_cert, args.mtls_key)
    return [f for f in given if f is not None]


def tls_from_flags(args: argparse.Namespace) -> tuple[IngressTls | None, ServiceTlsSettings | None]:
    """(ingress TLS, mesh mutual TLS) from the parsed flags; ValueError when a set is incomplete."""
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ValueError("--tls-cert and --tls-key go together")
    mtls = (args.mtls_cert, args.mtls_key, args.mtls_ca)
    if any(f is not None for f in mtls) and not all(f is not None for f in mtls):
        raise ValueError("--mtls-ca, --mtls-cert and --mtls-key go together")
    ingress = IngressTls(args.tls_cert, args.tls_key) if args.tls_cert is not None else None
    mesh = ServiceTlsSettings(*mtls) if args.mtls_cert is not None else None
    return ingress, mesh
