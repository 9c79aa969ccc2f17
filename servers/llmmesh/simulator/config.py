"""Typed, frozen configuration of one simulator instance."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

DEFAULT_MODELS: tuple[str, ...] = ("smollm2:135m", "llama3.2:1b")


@dataclass(frozen=True)
class FaultSpec:
    """One fault specification. ``None`` means "not set", so specs can be layered with ``merge``.

    The text form (``faults.parse_fault_spec``) is comma-separated ``key=value``, e.g.
    ``"delay_ms=200,drop_after=3"``.
    """

    delay_ms: int | None = None  # sleep before answering (before any header)
    token_delay_ms: int | None = None  # sleep before every token
    status: int | None = None  # answer this HTTP status with an error body
    fail_at_chunk: int | None = None  # after N frames, an in-stream {"error": ...} line, then end
    hang_after: int | None = None  # after N frames, send nothing more until the client leaves
    drop_after: int | None = None  # after N frames, abort the TCP connection
    busy: bool | None = None  # 503 "server busy"
    max_concurrency: int | None = None  # beyond N concurrent generations: 503 busy
    health: str | None = None  # "up" | "down" | "hang" | "<status>" for /api/tags, /api/ps, /api/version
    rate: float | None = None  # apply the fault to this fraction of requests (instance-level chaos)
    times: int | None = None  # instance-level: apply to the next N requests, then clear itself

    def merge(self, other: FaultSpec) -> FaultSpec:
        """Return a spec where every field set in ``other`` overrides this one."""
        values = {f.name: getattr(other, f.name) for f in fields(self) if getattr(other, f.name) is not None}
        return FaultSpec(**{**self.as_dict(), **values})

    def as_dict(self) -> dict[str, Any]:
        """All fields, including unset ones (``None``)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def is_empty(self) -> bool:
        return all(v is None for v in self.as_dict().values())


@dataclass(frozen=True)
class ScriptRule:
    """A scripted answer. See ``scripts.py`` for how rules are matched."""

    match: str  # substring (case-sensitive) or "regex:<python regex>"
    response: str = ""
    tool_calls: tuple[dict[str, Any], ...] = ()  # Ollama shape: {"function": {"name", "arguments"}}
    fault: str = ""  # fault spec applied to requests this rule answers
    times: int | None = None  # use N times, then fall through to later rules
    model: str | None = None  # only for this model
    target: str = "all"  # "all": whole conversation text; "last": last message (generate: prompt)


@dataclass(frozen=True)
class SimulatorConfig:
    name: str = "sim"
    models: tuple[str, ...] = DEFAULT_MODELS
    token_delay_s: float = 0.0  # default delay before each token
    tokens: int = 32  # tokens per unscripted answer (before num_predict / stop)
    max_concurrency: int = 0  # 0 = unlimited; beyond it, 503 like Ollama's full queue
    fault: FaultSpec = field(default_factory=FaultSpec)  # instance fault at start-up
    scripts: tuple[ScriptRule, ...] = ()
    preload: tuple[str, ...] = ()  # models shown as loaded in /api/ps from the start
    # Models without tool calling, like Ollama models whose template has none: /api/show lists no
    # "tools" capability, and a chat with tools answers 400 "... does not support tools".
    no_tools: tuple[str, ...] = ()
    context_length: int = 4096  # every model's window (/api/show model_info, /api/ps)
    embedding_dim: int = 384
    version: str = "0.12.6"  # reported by /api/version
    fault_seed: int = 0  # seeds the RNG behind fault ``rate``
    # How a chat ending with a partial assistant answer is treated (mid-stream failover sends one):
    # "ignore" answers it as a new input; "continue" goes on from it (Ollama, Anthropic); "echo"
    # streams it back first, split over two deltas, the second glued to the new text (llama.cpp);
    # "flag" continues only with the OpenAI body's `continue_final_message` (vLLM). /v1/models
    # names the server echo and flag model (owned_by llamacpp, vllm), as the real ones do.
    continuation: str = "ignore"
    # With a key, the /v1/ routes require it: `Authorization: Bearer <key>` (OpenAI), `x-api-key`
    # (a request with `anthropic-version`, as Anthropic's are); 401 otherwise.
    api_key: str = field(default="", repr=False)
