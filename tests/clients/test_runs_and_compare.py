"""Comparisons and the run store through the SDK (sync and async) and the `llmmesh` CLI, against a
real in-process server and scripted simulators. These check the client surface: keyword requests,
the ranking, runs listed, shown, paged and deleted, `store=False` and `--no-store`."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from llmmesh.simulator.config import ScriptRule
from llmmesh_client import AsyncLlmMesh, LlmMesh, NotFoundError, runs_pb2
from tests.clients.cli_proc import run_cli
from tests.clients.support import MODEL, kinds, sim, target

SERVICES = ("inference", "judge", "compare", "runs")
PROMPT = "Capital of France?"
RULES = (ScriptRule(match="regex:(?s)Criterion:.*<answer>\nParis", response=json.dumps({"reasoning": "r", "score": 5})),
         ScriptRule(match="Criterion:", response=json.dumps({"reasoning": "r", "score": 1})),
         ScriptRule(match=PROMPT, model="m", response="Paris."),
         ScriptRule(match=PROMPT, model="m2", response="Lyon."))
MODELS = ("m", "m2")


async def test_compare_and_runs_through_the_async_client(inference_mesh) -> None:
    async with inference_mesh(sim(*RULES, models=MODELS), services=SERVICES) as m, \
            AsyncLlmMesh(target(m)) as client:
        result = await client.compare.run(prompt=PROMPT, models=list(MODELS), judges=[MODEL], criteria=["factual"])
        stream = client.compare.run_stream(prompt=PROMPT, models=list(MODELS), judges=[MODEL])
        events = [e async for e in stream]
        run = await client.runs.get(result.run_id)
        page = await client.runs.list(pattern="compare", status="succeeded", page_size=1)
        every = [r.run_id async for r in client.runs.iterate(page_size=1)]
        await client.runs.delete(result.run_id)
        with pytest.raises(NotFoundError):
            await client.runs.get(result.run_id)
    assert [(r.model, r.rank, r.score) for r in result.ranking] == [("m", 1, 1.0), ("m2", 2, 0.0)]
    assert kinds(events)[-1] == "result" and {e.delta.source for e in events if e.HasField("delta")} == set(MODELS)
    assert (run.pattern, run.method, run.status) == ("compare", "Run", runs_pb2.RUN_STATUS_SUCCEEDED)
    assert [r.run_id for r in page.runs] == [events[-1].result.run_id] and page.next_page_token
    assert every == [events[-1].result.run_id, result.run_id]


async def test_runs_through_the_sync_client(inference_mesh) -> None:
    def sync_calls(address: str) -> None:
        with LlmMesh(address) as mesh:
            kept = mesh.judge.evaluate(question=PROMPT, answer="Paris.", model=MODEL)
            skipped = mesh.judge.evaluate(question=PROMPT, answer="Paris.", model=MODEL, store=False)
            assert kept.run_id and skipped.run_id
            assert mesh.runs.get(kept.run_id).result["run_id"] == kept.run_id
            with pytest.raises(NotFoundError):
                mesh.runs.get(skipped.run_id)
            since = datetime.now(UTC) - timedelta(minutes=5)
            assert [r.run_id for r in mesh.runs.iterate(created_after=since)] == [kept.run_id]
            assert mesh.runs.list(created_after=datetime.now(UTC) + timedelta(minutes=5)).runs == []
            mesh.runs.delete(kept.run_id)
            assert list(mesh.runs.iterate()) == []

    async with inference_mesh(sim(*RULES, models=MODELS), services=SERVICES) as m:
        await asyncio.wait_for(asyncio.to_thread(sync_calls, target(m)), 60)


async def test_the_cli_compares_and_lists_shows_and_deletes_runs(inference_mesh) -> None:
    async with inference_mesh(sim(*RULES, models=MODELS), services=SERVICES) as m:
        at = ("--target", target(m))
        compared = await run_cli("compare", PROMPT, "-m", "m", "-m", "m2", "--judge", MODEL, "--criterion", "factual",
                                 "--answers", *at)
        unary = await run_cli("--json", "compare", PROMPT, "-m", "m", "-m", "m2", "--judge", MODEL, "--unary", *at)
        judged = await run_cli("judge", "--question", PROMPT, "--answer", "Paris.", "--model", MODEL, "--no-store",
                               *at)
        listed = await run_cli("runs", *at)
        as_json = await run_cli("runs", "--pattern", "compare", "--limit", "1", "--json", *at)
        run_id = json.loads(as_json.out)["run_id"]
        shown = await run_cli("runs", "show", run_id, *at)
        deleted = await run_cli("runs", "delete", run_id, *at)
        gone = await run_cli("runs", "show", run_id, *at)
        bad = await run_cli("compare", PROMPT, "-m", "m", *at)
    assert compared.code == 0, compared.err
    table = compared.out.splitlines()
    assert table[0].split() == ["RANK", "MODEL", "SCORE", "WINS", "LATENCY", "TOK/S", "TOKENS"]
    assert table[1].split()[:4] == ["1", "m", "1", "-"] and table[2].split()[:3] == ["2", "m2", "0"]
    assert "--- m ---\nParis." in compared.out and "m2: scored 0" in compared.err
    assert unary.code == 0 and json.loads(unary.out)["ranking"][0]["model"] == "m"
    assert judged.code == 0
    rows = listed.out.splitlines()
    assert listed.code == 0 and rows[0].split()[:4] == ["RUN", "PATTERN", "METHOD", "STATUS"]
    # Two comparisons stored, newest first; the judge run said --no-store.
    assert [r.split()[1:4] for r in rows[1:]] == [["compare", "Run", "succeeded"],
                                                  ["compare", "RunStream", "succeeded"]]
    assert shown.code == 0 and f"run: {run_id}" in shown.out and "pattern: compare (Run), succeeded" in shown.out
    assert deleted.code == 0 and gone.code == 1 and gone.err.startswith("llmmesh: NOT_FOUND: ")
    assert bad.code == 1 and "  run.models: name at least two models to compare; got 1" in bad.err  # the stream
