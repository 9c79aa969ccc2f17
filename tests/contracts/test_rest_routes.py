"""Every REST route (`google.api.http`) follows the README's one rule ("### The REST routes").

Read from the descriptor set Envoy transcodes with, so a new service or method is checked without
being listed here. The two exceptions the README names are pinned: changing either fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

from llmmesh.topology.description import SERVICES, ServiceSpec

ROOT = Path(__file__).resolve().parents[2]
DESCRIPTOR_SET = ROOT / "envoy" / "llmmesh.pb"
README = ROOT / "README.md"
# Paths users knew before the rule: kept (README, "The REST routes").
EXCEPTIONS = {
    "llmmesh.collaboration.v1.CollaborationService.Run": "POST /api/v1/collaborate/run",
    "llmmesh.collaboration.v1.CollaborationService.RunStream": "POST /api/v1/collaborate/run:stream",
    "llmmesh.inference.v1.InferenceService.CompleteChat": "POST /api/v1/inference/chat",
}
Method = tuple[str, descriptor_pb2.MethodDescriptorProto]


def methods() -> list[Method]:
    """(the service's full name, the method) for every RPC of llmmesh's own contracts."""
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes()).file
    return [(f"{f.package}.{service.name}", method)
            for f in files if f.package.startswith("llmmesh.")
            for service in f.service for method in service.method]


def kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def rule(service: str, method: descriptor_pb2.MethodDescriptorProto) -> str:
    prefix = "/api/v1/" + kebab(service.rpartition(".")[2].removesuffix("Service"))
    if method.name.startswith("List") and not method.client_streaming:
        things = kebab(method.name.removeprefix("List"))
        # A service named for the things it keeps (RunsService) is their collection itself.
        return f"GET {prefix}" if prefix.endswith(f"/{things}") else f"GET {prefix}/{things}"
    for verb in ("Get", "Delete"):
        thing = method.name.removeprefix(verb)
        if method.name.startswith(verb) and prefix.endswith(f"/{kebab(thing)}s"):
            return f"{verb.upper()} {prefix}/{{{kebab(thing).replace('-', '_')}_id}}"
    suffix = ":stream" if method.client_streaming else ""
    return f"POST {prefix}/{kebab(method.name.removesuffix('Stream'))}{suffix}"


def route(method: descriptor_pb2.MethodDescriptorProto) -> str:
    http = method.options.Extensions[annotations_pb2.http]
    assert not http.additional_bindings, f"{method.name}: one route per method"
    verb = http.WhichOneof("pattern")
    assert verb, f"{method.name} has no google.api.http route"
    assert http.body == ("" if verb in ("get", "delete") else "*"), f"{method.name}: {verb} with body {http.body!r}"
    return f"{verb.upper()} {getattr(http, verb)}"


METHODS = methods()


def test_the_descriptor_set_has_every_service() -> None:
    assert {service for service, _ in METHODS} == {s.grpc_service for s in SERVICES}


@pytest.mark.parametrize(("service", "method"), METHODS, ids=[f"{s}.{m.name}" for s, m in METHODS])
def test_route_follows_the_rule(service: str, method: descriptor_pb2.MethodDescriptorProto) -> None:
    full = f"{service}.{method.name}"
    if full in EXCEPTIONS:
        assert rule(service, method) != EXCEPTIONS[full], f"{full} follows the rule now: drop its exception"
    assert route(method) == EXCEPTIONS.get(full, rule(service, method))


@pytest.mark.parametrize("spec", SERVICES, ids=[s.name for s in SERVICES])
def test_topology_prefix_is_the_routes_prefix(spec: ServiceSpec) -> None:
    paths = {route(m).split()[1] for service, m in METHODS if service == spec.grpc_service}
    assert paths and all(p == spec.rest_prefix or p.startswith(spec.rest_prefix + "/") for p in paths), (
        spec.rest_prefix, paths)


def test_readme_table_lists_every_route() -> None:
    text = README.read_text()
    section = re.search(r"^### The REST routes\n(.*?)^#", text, re.S | re.M)
    assert section, "README has no '### The REST routes' section"
    table = "\n".join(line for line in section.group(1).splitlines() if line.startswith("|"))
    documented = set(re.findall(r"`((?:GET|POST|DELETE) /[^`]+)`", table))
    assert documented == {route(m) for _, m in METHODS}
