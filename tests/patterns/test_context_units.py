"""Fitting prompts into a model's context window, without a server: oldest turns are left out
first, the turns a step needs are clipped, and the caller's own text that cannot fit is
INVALID_ARGUMENT naming its field."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from llmmesh.common.model_call import ChatMessage, Sampling
from llmmesh.framework.errors import InvalidArgument
from llmmesh.patterns.context import CLIP_MARK, MARGIN, Room, estimate_tokens, fit_text, fit_turns, room
from llmmesh.patterns.model_info import ModelInfo, prime
from tests.support.fake_model import FakeModelClient


@dataclass(frozen=True)
class Said:
    content: str


def render(task: str):
    def build(shown: Sequence[Said], omitted: int) -> list[ChatMessage]:
        note = f"({omitted} left out)\n" if omitted else ""
        return [ChatMessage("system", "ROLE"),
                ChatMessage("user", f"TASK {task}\n{note}" + "\n".join(t.content for t in shown))]
    return build


def test_estimate_over_counts_english_text() -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 20  # ~200 tokens in any BPE tokenizer
    assert estimate_tokens([ChatMessage("user", text)]) >= len(text) // 4


def test_room_reserves_the_answer_and_caps_its_share_of_the_window() -> None:
    assert Room("m", 2048, Sampling(max_tokens=256)).prompt_tokens == 2048 - 256 - MARGIN
    # A caller's max_tokens as large as the window would leave no room for any prompt.
    assert Room("m", 2048, Sampling(max_tokens=4000)).prompt_tokens == 1024 - MARGIN


def test_everything_is_shown_when_it_fits() -> None:
    turns = [Said(f"turn {i}") for i in range(5)]
    messages = fit_turns(Room("m", 2048, Sampling(max_tokens=100)), render("t"), turns, {"task": "t"})
    assert messages == render("t")(turns, 0)


def test_oldest_turns_are_left_out_first_and_the_prompt_says_how_many() -> None:
    turns = [Said(f"T{i}-" + "x" * 600) for i in range(10)]  # ~200 tokens each
    room_ = Room("m", 1024, Sampling(max_tokens=256))
    messages = fit_turns(room_, render("the task"), turns, {"task": "the task"})
    assert estimate_tokens(messages) <= room_.prompt_tokens
    user = messages[-1].content
    shown = [i for i in range(10) if f"T{i}-" in user]
    assert shown == list(range(10 - len(shown), 10)) and 0 < len(shown) < 10  # the newest, in order
    assert f"({10 - len(shown)} left out)" in user
    assert user.startswith("TASK the task") and messages[0].content == "ROLE"  # never cut


def test_turns_that_must_stay_are_clipped_evenly_when_they_alone_are_too_long() -> None:
    turns = [Said("A" * 3000), Said("B" * 3000)]
    room_ = Room("m", 1024, Sampling(max_tokens=256))
    messages = fit_turns(room_, render("t"), turns, {"task": "t"}, keep=2)
    assert estimate_tokens(messages) <= room_.prompt_tokens
    user = messages[-1].content
    assert user.count(CLIP_MARK) == 2 and 500 < user.count("A") < 3000 and abs(user.count("A") - user.count("B")) < 5


def test_one_service_text_is_clipped_to_fit() -> None:
    room_ = Room("m", 1024, Sampling(max_tokens=256))
    messages = fit_text(room_, lambda d: [ChatMessage("user", f"Task\n{d}")], "word " * 2000, {"task": "Task"})
    assert estimate_tokens(messages) <= room_.prompt_tokens and messages[0].content.endswith(CLIP_MARK)


def test_callers_text_that_cannot_fit_names_the_longest_field() -> None:
    room_ = Room("smollm2:135m", 2048, Sampling(max_tokens=256))
    task = "z" * 9000
    with pytest.raises(InvalidArgument) as err:
        fit_turns(room_, render(task), [Said("short")], {"run.task": task, "run.agents[0].system_prompt": "be nice"})
    (violation,) = err.value.violations
    assert violation.field == "run.task"
    assert "smollm2:135m" in violation.description and "2048" in violation.description


async def test_room_takes_the_window_from_model_info_and_a_smaller_num_ctx() -> None:
    client = FakeModelClient()
    prime(client, ModelInfo("big:8b", 8192, native_tools=True))
    assert (await room(client, "", Sampling(max_tokens=100))).window == 8192  # "" is the default model
    assert (await room(client, "big:8b", Sampling(num_ctx=4096))).window == 4096
    unknown = await room(FakeModelClient(), "other", Sampling())
    assert unknown.window == 2048 and unknown.model == "other"  # model_info's conservative default
