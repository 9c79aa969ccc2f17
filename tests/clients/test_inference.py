"""The inference surface of the SDK against a real in-process server over real simulators."""

from __future__ import annotations

import asyncio
import json

import pytest

from llmmesh.simulator.config import ScriptRule
from llmmesh_client import AsyncLlmMesh, LlmMesh, inference_pb2
from tests.clients.support import MODEL, cancelled, collect, kinds, sim, target, text
from tests.support.sims import eventually, stats

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


async def test_generate_streams_deltas_then_done(inference_mesh) -> None:
    rule = ScriptRule(match="sky", response="Rayleigh scattering makes it blue.")
    async with inference_mesh(sim(rule)) as m, AsyncLlmMesh(target(m)) as client:
        events = await collect(client.inference.generate("Why is the sky blue?", model=MODEL,
                                                         options={"max_tokens": 64, "temperature": 0.1}))
    # Deltas (as many as the relay coalesced them into), then done, which counts the tokens.
    assert set(kinds(events)[:-1]) == {"delta"} and kinds(events)[-1] == "done"
    assert text(events).strip() == "Rayleigh scattering makes it blue."
    done = events[-1].done
    assert done.model.startswith(MODEL) and done.backend == "a" and done.output_tokens == 5


async def test_generate_passes_system_options_and_schema(inference_mesh) -> None:
    async with inference_mesh(sim()) as m, AsyncLlmMesh(target(m)) as client:
        events = await collect(client.inference.generate("where?", model=MODEL, system="be terse",
                                                         json_schema=SCHEMA))
        capped = await collect(client.inference.generate("count", model=MODEL, options={"max_tokens": 3}))
        recent = (await stats(m.sims[0]))["recent"]
    assert "city" in json.loads(text(events))
    assert set(kinds(capped)[:-1]) == {"delta"} and kinds(capped)[-1] == "done"
    assert capped[-1].done.output_tokens == 3 and capped[-1].done.done_reason == "length"
    assert any("be terse" in r["prompt_tail"] or r["path"] == "/api/generate" for r in recent)


async def test_complete_chat_stream_streams_one_answer_and_the_sync_client_too(inference_mesh) -> None:
    rule = ScriptRule(match="sky", response="Rayleigh scattering makes it blue.")
    async with inference_mesh(sim(rule)) as m:
        async with AsyncLlmMesh(target(m)) as client:
            events = await collect(client.inference.complete_chat_stream(
                [("system", "be brief"), ("user", "Why is the sky blue?")], model=MODEL))

        def blocking() -> list[inference_pb2.CompleteChatStreamResponse]:
            with LlmMesh(target(m)) as sync:
                return list(sync.inference.complete_chat_stream([("user", "Why is the sky blue?")], model=MODEL))

        again = await asyncio.to_thread(blocking)
    for answer in (events, again):
        assert set(kinds(answer)[:-1]) == {"delta"} and kinds(answer)[-1] == "done"
        assert text(answer).strip() == "Rayleigh scattering makes it blue." and answer[-1].done.output_tokens == 5


async def test_leaving_a_generate_stream_early_cancels_the_backend_request(inference_mesh) -> None:
    async with inference_mesh(sim(token_delay_s=0.05, tokens=200)) as m, AsyncLlmMesh(target(m)) as client:
        stream = client.inference.generate("long", model=MODEL)
        async for event in stream:
            assert event.HasField("delta")
            break
        await stream.aclose()  # type: ignore[attr-defined]
        assert await eventually(lambda: cancelled(m.sims[0]), timeout_s=10) == 1


async def test_chat_keeps_history_and_stop_ends_only_the_current_generation(inference_mesh) -> None:
    rules = (ScriptRule(match="regex:(?s)story.*and then", response="The end.", target="all"),
             ScriptRule(match="story", response=" ".join(["word"] * 200)))
    async with inference_mesh(sim(*rules, token_delay_s=0.05)) as m, AsyncLlmMesh(target(m)) as client:
        async with client.inference.chat(model=MODEL, system="You tell stories.") as session:
            first: list[inference_pb2.ChatResponse] = []
            async for event in session.send("tell me a story"):
                first.append(event)
                if len(first) == 2:
                    await session.stop()
            assert first[-1].done.done_reason == "cancelled" and first[-1].turn == 1
            assert 2 <= len(first) < 100
            assert await eventually(lambda: cancelled(m.sims[0]), timeout_s=10) == 1

            # Same stream, next turn: the server kept the history (the rule needs both turns).
            second = [e async for e in session.send("and then?")]
            assert second[-1].turn == 2 and text(second).strip() == "The end."
            assert session.turns == 2
        chat = [r for r in (await stats(m.sims[0]))["recent"] if r["path"] == "/api/chat"]
    assert len(chat) == 2


async def test_chat_reset_forgets_history_but_keeps_the_system_prompt(inference_mesh) -> None:
    rules = (ScriptRule(match="regex:(?s)first.*second", response="remembered"),
             ScriptRule(match="regex:(?s)SYS-PROMPT.*second", response="fresh with the system prompt"),
             ScriptRule(match="", response="other"))
    async with inference_mesh(sim(*rules)) as m, AsyncLlmMesh(target(m)) as client:
        async with client.inference.chat(model=MODEL, system="SYS-PROMPT") as session:
            await collect(session.send("first"))
            await session.reset()
            events = await collect(session.send("second"))
    assert text(events).strip() == "fresh with the system prompt"


async def test_leaving_a_chat_turn_early_stops_it_and_the_next_turn_is_clean(inference_mesh) -> None:
    async with inference_mesh(sim(token_delay_s=0.05, tokens=200)) as m, AsyncLlmMesh(target(m)) as client:
        async with client.inference.chat(model=MODEL) as session:
            turn = session.send("long one")
            async for _ in turn:
                break
            await turn.aclose()  # type: ignore[attr-defined]
            assert await eventually(lambda: cancelled(m.sims[0]), timeout_s=10) == 1
            second = await collect(session.send("short", options={"max_tokens": 2}))
    assert {e.turn for e in second} == {2} and kinds(second) == ["delta", "delta", "done"]


async def test_complete_chat_answers_whole_with_tuples_and_tools(inference_mesh) -> None:
    tool = {"name": "calculator", "description": "arithmetic",
            "parameters": {"type": "object", "properties": {"expression": {"type": "string"}},
                           "required": ["expression"]}}
    rule = ScriptRule(match="capital", response="Paris.")
    async with inference_mesh(sim(rule)) as m, AsyncLlmMesh(target(m)) as client:
        answer = await client.inference.complete_chat([("system", "be brief"), ("user", "capital of France?")],
                                                      model=MODEL)
        called = await client.inference.complete_chat([{"role": "user", "content": "2+2"}], model=MODEL,
                                                      tools=[tool])
    assert answer.message.role == inference_pb2.ROLE_ASSISTANT and answer.message.content.strip() == "Paris."
    assert answer.done.done_reason == "stop"
    assert called.done.done_reason == "tool_calls" and called.message.tool_calls[0].name == "calculator"


async def test_embed_models_and_backends(inference_mesh) -> None:
    async with inference_mesh(sim(), sim(name="b")) as m, AsyncLlmMesh(target(m)) as client:
        emb = await client.inference.embed(["a cat", "a dog"], model=MODEL)
        models = await client.inference.list_models()
        backends = await client.inference.list_backends()
        health = await client.health()
        inference_health = await client.health("llmmesh.inference.v1.InferenceService")
    assert len(emb.embeddings) == 2 and len(emb.embeddings[0].values) == 384
    assert [mi.name for mi in models.models] == ["m:latest"] and models.default_model == "m:latest"
    assert sorted(b.name for b in backends.backends) == ["a", "b"]
    assert all(b.health == inference_pb2.BACKEND_HEALTH_HEALTHY for b in backends.backends)
    assert health == "SERVING" and inference_health == "SERVING"


async def test_sync_client_streams_chats_and_stops_from_another_thread(inference_mesh) -> None:
    """The sync flavour (private loop thread) against the same server; run off the test's loop."""
    async with inference_mesh(sim(token_delay_s=0.05, tokens=200)) as m:

        def use_sync_client() -> tuple[list[str], str, list[str], int]:
            with LlmMesh(target(m)) as client:
                gen = [e.WhichOneof("event") for e in client.inference.generate("hi", model=MODEL,
                                                                               options={"max_tokens": 3})]
                with client.inference.chat(model=MODEL) as session:
                    reason = ""
                    for event in session.send("long story"):
                        if event.HasField("delta"):
                            session.stop()
                        if event.HasField("done"):
                            reason = event.done.done_reason
                    second = [e.WhichOneof("event") for e in session.send("again", options={"max_tokens": 2})]
                models = client.inference.list_models()
            return gen, reason, second, len(models.models)

        gen, reason, second, n_models = await asyncio.wait_for(asyncio.to_thread(use_sync_client), 60)
    assert gen == ["delta", "delta", "delta", "done"]
    assert reason == "cancelled" and second == ["delta", "delta", "done"] and n_models == 1


@pytest.mark.parametrize("flavour", ["async", "sync"])
async def test_per_call_request_id_and_timeout_are_sent(inference_mesh, flavour: str) -> None:
    """The request id reaches the server (the error says so) and a per-call timeout overrides."""
    async with inference_mesh(sim(token_delay_s=0.2, tokens=50)) as m:
        from llmmesh_client import DeadlineExceededError

        if flavour == "async":
            async with AsyncLlmMesh(target(m)) as client:
                with pytest.raises(DeadlineExceededError) as err:
                    await collect(client.inference.generate("slow", model=MODEL, timeout=0.5, request_id="rid-123"))
        else:
            def call() -> None:
                with LlmMesh(target(m)) as client:
                    list(client.inference.generate("slow", model=MODEL, timeout=0.5, request_id="rid-123"))

            with pytest.raises(DeadlineExceededError) as err:
                await asyncio.wait_for(asyncio.to_thread(call), 30)
        assert await eventually(lambda: cancelled(m.sims[0]), timeout_s=10) == 1
    assert err.value.request_id == "rid-123"
