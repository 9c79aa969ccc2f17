"""Continuation after a mid-stream failover holds exactly the new text whatever the server does with
the trailing assistant message: an echo (llama.cpp) is stripped however it is split or spaced, a
server that continues passes through, vLLM gets its flag, and whitespace at the join is reconciled."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from llmmesh.common.backends import Continuation, parse_backend
from llmmesh.common.model_call import AttemptEvent, BackendDone, ChatMessage, ModelCall, TextDelta, ToolCalls
from llmmesh.inference.continuation import continued
from llmmesh.inference.failures import ModelMissing
from llmmesh.inference.inventory import probe
from llmmesh.inference.pool import make_backend
from tests.support.fake_transport import FakeTransport, openai_lines

PREFIX = "Paris, the capital of France, is famous for"
DONE = BackendDone("stop", 1, 1)


async def run(deltas: Sequence[str], prefix: str = PREFIX, echo: bool = True) -> list[AttemptEvent]:
    async def feed() -> AsyncIterator[AttemptEvent]:
        for d in deltas:
            yield TextDelta(d)
        yield DONE

    return [e async for e in continued(feed(), prefix, echo)]


def text(events: list[AttemptEvent]) -> str:
    assert events[-1] == DONE
    return "".join(e.text for e in events if isinstance(e, TextDelta))


@pytest.mark.parametrize("deltas", [
    [PREFIX + " its", " iconic"],  # llama.cpp: the whole echo glued to the first new token
    ["Paris, the cap", "ital of France, is famous", " for its", " iconic"],  # the echo split over deltas
    ["Paris,", " ", "the capital of France, is famous for", " its iconic"],
    [" Paris, the capital  of France,\nis famous for its", " iconic"],  # other whitespace in the echo
    [PREFIX, " its", " iconic"],  # the echo alone in its delta
])
async def test_an_echo_is_stripped_to_exactly_the_new_text(deltas: list[str]) -> None:
    assert text(await run(deltas)) == " its iconic"


async def test_without_an_echo_the_text_passes_through_even_where_echoes_are_expected() -> None:
    assert text(await run([" its", " iconic"])) == " its iconic"
    # Starting like the prefix, then not: no echo after all, nothing is lost.
    assert text(await run(["Paris is", " lovely"])) == "Paris is lovely"


async def test_a_server_that_continues_is_not_second_guessed() -> None:
    # A continuing server's text that happens to repeat the prefix is its own.
    assert text(await run([PREFIX, " its"], echo=False)) == PREFIX + " its"


@pytest.mark.parametrize(("prefix", "deltas", "expected"), [
    ("famous for ", [" its", " iconic"], "its iconic"),  # "for " + " its" reads "for its"
    ("famous for ", ["its"], "its"),
    ("famous for", [" its"], " its"),
    ("one.\n\n", ["\n\n", "Two"], "Two"),
    ("one.\n", ["\n\nTwo"], "\nTwo"),
    ("famous for ", ["famous for its"], "its"),  # an echo of the sent (stripped) prefix, then the join
])
async def test_whitespace_held_back_from_the_backend_is_reconciled_at_the_join(
        prefix: str, deltas: list[str], expected: str) -> None:
    assert text(await run(deltas, prefix=prefix, echo=True)) == expected


async def test_an_echo_cut_short_by_the_end_delivers_nothing_twice() -> None:
    assert text(await run(["Paris, the capital"])) == ""


async def test_tool_calls_after_an_echo_come_through() -> None:
    calls = ToolCalls(())

    async def feed() -> AsyncIterator[AttemptEvent]:
        yield TextDelta(PREFIX)
        yield calls
        yield DONE

    assert [e async for e in continued(feed(), PREFIX, True)] == [calls, DONE]


def _continuation_call() -> ModelCall:
    return ModelCall("m", messages=(ChatMessage("user", "Tell me about Paris."),))


def test_the_prefix_goes_out_without_trailing_whitespace_and_vllm_gets_its_flag() -> None:
    vllm = make_backend(parse_backend("v=http://v:8000/v1#openai;continuation=flag"), 3, 5.0)
    _, body = vllm.protocol.request(_continuation_call(), PREFIX + " ")
    assert body["messages"][-1] == {"role": "assistant", "content": PREFIX}
    assert (body["continue_final_message"], body["add_generation_prompt"]) == (True, False)
    _, fresh = vllm.protocol.request(_continuation_call(), "")
    assert "continue_final_message" not in fresh
    llama = make_backend(parse_backend("l=http://l:8080#openai;continuation=echo"), 3, 5.0)
    assert "continue_final_message" not in llama.protocol.request(_continuation_call(), PREFIX)[1]


@pytest.mark.parametrize(("owner", "props", "learned"), [
    ("llamacpp", None, Continuation.ECHO),
    ("vllm", None, Continuation.FLAG),
    ("library", {"default_generation_settings": {"n_ctx": 4096}}, Continuation.ECHO),  # /props: llama.cpp
    ("openai", None, Continuation.AUTO),  # unknown: stays auto (strips an echo if one comes)
])
async def test_an_openai_compatible_server_is_recognised_by_its_inventory(
        owner: str, props: dict | None, learned: Continuation) -> None:
    backend = make_backend(parse_backend("s=http://s:8080#openai"), 3, 5.0)
    transport = FakeTransport(docs={
        ("s", "/v1/models"): {"data": [{"id": "m", "owned_by": owner}]},
        ("s", "/props"): props if props is not None else ModelMissing("s", "not found", status=404),
    })
    await probe(transport, backend, 1.0)  # type: ignore[arg-type]
    assert backend.protocol.continuation is learned


async def test_a_configured_continuation_is_not_overridden_by_what_the_server_says() -> None:
    backend = make_backend(parse_backend("s=http://s:8080#openai;continuation=continue"), 3, 5.0)
    transport = FakeTransport(docs={("s", "/v1/models"): {"data": [{"id": "m", "owned_by": "llamacpp"}]},
                                    ("s", "/props"): {"default_generation_settings": {"n_ctx": 4096}}})
    await probe(transport, backend, 1.0)  # type: ignore[arg-type]
    assert backend.protocol.continuation is Continuation.CONTINUE


async def test_the_adapter_strips_llama_cpps_echo_from_a_real_shaped_stream() -> None:
    backend = make_backend(parse_backend("l=http://l:8080#openai;continuation=echo"), 3, 5.0)

    async def lines() -> AsyncIterator[str]:
        for line in openai_lines(PREFIX + " its", " iconic", " landmarks"):
            yield line

    events = [e async for e in backend.protocol.events("l", lines(), PREFIX)]
    assert [e.text for e in events if isinstance(e, TextDelta)] == [" its", " iconic", " landmarks"]
