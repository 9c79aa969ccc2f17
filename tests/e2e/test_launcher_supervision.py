"""`./scripts/up` supervises what it started. A simulator SIGKILLed with streams in flight: every
stream finishes (on the other backend), the mesh stays up, and the launcher restarts the simulator
on its port, says so, and Envoy's egress and the inference service take it back. An Envoy that
cannot start any more (its config broken under it): the launcher retries with a doubling backoff,
then gives up, says why with Envoy's own words, and stops the mesh, which cannot run without it;
Ctrl-C during that backoff stops everything cleanly.

(The supervisor's rules on small real processes: tests/launcher; a killed judge replica coming
back under load: tests/deploy/test_microservices_local.py.)
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
from pathlib import Path

import grpc
import httpx
import pytest

from llmmesh.common.v1 import common_pb2
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from tests.support.e2e import cmdline, descendants, processes_where, wait_until
from tests.support.launcher import scripts_up, up_command, wait_for_banner

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e_launcher"), pytest.mark.timeout(240)]

STREAMS = 40
TOKENS = 32
# Quick failover and inventory refresh, as in the chaos drills (forwarded to the services).
SERVICE_ENV = {"LLMMESH_INVENTORY_REFRESH_S": "0.5", "LLMMESH_IDLE_TIMEOUT_S": "2", "LLMMESH_BACKOFF_S": "0.02"}


def sim_pids(launcher_pid: int) -> dict[str, int]:
    """Simulator name -> pid, among the launcher's children."""
    out = {}
    for pid, argv in descendants(launcher_pid).items():
        if "llmmesh.simulator.main" in argv:
            out[argv[argv.index("--name") + 1]] = pid
    return out


def health_flags(admin_port: int, cluster: str) -> str:
    text = httpx.get(f"http://127.0.0.1:{admin_port}/clusters", timeout=5).text
    return next((ln.rsplit("::", 1)[1] for ln in text.splitlines()
                 if ln.startswith(f"{cluster}::") and "::health_flags::" in ln), "")


async def last_event(stub: pb_grpc.InferenceServiceStub, i: int, started: asyncio.Event) -> pb.GenerateResponse:
    last = None
    request = pb.GenerateRequest(prompt=f"story {i}", options=common_pb2.GenerationOptions(max_tokens=TOKENS))
    async for ev in stub.Generate(request, timeout=60):
        started.set()
        last = ev
    assert last is not None
    return last


def stop_with_ctrl_c(proc: subprocess.Popen[str], err_text: str) -> int:
    os.killpg(proc.pid, signal.SIGINT)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"scripts/up still running 30 s after SIGINT:\n{err_text}")


def assert_nothing_left(children: dict[int, list[str]], state: Path) -> None:
    survivors = {pid: argv for pid, argv in children.items() if cmdline(pid) == argv}
    assert not survivors, survivors
    assert not processes_where(lambda argv: any(str(state) in a for a in argv))


async def test_a_killed_simulator_comes_back_while_its_streams_finish_on_the_other(tmp_path: Path) -> None:
    up = up_command(tmp_path, sims=2, env=SERVICE_ENV)
    urls = {name: f"http://127.0.0.1:{up.ports['backend'] + i}" for i, name in enumerate(("sim1", "sim2"))}
    with scripts_up(up.argv, up.env) as (proc, out, err):
        wait_for_banner(proc, out, err)
        before = sim_pids(proc.pid)
        assert set(before) == {"sim1", "sim2"}, before
        async with httpx.AsyncClient() as http:
            for url in urls.values():  # ~0.8 s per stream: all in flight when sim2 dies
                (await http.put(f"{url}/_sim/faults", json={"spec": "token_delay_ms=25"})).raise_for_status()

        async with grpc.aio.insecure_channel(f"127.0.0.1:{up.ports['ingress']}") as channel:
            stub = pb_grpc.InferenceServiceStub(channel)
            started = [asyncio.Event() for _ in range(STREAMS)]
            tasks = [asyncio.create_task(last_event(stub, i, started[i])) for i in range(STREAMS)]
            await asyncio.wait_for(asyncio.gather(*(s.wait() for s in started)), 30)
            os.kill(before["sim2"], signal.SIGKILL)
            results = await asyncio.wait_for(asyncio.gather(*tasks), 90)

        # Every stream finished, those on sim2 continued on sim1.
        assert [r.WhichOneof("event") for r in results] == ["done"] * STREAMS, [r.error for r in results]
        assert all(r.done.output_tokens == TOKENS for r in results)
        moved = [r.done for r in results if r.done.failed_over]
        assert moved and all(list(d.backends) == ["sim2", "sim1"] for d in moved)

        # The launcher restarted it on its port, and said so.
        wait_until(lambda: "simulator-sim2 is back" in err.text, 30, "the launcher reporting sim2 back")
        after = sim_pids(proc.pid)
        assert after["sim1"] == before["sim1"] and after["sim2"] != before["sim2"], (before, after)
        said = [ln for ln in err.lines if ln.startswith("llmmesh: ")]
        assert said == ["llmmesh: restarting simulator-sim2 (exited with -9), attempt 1 in 0.5 s\n",
                        f"llmmesh: simulator-sim2 is back (pid {after['sim2']}, restart 1)\n"], err.text
        launcher_log = (up.state / "logs" / "launcher.log").read_text()
        assert re.search(r"\d{2}:\d{2}:\d{2} llmmesh: restarting simulator-sim2 \(exited with -9\)", launcher_log)
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{urls['sim2']}/api/tags", timeout=5)).status_code == 200

        # Envoy's egress health checks pass again, and the inference service sends it work.
        admin = up.ports["admin"]
        wait_until(lambda: health_flags(admin, "backend_sim2") == "healthy", 20, "egress: backend_sim2 healthy")
        async with grpc.aio.insecure_channel(f"127.0.0.1:{up.ports['ingress']}") as channel:
            stub = pb_grpc.InferenceServiceStub(channel)

            async def sim2_serves() -> bool:
                done = await asyncio.gather(*(last_event(stub, i, asyncio.Event()) for i in range(8)))
                return any(r.done.backend == "sim2" for r in done)

            for _ in range(40):
                if await sim2_serves():
                    break
                await asyncio.sleep(0.25)
            else:
                pytest.fail("the restarted sim2 never served again")

        assert proc.poll() is None, err.text  # the mesh stayed up throughout
        children = descendants(proc.pid)
        assert stop_with_ctrl_c(proc, err.text) == 0, err.text
    assert_nothing_left(children, up.state)


@pytest.mark.parametrize("ctrl_c", [False, True], ids=["gives-up", "ctrl-c-during-backoff"])
def test_an_envoy_that_cannot_start_is_retried_then_given_up(tmp_path: Path, ctrl_c: bool) -> None:
    up = up_command(tmp_path)
    config = up.state / "envoy.yaml"
    with scripts_up(up.argv, up.env) as (proc, out, err):
        wait_for_banner(proc, out, err)
        children = descendants(proc.pid)
        envoy = next(pid for pid, argv in children.items() if str(config) in argv)
        config.write_text("static_resources: {listeners: [{name: ingress}]}\n")  # no address: Envoy refuses it
        os.kill(envoy, signal.SIGKILL)

        if ctrl_c:
            # Ctrl-C while the launcher waits out a backoff: everything stops, nothing restarts.
            wait_until(lambda: "attempt 3 in 2.0 s" in err.text, 30, "the third restart's backoff")
            assert stop_with_ctrl_c(proc, err.text) == 0, err.text
            after_ctrl_c = err.text.split("llmmesh: stopping", 1)
            assert len(after_ctrl_c) == 2 and "restarting" not in after_ctrl_c[1], err.text
        else:
            try:
                code = proc.wait(60)
            except subprocess.TimeoutExpired:
                pytest.fail(f"scripts/up did not give up on Envoy:\n{err.text}")
            assert code == 1, err.text
            said = [ln for ln in err.lines if ln.startswith("llmmesh: ")]
            assert said[:4] == ["llmmesh: restarting envoy (exited with -9), attempt 1 in 0.5 s\n",
                                "llmmesh: restarting envoy (exited with 1), attempt 2 in 1.0 s\n",
                                "llmmesh: restarting envoy (exited with 1), attempt 3 in 2.0 s\n",
                                "llmmesh: restarting envoy (exited with 1), attempt 4 in 4.0 s\n"], err.text
            verdict = err.text[err.text.index("llmmesh: giving up on envoy"):]
            assert verdict.startswith("llmmesh: giving up on envoy: exited with 1, 5 times in a row within 10 s "
                                      "of starting; the mesh cannot run without it, stopping everything. "
                                      f"Its last run's last lines in {up.state / 'logs' / 'envoy.log'}:\n"), verdict
            # Why, in Envoy's own words, from its last run's log.
            assert "error adding listener named 'ingress': address is necessary" in verdict, verdict
            assert "--- llmmesh: restart" not in verdict, verdict
    assert_nothing_left(children, up.state)
