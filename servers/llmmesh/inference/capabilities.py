"""What a backend's model can do, as patterns need it: its context window and native tool calling.

Learned from each backend's own API, and overridden by the backend's configuration
(`;ctx=N;tools=native|prompted`, see `backends`):
- Ollama: POST /api/show gives the model's trained window (`model_info["<arch>.context_length"]`)
  and its capabilities ("tools" when its template has tool calling). The window a request really
  gets is Ollama's num_ctx: /api/ps reports it for a loaded model; otherwise Ollama's default.
- llama.cpp: GET /props gives the per-slot window (`default_generation_settings.n_ctx`, the
  server's context divided among its slots) and whether the chat template takes tools.
- Other OpenAI-compatible servers: /v1/models may give `max_model_len` (vLLM); tool support is
  not discoverable, so it stays unknown (prompted calls) unless configured.
A model that Ollama refuses with 400 "does not support tools" loses its native tools for good.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# The num_ctx Ollama gives a model it has not loaded yet, unless told otherwise (since 0.6).
OLLAMA_DEFAULT_NUM_CTX = 4096


@dataclass(frozen=True)
class Capabilities:
    context_window: int = 0  # tokens per request, prompt and output; 0: unknown
    native_tools: bool | None = None  # None: unknown (patterns then use prompted calls)

    def overridden(self, context_window: int, native_tools: bool | None) -> Capabilities:
        """These capabilities, with what the backend's configuration says taking precedence."""
        return Capabilities(context_window or self.context_window,
                            self.native_tools if native_tools is None else native_tools)


def merge(each: Iterable[Capabilities]) -> Capabilities:
    """A model served by several backends: a request may land on any, so the smallest known
    window, and native tools only if every backend has them."""
    caps = list(each)
    windows = [c.context_window for c in caps if c.context_window]
    tools = [c.native_tools for c in caps]
    return Capabilities(min(windows, default=0), None if not tools or None in tools else all(tools))


def refuses_tools(message: str) -> bool:
    """Ollama's 400 for a chat with tools on a model whose template has none."""
    return "does not support tools" in message


def ollama_show(doc: dict[str, Any]) -> Capabilities:
    info = doc.get("model_info") or {}
    arch = info.get("general.architecture", "")
    trained = int(info.get(f"{arch}.context_length") or 0)
    window = min(trained, OLLAMA_DEFAULT_NUM_CTX) if trained else OLLAMA_DEFAULT_NUM_CTX
    capabilities = doc.get("capabilities")
    tools = None if capabilities is None else "tools" in capabilities
    return Capabilities(window, tools)


def ollama_loaded_windows(ps: dict[str, Any] | None) -> dict[str, int]:
    """The num_ctx each loaded model runs with (newer Ollama reports it in /api/ps)."""
    return {m["name"]: int(m["context_length"]) for m in (ps or {}).get("models", []) if m.get("context_length")}


def openai_windows(models: dict[str, Any]) -> dict[str, int]:
    """Windows an OpenAI-compatible /v1/models reports: vLLM's max_model_len, llama.cpp's n_ctx."""
    out = {}
    for m in models.get("data", []):
        window = m.get("max_model_len") or (m.get("meta") or {}).get("n_ctx")
        if window:
            out[m["id"]] = int(window)
    return out


def llama_props(doc: dict[str, Any]) -> Capabilities:
    """llama.cpp's /props: the per-slot window, and tool calling from the chat template."""
    window = int((doc.get("default_generation_settings") or {}).get("n_ctx") or 0)
    caps = doc.get("chat_template_caps")
    if isinstance(caps, dict) and "supports_tools" in caps:
        tools = bool(caps["supports_tools"])
    else:  # older servers: a template that takes tools mentions them
        tools = "tools" in str(doc.get("chat_template") or "")
    return Capabilities(window, tools)
