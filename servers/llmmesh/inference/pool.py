"""The backends as the router sees them, and model-aware choice among them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from llmmesh.common.backends import BackendConfig, Protocol
from llmmesh.framework.errors import NotFound, Overloaded, Unavailable
from llmmesh.inference.anthropic import AnthropicProtocol
from llmmesh.inference.breaker import CircuitBreaker
from llmmesh.inference.capabilities import Capabilities
from llmmesh.inference.credentials import load_credentials
from llmmesh.inference.protocols import OllamaProtocol, OpenAIProtocol, WireProtocol
from llmmesh.settings import InferenceSettings

# A backend that must first load the model counts as this many requests busier: loaded backends
# are preferred, but not so absolutely that a cold (e.g. just recovered) backend never gets traffic.
COLD_PENALTY = 4


@dataclass
class Backend:
    config: BackendConfig
    protocol: WireProtocol
    breaker: CircuitBreaker
    # Health as last probed through the egress (Envoy's active checks) — unknown until probed.
    healthy: bool = False
    models: set[str] = field(default_factory=set)
    loaded: set[str] = field(default_factory=set)
    in_flight: int = 0
    # Requests the backend runs at once, as configured (`;slots=N`) or as it says (llama.cpp's
    # /props total_slots); 0 when unknown. More would wait inside the backend, silent: the idle
    # timeout and the breaker would take a busy backend for a dead one, and the mesh's fair queue
    # could not order them.
    slots: int = 0
    last_error: str = ""
    # Per model, as learned from the backend (llmmesh.inference.capabilities).
    capabilities: dict[str, Capabilities] = field(default_factory=dict)
    # Models the backend refused a chat with tools for: what it does beats what anyone said.
    refused_tools: set[str] = field(default_factory=set)

    @property
    def name(self) -> str:
        return self.config.name

    def listed_name(self, model: str) -> str:
        """`model` as the backend lists it (Ollama lists `m` as `m:latest`)."""
        return f"{model}:latest" if model not in self.models and f"{model}:latest" in self.models else model

    def capabilities_of(self, model: str) -> Capabilities:
        """What the backend reported for `model`, under what its configuration says, unless it
        refused tools for it."""
        name = self.listed_name(model)
        found = self.capabilities.get(name, Capabilities())
        native = False if name in self.refused_tools else self.config.native_tools
        return found.overridden(self.config.context_window, native)

    def serves(self, model: str) -> bool:
        return bool({model, f"{model}:latest"} & (self.models | set(self.config.models)))

    def has_loaded(self, model: str) -> bool:
        return bool({model, f"{model}:latest"} & self.loaded)

    def usable(self) -> bool:
        return self.healthy and self.breaker.allows()


def make_backend(config: BackendConfig, failures_to_open: int, open_seconds: float, *,
                 anthropic_max_tokens: int = InferenceSettings.anthropic_max_tokens,
                 env: Mapping[str, str] | None = None) -> Backend:
    """The backend with its adapter and credentials (read from `env`, os.environ by default)."""
    credentials = load_credentials(config, env)
    protocol: WireProtocol
    if config.protocol is Protocol.ANTHROPIC:
        protocol = AnthropicProtocol(config, credentials, anthropic_max_tokens)
    else:
        protocol = (OllamaProtocol if config.protocol is Protocol.OLLAMA else OpenAIProtocol)(config, credentials)
    return Backend(config, protocol, CircuitBreaker(failures_to_open, open_seconds), slots=config.slots)


class BackendPool:
    def __init__(self, backends: list[Backend], max_inflight: int) -> None:
        self.backends = backends
        self.max_inflight = max_inflight
        # Rotates which of several equally good backends is chosen, so idle ones share the load.
        self._turn = 0

    def capacity(self, backend: Backend) -> int:
        """Requests `backend` is given at once: the configured cap, or fewer if it has fewer slots."""
        return min(self.max_inflight, backend.slots) if backend.slots else self.max_inflight

    def all_models(self) -> list[str]:
        return sorted({m for b in self.backends for m in b.models | set(b.config.models)})

    def known(self, model: str) -> bool:
        return any(b.serves(model) for b in self.backends)

    def pick(self, model: str, exclude: set[str] = frozenset()) -> Backend:  # type: ignore[assignment]
        """Healthy backend with the model: fewest requests in flight, a cold one counting as busier."""
        serving = [b for b in self.backends if b.serves(model)]
        if not serving:
            unknown = [b.name for b in self.backends if not b.healthy and not b.models]
            if unknown:
                # Can't tell "no such model" from "its backend is down": say the honest thing.
                raise Unavailable(f"model {model!r} not found on reachable backends; inventory unknown for "
                                  f"unreachable backends: {', '.join(unknown)}", retry_after_s=1.0)
            available = ", ".join(self.all_models()) or "none"
            raise NotFound(f"model {model!r} not found; available models: {available}",
                           resource_type="model", resource_name=model, description=f"available: {available}")
        candidates = [b for b in serving if b.name not in exclude and b.usable()]
        if not candidates:
            retry = min((b.breaker.retry_after() for b in serving), default=1.0) or 1.0
            raise Unavailable(f"no healthy backend for model {model!r}", retry_after_s=retry)
        free = [b for b in candidates if b.in_flight < self.capacity(b)]
        if not free:
            raise Overloaded(f"all backends for model {model!r} are saturated", retry_after_s=0.5)
        self._turn += 1
        n = len(self.backends)
        order = {b.name: (i - self._turn) % n for i, b in enumerate(self.backends)}
        return min(free, key=lambda b: (b.in_flight + (0 if b.has_loaded(model) else COLD_PENALTY), order[b.name]))
