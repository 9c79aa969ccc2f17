"""Render one Envoy bootstrap (ingress + egress + admin) from the topology description.

Both deployment shapes come from the same code: only the service endpoints differ (presets.py).
The ingress (ingress.py) carries gRPC and REST/SSE to the services; the egress (egress.py) carries
the inference service's pinned requests to the model backends. The CLI is `llmmesh-envoy` (cli.py).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from llmmesh.topology import envoy_parts as parts
from llmmesh.topology.description import Shape
from llmmesh.topology.egress import egress_clusters, egress_listener
from llmmesh.topology.ingress import ingress_clusters, ingress_listener, internal_listener
from llmmesh.topology.params import RenderParams
from llmmesh.topology.presets import REPO_ROOT, Security, compose_params

EXAMPLES_DIR = REPO_ROOT / "envoy"
REGENERATE = "llmmesh-envoy --write-compose-examples"


def render(params: RenderParams) -> dict:
    """The Envoy v3 bootstrap as a plain dict; no backends, no egress."""
    listeners = [ingress_listener(params)]
    if params.internal_port is not None:
        listeners.append(internal_listener(params))
    clusters = ingress_clusters(params)
    if params.backends:
        listeners.append(egress_listener(params))
        clusters += egress_clusters(params)
    extra: dict = {}
    if params.tracing is not None:
        clusters.append(parts.collector_cluster(params.tracing.collector))
        extra["layered_runtime"] = parts.tracer_runtime()
    return {
        "node": {"id": f"llmmesh-{params.shape}", "cluster": "llmmesh"},
        "admin": {"address": parts.socket_address(params.bind_address, params.admin_port)},
        "static_resources": {"listeners": listeners, "clusters": clusters},
        # An edge proxy caps downstream connections (Envoy's edge best practice).
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.resource_monitors."
                        "downstream_connections.v3.DownstreamConnectionsConfig",
                        "max_active_downstream_connections": 10000,
                    },
                }
            ]
        },
        **extra,
    }


class _Dumper(yaml.SafeDumper):
    # Shared sub-dicts (the access-log format) are written out in full, never as &anchors.
    def ignore_aliases(self, data: object) -> bool:
        return True


def render_yaml(params: RenderParams, header: str = "") -> str:
    body = yaml.dump(render(params), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=110)
    return header + body


# What each secured variant is for, in its header.
_SECURITY_NOTES = {
    Security.NONE: "",
    Security.TLS: "# Secured (compose.secure.yaml, deploy/k8s-secure): TLS on the ingress.\n",
    Security.MTLS: "# Secured (compose.mtls.yaml, deploy/k8s-mtls): TLS on the ingress, mutual TLS to every service.\n",
}


def compose_example_name(shape: Shape, security: Security = Security.NONE) -> str:
    return f"compose-{shape}{'' if security is Security.NONE else f'-{security}'}.yaml"


def compose_examples() -> dict[str, str]:
    """File name -> YAML text of the configs committed under envoy/ (a test keeps them in sync)."""
    out = {}
    for security in Security:
        for shape in Shape:
            params = compose_params(shape, security=security)
            backends = ", ".join(f"{b.name}={b.host}:{b.port} ({b.protocol})" for b in params.backends)
            header = (
                f"# Envoy bootstrap for docker compose, {shape} shape. GENERATED, do not edit by hand.\n"
                f"# Regenerate: {REGENERATE}   (source: servers/llmmesh/topology/)\n"
                f"# Mount the repo's envoy/ directory at /etc/envoy (descriptor: {params.descriptor_path}).\n"
                f"# Backends: {backends}.\n"
                f"{_SECURITY_NOTES[security]}"
            )
            out[compose_example_name(shape, security)] = render_yaml(params, header)
    return out


def write_compose_examples(out_dir: Path = EXAMPLES_DIR) -> list[Path]:
    written = []
    for name, text in compose_examples().items():
        path = out_dir / name
        path.write_text(text)
        written.append(path)
    return written
