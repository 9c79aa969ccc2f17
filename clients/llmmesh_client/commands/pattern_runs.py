"""What every pattern command shares: its parser's common flags (--unary, --no-store, generation
options, --preset), driving a run's stream to its result, and printing a unary result."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message

from llmmesh_client.commands import add_generation_options
from llmmesh_client.commands.output import Output
from llmmesh_client.sessions import RunStream

Render = Callable[[Message, Output], None]


def pattern_parser(sub: Any, common: argparse.ArgumentParser, name: str, help_: str,
                   handler: Callable[..., int], *, model: bool = True) -> argparse.ArgumentParser:
    p = sub.add_parser(name, parents=[common], help=help_, description=help_)
    p.add_argument("--unary", action="store_true", help="call the unary RPC (no progress), print the result")
    p.add_argument("--no-store", action="store_true", help="keep this run out of the run store")
    add_generation_options(p, model=model)
    p.set_defaults(handler=handler)
    return p


def preset_argument(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--preset", default="", metavar="NAME",
                   help=f"a named analysis preset of the server's (LLMMESH_PRESETS_FILE): {what}")


def store_field(args: argparse.Namespace) -> bool | None:
    """The request's `store`: False with --no-store, else left to the server (stored)."""
    return False if args.no_store else None


def drive(stream: RunStream[Any], out: Output, render: Render) -> Any:
    """Print each event (JSON line, or rendered) and return the final result message."""
    result = None
    with stream:
        for event in stream:
            if out.json:
                out.message(event)
            else:
                render(event, out)
            if event.HasField("result"):
                result = event.result
    return result


def score_text(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def unary(result: Message, out: Output, render: Render) -> int:
    if out.json:
        out.message(result)
    else:
        render(result, out)
    return 0
