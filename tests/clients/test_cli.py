"""The `llmmesh` CLI as a subprocess against a real in-process server: output, JSON, exit codes."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import signal
from pathlib import Path

from prometheus_client import CollectorRegistry

from llmmesh.inference.v1 import inference_service_pb2 as inference_pb2
from llmmesh.settings import AuthSettings, Settings
from llmmesh.simulator.config import ScriptRule
from tests.clients.cli_proc import CLI, cli_env, run_cli
from tests.clients.support import MODEL, cancelled, sim, target
from tests.clients.test_patterns import PLAN_RULES
from tests.support.inproc import inproc_mesh
from tests.support.ports import free_port
from tests.support.signals import default_sigint
from tests.support.sims import eventually


async def test_models_backends_and_health(inference_mesh) -> None:
    async with inference_mesh(sim(), sim(name="b")) as m:
        as_json = await run_cli("models", "--json", "--target", target(m))
        table = await run_cli("--target", target(m), "models")
        backends = await run_cli("backends", "--target", target(m), "--json")
        health = await run_cli("health", "--target", target(m), "--service", "inference")
    assert as_json.code == 0, as_json.err
    # The simulator reports a 4096-token window and native tools, as Ollama's /api/show would.
    assert json.loads(as_json.out) == {"models": [{"name": "m:latest", "backends": ["a", "b"], "context_window": 4096,
                                                   "native_tools": True}],
                                       "default_model": "m:latest"}
    assert table.code == 0 and "* m:latest" in table.out and "a,b" in table.out
    assert backends.code == 0 and [b["name"] for b in json.loads(backends.out)["backends"]] == ["a", "b"]
    assert health.code == 0 and health.out.split("\n")[1].split() == ["inference", "SERVING"]


async def test_health_of_services_this_server_does_not_host_fails(inference_mesh) -> None:
    async with inference_mesh(sim()) as m:
        done = await run_cli("health", "--target", target(m), "--json")
    statuses = json.loads(done.out)
    assert done.code == 1 and statuses["inference"] == "SERVING" and statuses["server"] == "SERVING"
    assert statuses["judge"].startswith("UNKNOWN (NOT_FOUND")


async def test_generate_streams_the_answer_to_stdout(inference_mesh) -> None:
    rule = ScriptRule(match="sky", response="Rayleigh scattering.")
    async with inference_mesh(sim(rule)) as m:
        plain = await run_cli("generate", "Why is the sky blue?", "--target", target(m), "--model", MODEL)
        piped = await run_cli("generate", "-", "--target", target(m), "--max-tokens", "1", stdin="the sky?")
        lines = await run_cli("--json", "generate", "Why is the sky blue?", "--target", target(m))
    assert plain.code == 0, plain.err
    assert plain.out == "Rayleigh scattering.\n"  # stdout holds the answer and nothing else
    assert plain.err.startswith("[m on a: 2 tokens, ") and plain.err.endswith(" tok/s, stop]\n")
    assert piped.code == 0 and piped.out == "Rayleigh\n"
    events = [json.loads(line) for line in lines.out.splitlines()]
    # One JSON line per delta message (the relay may coalesce tokens), then done.
    assert {next(iter(e)) for e in events[:-1]} == {"delta"} and next(iter(events[-1])) == "done"
    assert events[-1]["done"]["done_reason"] == "stop" and events[0]["delta"]["text"].startswith("Rayleigh")
    assert "".join(e["delta"]["text"] for e in events[:-1]) == "Rayleigh scattering."


async def test_generate_says_on_stderr_while_it_waits_for_a_busy_backend(inference_mesh) -> None:
    async with inference_mesh(sim(token_delay_s=0.05, tokens=12), max_inflight_per_backend=1) as m:
        busy = m.stub.Generate(inference_pb2.GenerateRequest(model=MODEL, prompt="occupy"))
        await busy.read()
        waited = await run_cli("generate", "hi", "--target", target(m), "--model", MODEL)
        busy.cancel()
    assert waited.code == 0 and waited.err.startswith("[queued: 1 of 1]\n"), waited.err
    assert "queued" not in waited.out  # stdout holds the answer alone


async def test_server_errors_exit_1_with_code_message_and_field_violations(inference_mesh) -> None:
    async with inference_mesh(sim()) as m:
        invalid = await run_cli("generate", "", "--target", target(m), "--temperature", "9")
        missing = await run_cli("generate", "hi", "--target", target(m), "--model", "nope")
    assert invalid.code == 1 and invalid.out == ""
    lines = invalid.err.splitlines()
    assert lines[0].startswith("llmmesh: INVALID_ARGUMENT: ")
    assert sorted(lines[1:]) == ["  options.temperature: must be between 0 and 2", "  prompt: is required"]
    assert missing.code == 1 and missing.err.startswith("llmmesh: NOT_FOUND: model 'nope' not found")


async def test_unreachable_target_exits_1() -> None:
    done = await run_cli("models", "--target", f"127.0.0.1:{free_port()}", "--timeout", "5")
    assert done.code == 1 and done.out == ""
    assert done.err.startswith("llmmesh: UNAVAILABLE: ") and "\n  retry after" not in done.err


async def test_usage_errors_exit_2() -> None:
    bad_number = await run_cli("generate", "hi", "--max-tokens", "many")
    unknown = await run_cli("frobnicate")
    no_answer = await run_cli("judge", "--question", "q", "--target", f"127.0.0.1:{free_port()}")
    bad_juror = await run_cli("jury", "--answer", "a", "--juror", "m,weight=heavy")
    bad_timeout = await run_cli("models", "--timeout", "0")
    for done in (bad_number, unknown, no_answer, bad_juror, bad_timeout):
        assert done.code == 2 and done.out == "" and "usage: llmmesh" in done.err, done
    assert "--answer is required" in no_answer.err and "weight 'heavy'" in bad_juror.err


async def test_api_key_from_the_environment(tmp_path: Path, settings: Settings, registry: CollectorRegistry) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": [{"name": "cli", "sha256": hashlib.sha256(b"cli-key").hexdigest(),
                                          "scopes": ["inference"]}]}))
    secured = dataclasses.replace(settings, auth=AuthSettings(api_keys_file=str(keys)))
    async with inproc_mesh(secured, registry, sim()) as m:
        ok = await run_cli("models", env=cli_env(LLMMESH_TARGET=target(m), LLMMESH_API_KEY="cli-key"))
        flag = await run_cli("models", "--api-key", "cli-key", "--target", target(m))
        denied = await run_cli("models", env=cli_env(LLMMESH_TARGET=target(m)))
    assert ok.code == 0 and flag.code == 0 and "m:latest" in ok.out
    assert denied.code == 1 and denied.err.startswith("llmmesh: UNAUTHENTICATED: missing API key")


async def test_patterns_show_progress_on_stderr_and_the_answer_on_stdout(inference_mesh) -> None:
    verdict = json.dumps({"reasoning": "Correct.", "score": 5})
    rules = (*PLAN_RULES, ScriptRule(match="", response=verdict))
    async with inference_mesh(sim(*rules), services=("inference", "jury", "planexecute", "judge")) as m:
        jury = await run_cli("jury", "--target", target(m), "--question", "2+2?", "--answer", "4",
                             "--juror", MODEL, "--juror", f"{MODEL},criterion=clarity",
                             "--juror", f"{MODEL},criterion=relevance,weight=2", "--aggregation", "weighted-mean")
        jury_json = await run_cli("jury", "--json", "--target", target(m), "--question", "2+2?", "--answer", "4",
                                  "--juror", MODEL, "--juror", f"{MODEL},criterion=clarity")
        plan = await run_cli("plan", "GOAL", "--target", target(m), "--model", MODEL)
        judge = await run_cli("judge", "--unary", "--json", "--target", target(m), "--question", "2+2?",
                              "--answer", "4", "--model", MODEL)
    assert jury.code == 0, jury.err
    assert [line.split(":")[0] for line in jury.err.splitlines()] == ["jurors 1/3", "jurors 2/3", "jurors 3/3"]
    assert jury.out.splitlines()[:2] == ["verdict: pass", "score: 1 (weighted_mean)"]
    events = [json.loads(line) for line in jury_json.out.splitlines()]
    assert [next(iter(e)) for e in events] == ["juror_verdict", "juror_verdict", "result"] and jury_json.err == ""
    assert plan.code == 0, plan.err
    assert plan.out.strip() == "approved answer"
    assert "plan steps 1/1: s1 succeeded" in plan.err
    assert judge.code == 0 and json.loads(judge.out)["verdict"] == "VERDICT_PASS"


async def test_ctrl_c_interrupts_a_command_with_exit_130_and_cancels_the_call(inference_mesh) -> None:
    async with inference_mesh(sim(token_delay_s=0.05, tokens=4000)) as m:
        proc = await asyncio.create_subprocess_exec(*CLI, "generate", "go on and on", "--target", target(m),
                                                    stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE, env=cli_env(),
                                                    preexec_fn=default_sigint)
        assert proc.stdout is not None and proc.stderr is not None
        first = await asyncio.wait_for(proc.stdout.read(4), 30)  # tokens are arriving
        proc.send_signal(signal.SIGINT)
        err = await asyncio.wait_for(proc.stderr.read(), 30)
        code = await asyncio.wait_for(proc.wait(), 30)
        # Within the 200 s the generation would run if nothing cancelled it (a busy machine can be
        # slow to see the CLI's connection close; an uncancelled generation completes and counts 0).
        assert await eventually(lambda: cancelled(m.sims[0]), timeout_s=60) == 1
    assert first and code == 130 and err.decode().strip() == "llmmesh: interrupted"
