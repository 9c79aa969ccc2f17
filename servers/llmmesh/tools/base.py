"""What a tool is, and what calling one produces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

BUILTIN = "builtin"


class Tool(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def parameters(self) -> dict[str, Any]:
        """JSON schema of the arguments (an object schema)."""
        ...

    @property
    def source(self) -> str:
        """"builtin", or the gRPC target or MCP server URL the tool is served from."""
        ...

    @property
    def examples(self) -> tuple[ToolExample, ...]:
        """Worked uses of the tool, shown to models that call tools through prompted JSON."""
        ...

    async def call(self, arguments: dict[str, Any]) -> str:
        """The tool's output as text (JSON for structured results). Raises ToolError for an
        expected failure; any other exception is reported as an internal tool error."""
        ...


@dataclass(frozen=True)
class ToolExample:
    """A question, the call that answers it, the tool's output and the answer drawn from it.

    Small models imitate a demonstration far better than they follow a description: shown as
    earlier turns of the conversation, it teaches the call's shape (copy the expression from the
    question) and the answer's (state the tool's result)."""

    question: str
    arguments: dict[str, Any]
    output: str
    answer: str


class ToolError(Exception):
    """An expected tool failure, reported to the model and the caller as is.

    `code` is a google.rpc.Code name (INVALID_ARGUMENT, FAILED_PRECONDITION, …), so the tool layer
    stays free of gRPC while the servicers can still report a real status.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Failure:
    code: str  # google.rpc.Code name
    message: str


@dataclass(frozen=True)
class ToolOutcome:
    call_id: str
    name: str
    output: str
    truncated: bool = False
    error: Failure | None = None
    duration_ms: float = 0.0

    def for_model(self) -> str:
        """The text a model sees in the tool message: the output, or the error spelled out so the
        model can correct its call."""
        if self.error is None:
            return self.output + ("\n[output truncated]" if self.truncated else "")
        return f"ERROR {self.error.code}: {self.error.message}"
