"""A ModelClient stand-in for unit tests of pattern logic: replies come from a list (or a function
of the call), every call is recorded and metered, and no server runs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmmesh.common.model_call import ChatMessage, Sampling, ToolCallData, ToolDef
from llmmesh.patterns.model_client import Completion, count


@dataclass(frozen=True)
class Call:
    model: str
    messages: tuple[ChatMessage, ...]
    sampling: Sampling
    json_schema: dict[str, Any] | None
    tools: tuple[ToolDef, ...]


@dataclass(frozen=True)
class Reply:
    text: str = ""
    tool_calls: tuple[ToolCallData, ...] = ()
    done_reason: str = "stop"


@dataclass
class FakeModelClient:
    """Answers call N with replies[N] (the last one repeats), or with `reply(call)` when given."""

    replies: Sequence[Reply | str] = ()
    reply: Callable[[Call], Reply | str] | None = None
    model: str = "fake:1b"
    calls: list[Call] = field(default_factory=list)

    async def stream(self, model: str, messages: Sequence[ChatMessage], *, sampling: Sampling | None = None,
                     json_schema: dict[str, Any] | None = None,
                     tools: Sequence[ToolDef] = ()) -> AsyncIterator[str | Completion]:
        call = Call(model, tuple(messages), sampling or Sampling(), json_schema, tuple(tools))
        self.calls.append(call)
        answer = self.reply(call) if self.reply else self.replies[min(len(self.calls), len(self.replies)) - 1]
        if isinstance(answer, str):
            answer = Reply(answer)
        for i in range(0, len(answer.text), 4):
            yield answer.text[i:i + 4]
        completion = Completion(answer.text, answer.tool_calls, model or self.model, 10,
                                max(1, len(answer.text) // 4), answer.done_reason)
        count(completion)  # metered like a real call, so a run's result carries its usage
        yield completion

    async def complete(self, model: str, messages: Sequence[ChatMessage], **kwargs: Any) -> Completion:
        async for item in self.stream(model, messages, **kwargs):
            if isinstance(item, Completion):
                return item
        raise AssertionError("unreachable")

    async def close(self) -> None:
        pass
