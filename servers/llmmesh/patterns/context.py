"""Keep a step's prompt inside its model's context window.

A pattern builds its prompts from transcripts that grow with every turn (a discussion, drafts and
critiques). Sent as is, a long run outgrows a small model's window and the backend refuses the
call, blaming "the request" for text the service wrote. Instead, each step measures its prompt
against the window of the model that will answer it (less the room its answer needs) and, when
it is too long, drops the oldest turns (the prompt says how many), then clips the turns it must
keep. The system prompt and the caller's own text (the task) are never cut: when they alone do
not fit, the request is INVALID_ARGUMENT naming the caller's field that is too long.

Tokens are estimated, not counted (no tokenizer for every model here): about 3 characters per
token, which over-counts English (≈4) so the estimate errs on the side of fitting.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from llmmesh.common.model_call import ChatMessage, Sampling
from llmmesh.framework.errors import FieldViolation, InvalidArgument
from llmmesh.patterns.model_info import model_info

CHARS_PER_TOKEN = 3
# The chat template's tokens around each message (role markers, separators).
MESSAGE_OVERHEAD = 8
# Headroom for the estimate's error and the template's prefix.
MARGIN = 32
# A step's answer may take at most this share of the window: a caller's large max_tokens must not
# leave no room for the prompt.
MAX_OUTPUT_SHARE = 0.5
CLIP_MARK = " […]"


class HasContent(Protocol):
    content: str


T = TypeVar("T", bound=HasContent)
# Builds a step's messages from the turns it may show and how many older turns were left out.
Render = Callable[[Sequence[T], int], list[ChatMessage]]


def estimate_tokens(messages: Sequence[ChatMessage]) -> int:
    return sum(-(-len(m.content) // CHARS_PER_TOKEN) + MESSAGE_OVERHEAD for m in messages)


@dataclass(frozen=True)
class Room:
    """What one step may send to `model`: a prompt of at most `prompt_tokens`, and its answer."""

    model: str
    window: int
    sampling: Sampling

    @property
    def output_tokens(self) -> int:
        wanted = self.sampling.max_tokens or self.window
        return min(wanted, int(self.window * MAX_OUTPUT_SHARE))

    @property
    def prompt_tokens(self) -> int:
        return self.window - self.output_tokens - MARGIN

    def fits(self, messages: Sequence[ChatMessage]) -> bool:
        return estimate_tokens(messages) <= self.prompt_tokens

    def sampling_for(self, messages: Sequence[ChatMessage]) -> Sampling:
        """The step's sampling with max_tokens lowered, if need be, to what the prompt leaves."""
        left = self.window - estimate_tokens(messages) - MARGIN
        wanted = self.sampling.max_tokens
        return dataclasses.replace(self.sampling, max_tokens=min(wanted, left) if wanted else left)


async def room(client: Any, model: str, sampling: Sampling) -> Room:
    """The room of a step answered by `model` with `sampling` (max_tokens already the step's)."""
    info = await model_info(client, model)  # an unknown window is model_info's conservative default
    # A caller's num_ctx is the window the backend will actually use (Ollama truncates to it).
    window = min(info.context_window, sampling.num_ctx) if sampling.num_ctx else info.context_window
    return Room(info.name or model, window, sampling)


def too_long(room_: Room, fields: Mapping[str, str], needed: int) -> InvalidArgument:
    """INVALID_ARGUMENT naming the longest of the caller's `fields` (path → text) in this prompt."""
    field = max(fields, key=lambda name: len(fields[name]))
    return InvalidArgument([FieldViolation(field, (
        f"too long for the context window of model {room_.model!r} ({room_.window} tokens): "
        f"the prompt needs about {needed} tokens, at most {room_.prompt_tokens} fit; shorten it"))])


def fit(room_: Room, messages: list[ChatMessage], fields: Mapping[str, str]) -> list[ChatMessage]:
    """`messages` as they are when they fit, else INVALID_ARGUMENT naming the longest caller field."""
    if not room_.fits(messages):
        raise too_long(room_, fields, estimate_tokens(messages))
    return messages


def fit_turns(room_: Room, render: Render[T], turns: Sequence[T], fields: Mapping[str, str], *,
              keep: int = 0) -> list[ChatMessage]:
    """The step's messages with as many of the newest `turns` as fit, oldest dropped first; the
    `keep` newest are never dropped, only clipped (evenly) when they alone are too long."""
    fit(room_, render([], len(turns)), fields)  # the caller's text alone must fit
    keep = min(keep, len(turns))
    for start in range(len(turns) - keep + 1):
        messages = render(turns[start:], start)
        if room_.fits(messages):
            return messages
    kept = list(turns[len(turns) - keep:])
    omitted = len(turns) - keep
    over = estimate_tokens(render(kept, omitted)) - room_.prompt_tokens
    total = sum(len(t.content) for t in kept) or 1
    # Take the excess from each kept turn in proportion to its length (plus the marks' cost).
    excess_chars = over * CHARS_PER_TOKEN + len(kept) * len(CLIP_MARK)
    clipped = [_clip(t, len(t.content) - -(-excess_chars * len(t.content) // total)) for t in kept]
    return fit(room_, render(clipped, omitted), fields)


def _clip(turn: T, chars: int) -> T:
    if chars >= len(turn.content):
        return turn
    return dataclasses.replace(turn, content=turn.content[:max(chars, 0)].rstrip() + CLIP_MARK)  # type: ignore[type-var]


@dataclass(frozen=True)
class Passage:
    """Text the service wrote (a draft, a turn) that a prompt may clip but must show."""

    content: str


def fit_text(room_: Room, render: Callable[[str], list[ChatMessage]], text: str,
             fields: Mapping[str, str]) -> list[ChatMessage]:
    """The step's messages around one service-written `text`, clipped if it does not fit."""
    return fit_turns(room_, lambda kept, _: render(kept[0].content if kept else ""), [Passage(text)], fields,
                     keep=1)
