"""Smoke tests of both client flavours against the whole mesh as `./scripts/up --backend sim` runs
it, through the real Envoy ingress: streams, the chat STOP, rich errors in trailers, health."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llmmesh.common.backends import parse_backend
from llmmesh.launcher.up import Mesh
from llmmesh_client import AsyncLlmMesh, InvalidArgumentError, LlmMesh, NotFoundError, judge_pb2, methods
from tests.support.e2e import wait_until
from tests.support.mesh import running_mesh
from tests.support.streams import collapsed

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e_clients")]


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    with running_mesh(Path(tmp_path_factory.mktemp("e2e-clients")), backend="sim") as mesh:
        yield mesh


def sim_url(mesh: Mesh) -> str:
    return parse_backend(mesh.choice.specs[0]).url


def sim_stats(mesh: Mesh) -> dict:
    return httpx.get(f"{sim_url(mesh)}/_sim/stats", timeout=10).json()


def test_sync_client_through_envoy(mesh: Mesh) -> None:
    with LlmMesh(mesh.ingress) as client:
        models = client.inference.list_models()
        events = list(client.inference.generate("Why is the sky blue?", options={"max_tokens": 8}))
        health = {name: client.health(full) for name, full in methods.SERVICES.items()}
        with pytest.raises(InvalidArgumentError) as err:
            list(client.inference.generate("", options={"temperature": 7}))

        before = sim_stats(mesh)["cancelled"]
        httpx.put(f"{sim_url(mesh)}/_sim/faults", json={"spec": "token_delay_ms=50"}, timeout=10).raise_for_status()
        try:
            with client.inference.chat(system="You are terse.") as session:
                reasons = []
                for event in session.send("tell me a long story", options={"max_tokens": 200}):
                    if event.HasField("delta") and not reasons:
                        reasons.append("stop sent")
                        session.stop()
                    if event.HasField("done"):
                        reasons.append(event.done.done_reason)
                wait_until(lambda: sim_stats(mesh)["cancelled"] > before, 10, "the cancelled backend request")
                httpx.put(f"{sim_url(mesh)}/_sim/faults", json={"spec": ""}, timeout=10).raise_for_status()
                again = list(session.send("and then?", options={"max_tokens": 3}))
        finally:
            httpx.put(f"{sim_url(mesh)}/_sim/faults", json={"spec": ""}, timeout=10)
    assert models.default_model and len(models.models) >= 1
    assert collapsed([e.WhichOneof("event") for e in events]) == ["delta", "done"]
    assert events[-1].done.output_tokens == 8
    assert set(health.values()) == {"SERVING"}
    assert {v.field for v in err.value.field_violations} == {"prompt", "options.temperature"}
    assert reasons == ["stop sent", "cancelled"]
    assert collapsed([e.WhichOneof("event") for e in again]) == ["delta", "done"] and again[-1].turn == 2
    assert again[-1].done.output_tokens == 3


async def test_async_client_through_envoy(mesh: Mesh) -> None:
    async with AsyncLlmMesh(mesh.ingress, timeout=60) as client:
        chat = await client.inference.complete_chat([("user", "Say hello")], options={"max_tokens": 4})
        emb = await client.inference.embed(["a cat", "a dog"])
        backends = await client.inference.list_backends()
        verdict = await client.judge.evaluate(question="2+2?", answer="4")
        events = [e async for e in client.inference.generate("Count to five", options={"max_tokens": 5})]
        with pytest.raises(NotFoundError) as err:
            await client.inference.complete_chat([("user", "hi")], model="no-such-model", request_id="e2e-rid")
    assert chat.message.content and chat.done.output_tokens == 4
    assert len(emb.embeddings) == 2 and backends.backends[0].name == "sim"
    assert verdict.verdict in (judge_pb2.VERDICT_PASS, judge_pb2.VERDICT_FAIL)
    assert verdict.min_score <= verdict.score <= verdict.max_score
    assert [e.WhichOneof("event") for e in events][-1] == "done"
    assert err.value.resource is not None and err.value.resource.resource_name == "no-such-model"
    assert err.value.request_id == "e2e-rid"
