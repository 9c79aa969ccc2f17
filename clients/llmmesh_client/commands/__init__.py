"""The CLI's subcommands. Each module registers its parsers and handlers:
`handler(client: LlmMesh, args: argparse.Namespace, out: Output) -> exit code`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


class UsageError(Exception):
    """Arguments that parse but do not make sense together: exit code 2, like argparse."""


def add_generation_options(parser: argparse.ArgumentParser, *, model: bool = True) -> None:
    """Sampling options; `model=False` for commands that name their models otherwise (compare)."""
    g = parser.add_argument_group("generation")
    if model:
        g.add_argument("--model", default="", help="model name or alias (default: the server's)")
    g.add_argument("--max-tokens", type=int, help="upper bound on generated tokens")
    g.add_argument("--temperature", type=float)
    g.add_argument("--seed", type=int)
    g.add_argument("--stop", action="append", help="stop sequence (repeatable)")


def generation_options(args: argparse.Namespace) -> dict[str, Any] | None:
    fields = {"max_tokens": args.max_tokens, "temperature": args.temperature, "seed": args.seed,
              "stop": args.stop}
    chosen = {k: v for k, v in fields.items() if v is not None}
    return chosen or None


def text_argument(value: str | None, what: str) -> str:
    """A positional text argument; "-" (or nothing, with piped input) reads standard input."""
    if value == "-" or (value is None and not sys.stdin.isatty()):
        return sys.stdin.read().strip()
    if value is None:
        raise UsageError(f"missing {what} (give it as an argument, or '-' to read standard input)")
    return value


def json_argument(value: str | None, what: str) -> Any:
    """Inline JSON, or @path to a JSON file."""
    if value is None:
        return None
    try:
        raw = Path(value[1:]).read_text() if value.startswith("@") else value
        return json.loads(raw)
    except (OSError, ValueError) as err:
        raise UsageError(f"{what}: {err}") from None
