"""`llmmesh chat` typed at through a real terminal: streamed replies, Ctrl-C stops only the reply
(the STOP control on the open stream), the conversation goes on, Ctrl-D quits with 0."""

from __future__ import annotations

import asyncio

import httpx

from llmmesh.simulator.config import ScriptRule
from tests.clients.cli_proc import CLI, cli_env
from tests.clients.support import MODEL, sim, target
from tests.clients.terminal import Terminal
from tests.support.e2e import wait_until

STORY = "Once upon a time " + " ".join(f"w{i}" for i in range(300)) + " THE-END"
RULES = (
    # Answered only if the server kept the first turn in the stream's history.
    ScriptRule(match="regex:(?s)a long story.*hello again", response="Nice to see you again."),
    ScriptRule(match="a long story", response=STORY),
)


def converse(address: str, sim_url: str) -> tuple[int, str, str, dict]:
    term = Terminal([*CLI, "chat", "--target", address, "--model", MODEL], env=cli_env(TERM="xterm"))
    try:
        term.expect(r"Ctrl-C stops a reply")  # the banner, on stderr
        term.expect(r"you> ")
        httpx.put(f"{sim_url}/_sim/faults", json={"spec": "token_delay_ms=50"}, timeout=10).raise_for_status()

        term.type("tell me a long story\r")
        term.expect(r"Once upon a time w0 w1")  # streaming has begun
        term.type("\x03")  # Ctrl-C
        term.expect(r"\[stopped\]")
        stopped_reply = term.screen[: term.mark]
        term.expect(r"you> ")  # the session goes on
        wait_until(lambda: _cancelled(sim_url), 10, "the simulator to count the cancelled generation")

        httpx.put(f"{sim_url}/_sim/faults", json={"spec": ""}, timeout=10).raise_for_status()
        term.type("hello again\r")
        term.expect(r"Nice to see you again\.")
        term.expect(r"you> ")
        term.type("\x04")  # Ctrl-D at an empty prompt
        code = term.wait()
        stats = httpx.get(f"{sim_url}/_sim/stats", timeout=10).json()
        return code, stopped_reply, term.screen, stats
    finally:
        term.close()


def _cancelled(sim_url: str) -> bool:
    return httpx.get(f"{sim_url}/_sim/stats", timeout=10).json()["cancelled"] >= 1


async def test_ctrl_c_stops_the_reply_and_the_chat_goes_on(inference_mesh) -> None:
    async with inference_mesh(sim(*RULES)) as m:
        code, stopped_reply, screen, stats = await asyncio.wait_for(
            asyncio.to_thread(converse, target(m), m.sims[0].url), 120)
    assert code == 0, screen[-2000:]
    assert "THE-END" not in stopped_reply  # the story was cut short
    assert stats["cancelled"] == 1 and stats["completed"] == 1  # the stopped story; the second answer
    assert "Traceback" not in screen and "KeyboardInterrupt" not in screen
