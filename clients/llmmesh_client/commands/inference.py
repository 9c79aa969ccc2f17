"""`generate`, `models`, `backends`, `health`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from llmmesh_client._proto.llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh_client.client import LlmMesh
from llmmesh_client.commands import add_generation_options, generation_options, json_argument, text_argument
from llmmesh_client.commands.output import Output
from llmmesh_client.errors import LlmMeshError
from llmmesh_client.methods import SERVICES


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("generate", parents=[common], help="stream one generation to stdout")
    p.add_argument("prompt", nargs="?", help="the prompt ('-' or piped input reads stdin)")
    p.add_argument("--system", default="", help="system prompt")
    p.add_argument("--schema", help="constrain output to this JSON schema (inline JSON or @file)")
    add_generation_options(p)
    p.set_defaults(handler=generate)

    p = sub.add_parser("models", parents=[common], help="models the mesh can serve")
    p.set_defaults(handler=models)
    p = sub.add_parser("backends", parents=[common], help="backends as the router sees them")
    p.set_defaults(handler=backends)

    p = sub.add_parser("health", parents=[common], help="gRPC health of each service through the target")
    p.add_argument("--service", action="append", choices=sorted(SERVICES), help="check only these")
    p.set_defaults(handler=health)


def generate(client: LlmMesh, args: argparse.Namespace, out: Output) -> int:
    prompt = text_argument(args.prompt, "prompt")
    schema = json_argument(args.schema, "--schema")
    events = client.inference.generate(prompt, model=args.model, system=args.system,
                                       options=generation_options(args), json_schema=schema)
    for event in events:
        if out.json:
            out.message(event)
        elif event.HasField("queued"):  # every backend busy: waiting in the mesh's admission queue
            out.progress(f"[queued: {event.queued.position} of {event.queued.queue_length}]")
        elif event.HasField("delta"):
            out.text(event.delta.text)
        elif event.HasField("done"):
            out.line()
            out.progress(_done_summary(event.done))
    return 0


def _done_summary(done: pb.GenerationDone) -> str:
    via = " → ".join(done.backends) if done.failed_over else done.backend
    return (f"[{done.model} on {via}: {done.output_tokens} tokens, {done.tokens_per_second:.0f} tok/s, "
            f"{done.done_reason}]")


def models(client: LlmMesh, args: argparse.Namespace, out: Output) -> int:
    resp = client.inference.list_models()
    if out.json:
        out.message(resp)
        return 0
    rows = [(("* " if m.name == resp.default_model else "  ") + m.name, ",".join(m.backends) or "-",
             ",".join(m.loaded_on) or "-", ",".join(m.aliases) or "-") for m in resp.models]
    out.table(("  MODEL", "BACKENDS", "LOADED ON", "ALIASES"), rows)
    return 0


def backends(client: LlmMesh, args: argparse.Namespace, out: Output) -> int:
    resp = client.inference.list_backends()
    if out.json:
        out.message(resp)
        return 0

    def short(enum: Any, value: int, prefix: str) -> str:
        return enum.Name(value).removeprefix(prefix).lower()

    rows = [(b.name, short(pb.BackendHealth, b.health, "BACKEND_HEALTH_"), short(pb.CircuitState, b.circuit,
            "CIRCUIT_STATE_"), b.in_flight, short(pb.BackendProtocol, b.protocol, "BACKEND_PROTOCOL_"),
             ",".join(b.models) or "-", b.url, b.last_error or "") for b in resp.backends]
    out.table(("NAME", "HEALTH", "CIRCUIT", "IN-FLIGHT", "PROTOCOL", "MODELS", "URL", "LAST ERROR"), rows)
    return 0


def health(client: LlmMesh, args: argparse.Namespace, out: Output) -> int:
    names = args.service or ["server", *SERVICES]
    statuses: dict[str, str] = {}
    for name in names:
        try:
            statuses[name] = client.health("" if name == "server" else SERVICES[name])
        except LlmMeshError as err:
            statuses[name] = f"UNKNOWN ({err.code.name}: {err.message})"
    if out.json:
        out.line(json.dumps(statuses))
    else:
        out.table(("SERVICE", "STATUS"), list(statuses.items()))
    return 0 if all(s == "SERVING" for s in statuses.values()) else 1
