"""`llmmesh`: the command line for the mesh, on the sync SDK.

Exit codes: 0 success, 1 a server or runtime error (printed as `llmmesh: <CODE>: <message>`, field
violations one per line), 2 a usage error, 130 when Ctrl-C interrupts a non-interactive command.
Answers and JSON go to stdout; progress and errors to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from llmmesh_client.client import LlmMesh
from llmmesh_client.commands import UsageError, chat, compare, inference, patterns, runs
from llmmesh_client.commands.output import PROG, Output
from llmmesh_client.config import DEFAULT_TARGET, Tls, read_pem
from llmmesh_client.errors import LlmMeshError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _positive(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return seconds


def _connection_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Global options, accepted before or after the subcommand. On the subcommand their defaults
    are suppressed, so a value given before the subcommand is not overwritten."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    g = parser.add_argument_group("connection")
    g.add_argument("--target", default=default(os.environ.get("LLMMESH_TARGET") or DEFAULT_TARGET),
                   help=f"host:port of the mesh (env LLMMESH_TARGET, default {DEFAULT_TARGET})")
    g.add_argument("--api-key", default=default(os.environ.get("LLMMESH_API_KEY")),
                   help="API key, sent as 'authorization: Bearer' (env LLMMESH_API_KEY)")
    g.add_argument("--tls", action="store_true", default=default(False), help="use TLS (system roots)")
    g.add_argument("--ca-cert", default=default(None), metavar="PEM", help="trust these roots (implies --tls)")
    g.add_argument("--cert", default=default(None), metavar="PEM", help="client certificate for mutual TLS")
    g.add_argument("--key", default=default(None), metavar="PEM", help="client private key for mutual TLS")
    g.add_argument("--timeout", type=_positive, default=default(None), metavar="SECONDS",
                   help="deadline for every call (default: per kind of call)")
    g.add_argument("--json", action="store_true", default=default(False),
                   help="machine-readable output: one JSON object, or JSON lines for streams")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Call the llmmesh services from the command line.")
    _connection_options(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    _connection_options(common, suppress=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chat.register(sub, common)
    inference.register(sub, common)
    patterns.register(sub, common)
    compare.register(sub, common)
    runs.register(sub, common)
    return parser


def connect(args: argparse.Namespace) -> LlmMesh:
    if bool(args.key) != bool(args.cert):
        raise UsageError("--cert and --key go together (mutual TLS)")
    tls: bool | Tls = False
    if args.tls or args.ca_cert or args.cert:
        tls = Tls(root_certificates=read_pem(args.ca_cert), certificate_chain=read_pem(args.cert),
                  private_key=read_pem(args.key))
    return LlmMesh(args.target, api_key=args.api_key, tls=tls, timeout=args.timeout)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on a usage error
    out = Output(as_json=args.json)
    try:
        with connect(args) as client:
            return args.handler(client, args, out)
    except UsageError as err:
        parser.print_usage(sys.stderr)
        out.fail(f"{args.command}: error: {err}")
        return EXIT_USAGE
    except LlmMeshError as err:
        out.error(err)
        return EXIT_ERROR
    except KeyboardInterrupt:
        out.fail("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`llmmesh generate ... | head`): nothing more to say.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR
    except OSError as err:  # e.g. an unreadable certificate file
        out.fail(str(err))
        return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
