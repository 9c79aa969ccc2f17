"""Backend-neutral description of one model call and the events it produces.

Protocol adapters translate these to Ollama or OpenAI wire formats; the servicer translates them
from and to protobuf. Keeping this layer free of both lets the engine be tested on its own, and
lets the patterns (clients of the inference service) share the same value types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The longest model name any service accepts from a caller.
MAX_MODEL_NAME = 256


@dataclass(frozen=True)
class ToolCallData:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ChatMessage:
    role: str  # system | user | assistant | tool
    content: str
    tool_calls: tuple[ToolCallData, ...] = ()
    tool_call_id: str = ""
    name: str = ""


@dataclass(frozen=True)
class ToolDef:
    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class Sampling:
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    num_ctx: int | None = None
    top_p: float | None = None
    frequency_penalty: float | None = None


@dataclass(frozen=True)
class ModelCall:
    model: str
    # Chat form. For a plain Generate, `prompt` is set and messages is empty.
    messages: tuple[ChatMessage, ...] = ()
    prompt: str = ""
    system: str = ""
    sampling: Sampling = field(default_factory=Sampling)
    tools: tuple[ToolDef, ...] = ()
    json_schema: dict[str, Any] | None = None

    def as_messages(self) -> tuple[ChatMessage, ...]:
        """Chat form of any call: what a continuation or an OpenAI backend needs."""
        if self.messages:
            head = (ChatMessage("system", self.system),) if self.system else ()
            return head + self.messages
        head = (ChatMessage("system", self.system),) if self.system else ()
        return (*head, ChatMessage("user", self.prompt))


# ---- events produced by a generation -------------------------------------------------------

@dataclass(frozen=True)
class TextDelta:
    text: str
    # How many backend tokens the text holds: more than one once a relay coalesced deltas.
    tokens: int = 1


@dataclass(frozen=True)
class ToolCalls:
    calls: tuple[ToolCallData, ...]


@dataclass(frozen=True)
class BackendDone:
    """What one backend attempt reported at its end (counts may be 0 if it reported none)."""

    done_reason: str
    prompt_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class GenerationStats:
    model: str
    backend: str
    done_reason: str
    prompt_tokens: int
    output_tokens: int
    time_to_first_token_ms: float
    total_ms: float
    tokens_per_second: float
    failed_over: bool
    attempts: int
    backends: tuple[str, ...]
    # Replayed from the response cache: no backend was called (backend and backends are empty).
    cached: bool = False
    # Time spent waiting for a backend slot in the admission queue, every attempt together.
    queue_wait_ms: float = 0.0
    # The route the caller named, when one chose `model` (llmmesh.inference.routes), and the
    # models of its earlier stages that could not serve.
    requested_model: str = ""
    fallback_from: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finished:
    stats: GenerationStats


@dataclass(frozen=True)
class Queued:
    """The call waits for a backend slot (before its first token): its 1-based place in its model's
    admission queue, and that queue's length."""

    position: int
    queue_length: int


GenerationEvent = TextDelta | ToolCalls | Finished | Queued
AttemptEvent = TextDelta | ToolCalls | BackendDone


@dataclass(frozen=True)
class EmbedResult:
    model: str
    backend: str
    vectors: tuple[tuple[float, ...], ...]
    prompt_tokens: int
