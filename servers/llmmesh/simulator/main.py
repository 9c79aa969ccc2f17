"""``llmmesh-sim``: run one Ollama API simulator instance."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import ssl
import sys
from collections.abc import Sequence

from llmmesh.common import event_loop
from llmmesh.framework import tracing
from llmmesh.simulator.config import DEFAULT_MODELS, SimulatorConfig
from llmmesh.simulator.faults import FaultSpecError, parse_fault_spec
from llmmesh.simulator.runner import server_tls, start_simulator
from llmmesh.simulator.scripts import ScriptError, load_rules_file

log = logging.getLogger("llmmesh.simulator")


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmmesh-sim", description="Ollama API simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11434, help="0 picks a free port")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated model names")
    parser.add_argument("--preload", default="", help="models shown as loaded in /api/ps from the start")
    parser.add_argument("--no-tools", default="", help="models without tool calling (chat with tools: 400)")
    parser.add_argument("--context-length", type=int, default=4096, help="every model's context window")
    parser.add_argument("--token-delay-ms", type=float, default=0.0, help="delay before every token")
    parser.add_argument("--tokens", type=int, default=32, help="tokens per unscripted answer")
    parser.add_argument("--max-concurrency", type=int, default=0, help="0 = unlimited; beyond it 503")
    parser.add_argument("--fault", default="", help="instance fault spec, e.g. drop_after=3")
    parser.add_argument("--script-file", default=None, help="JSON file with script rules")
    parser.add_argument("--name", default="sim", help="instance name (x-sim-instance header, stats)")
    parser.add_argument("--continuation", default="ignore", choices=("ignore", "continue", "echo", "flag"),
                        help="how a chat ending with a partial assistant answer is treated")
    parser.add_argument("--api-key-env", default="",
                        help="environment variable holding the key the /v1/ routes require (401 without)")
    parser.add_argument("--tls-cert", default="", help="serve HTTPS with this certificate (PEM)...")
    parser.add_argument("--tls-key", default="", help="...and this private key")
    parser.add_argument("--log-level", default="INFO")
    return parser


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    if args.tokens < 0 or args.max_concurrency < 0 or args.token_delay_ms < 0:
        raise ValueError("--tokens, --max-concurrency and --token-delay-ms must be >= 0")
    if args.context_length < 1:
        raise ValueError("--context-length must be >= 1")
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ValueError("--tls-cert and --tls-key go together")
    api_key = os.environ.get(args.api_key_env, "") if args.api_key_env else ""
    if args.api_key_env and not api_key:
        raise ValueError(f"--api-key-env: {args.api_key_env} is not set")
    models = _csv(args.models)
    if not models:
        raise ValueError("--models needs at least one model")
    return SimulatorConfig(
        name=args.name,
        models=models,
        token_delay_s=args.token_delay_ms / 1000,
        tokens=args.tokens,
        max_concurrency=args.max_concurrency,
        fault=parse_fault_spec(args.fault),
        scripts=load_rules_file(args.script_file) if args.script_file else (),
        preload=_csv(args.preload),
        no_tools=_csv(args.no_tools),
        context_length=args.context_length,
        continuation=args.continuation,
        api_key=api_key,
    )


async def serve(config: SimulatorConfig, host: str, port: int, ssl_context: ssl.SSLContext | None = None) -> None:
    sim = await start_simulator(config, host, port, ssl_context=ssl_context)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("llmmesh-sim %s ready at %s (models: %s)", config.name, sim.url, ",".join(config.models))
    try:
        await stop.wait()
    finally:
        log.info("llmmesh-sim %s shutting down", config.name)
        await sim.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        config = config_from_args(args)
    except (ValueError, FaultSpecError, ScriptError, OSError) as exc:
        print(f"llmmesh-sim: {exc}", file=sys.stderr)
        return 2
    context = server_tls(args.tls_cert, args.tls_key) if args.tls_cert else None
    tracing.configure("llmmesh-sim")
    event_loop.run(serve(config, args.host, args.port, context))
    return 0


if __name__ == "__main__":
    sys.exit(main())
