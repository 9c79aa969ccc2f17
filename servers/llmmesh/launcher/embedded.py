"""The model backends `up` runs itself: Ollama simulators, or llama.cpp's server with SmolLM2."""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path

from llmmesh.common.backends import HEALTH_PATHS, BackendConfig, parse_backend
from llmmesh.launcher import backend_choice
from llmmesh.launcher.probes import http_ok
from llmmesh.launcher.procs import Child, Supervisor

# Rules that let every pattern finish a demo on the simulator (see the file's _comment).
SIM_DEMO_SCRIPTS = Path(__file__).resolve().parent.parent / "simulator" / "demo_scripts.json"
# The backends `up` runs stand in for one another: the mesh goes on while one of them is left.
BACKENDS_GROUP = "backends"


def start_embedded_backend(sup: Supervisor, choice: backend_choice.BackendChoice, backend_port: int,
                           sim_token_delay_ms: float) -> None:
    """Start the chosen backend when `up` runs it (sim, llama); a backend named elsewhere is left be."""
    if choice.kind == "sim":
        for spec in choice.specs:
            start_simulator_process(sup, parse_backend(spec), sim_token_delay_ms)
    elif choice.kind == "llama":
        ready = partial(http_ok, f"http://127.0.0.1:{backend_port}/health")
        child = sup.start("llama-server", llama_server_argv(backend_port), group=BACKENDS_GROUP, ready=ready)
        sup.wait_ready(child, ready, 120, "loading SmolLM2")


def llama_server_argv(port: int) -> list[str]:
    return [
        str(backend_choice.llama_server_binary()), "-m", str(backend_choice.smollm2_path()),
        "--host", "127.0.0.1", "--port", str(port), "--alias", backend_choice.SMOLLM2_MODEL, "--ctx-size", "16384",
        # 4 slots of 4096 tokens: SmolLM2 was trained on 8192, and patterns' transcripts (debates,
        # tool loops) need more than 2048.
        "--parallel", "4", "--threads", str(max(1, (os.cpu_count() or 2))), "--jinja",
        "--embeddings", "--pooling", "mean", "--metrics",
        # No weight repacking: a native build on an AMX CPU otherwise routes matmuls to the AMX
        # kernels, which segfault where the kernel/sandbox does not grant AMX tile state.
        "--no-repack",
    ]


def start_simulator_process(sup: Supervisor, backend: BackendConfig, token_delay_ms: float = 5.0) -> Child:
    """One simulator process serving `backend`'s port (also used to restart one in chaos drills)."""
    argv = [sys.executable, "-m", "llmmesh.simulator.main", "--port", str(backend.port), "--name", backend.name,
            "--token-delay-ms", f"{token_delay_ms:g}", "--script-file", str(SIM_DEMO_SCRIPTS)]
    ready = partial(http_ok, backend.url + HEALTH_PATHS[backend.protocol])
    child = sup.start(f"simulator-{backend.name}", argv, group=BACKENDS_GROUP, ready=ready)
    sup.wait_ready(child, ready, 30)
    return child
