"""Mid-stream failover on real llama.cpp servers: two `llama-server`s with SmolLM2, the one serving a
generation SIGKILLed once some tokens are out. llama.cpp echoes a trailing assistant message back
(its first delta repeats the whole prefix), so without the echo stripped the client would read the
delivered text twice. The mesh learns that from /v1/models (`owned_by: llamacpp`) and strips it: the
text has no repeated span that the uninterrupted answer lacks, and reads on from where it stopped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry

from llmmesh.common.backends import Continuation
from llmmesh.common.model_call import Finished, ModelCall, Sampling, TextDelta
from llmmesh.inference.engine import InferenceEngine
from llmmesh.inference.metrics import InferenceMetrics
from llmmesh.launcher.backend_choice import SMOLLM2_MODEL, llama_server_binary, smollm2_path
from llmmesh.settings import InferenceSettings
from tests.support.ports import free_port

pytestmark = [pytest.mark.realmodel, pytest.mark.xdist_group("realmodel")]

PROMPT = "Tell me about Paris."
MAX_TOKENS = 48
KILL_AFTER = 8  # deltas delivered before the serving server dies
WINDOW = 8  # words: a span this long seen twice is a repeat


def _llama(port: int) -> subprocess.Popen:
    # Small and single-slot: two of them share the machine with the rest of the suite.
    argv = [str(llama_server_binary()), "-m", str(smollm2_path()), "--host", "127.0.0.1", "--port", str(port),
            "--alias", SMOLLM2_MODEL, "--ctx-size", "2048", "--parallel", "1", "--threads", "1", "--jinja",
            "--no-repack"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def llamas() -> Iterator[dict[str, tuple[subprocess.Popen, int]]]:
    servers = {name: (_llama(port), port) for name, port in (("l1", free_port()), ("l2", free_port()))}
    try:
        for proc, port in servers.values():
            with httpx.Client(timeout=2.0, trust_env=False) as http:
                for _ in range(600):
                    if proc.poll() is not None:
                        raise RuntimeError(f"llama-server exited ({proc.returncode})")
                    try:
                        if http.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    time.sleep(0.2)
                else:
                    raise TimeoutError("llama-server did not load SmolLM2")
        yield servers
    finally:
        for proc, _ in servers.values():
            proc.kill()
            proc.wait(timeout=10)


def _words(text: str) -> list[str]:
    return text.split()


def _repeats(text: str) -> set[tuple[str, ...]]:
    words = _words(text)
    seen: set[tuple[str, ...]] = set()
    twice: set[tuple[str, ...]] = set()
    for i in range(len(words) - WINDOW + 1):
        span = tuple(words[i:i + WINDOW])
        (twice if span in seen else seen).add(span)
    return twice


async def test_a_generation_survives_its_llama_server_being_killed_without_repeating_itself(llamas) -> None:
    specs = tuple(f"{name}=http://127.0.0.1:{port}#openai" for name, (_, port) in llamas.items())
    settings = dataclasses.replace(InferenceSettings(), backends=specs, backoff_s=0.01, idle_timeout_s=20.0)
    engine = InferenceEngine(settings, InferenceMetrics.create(CollectorRegistry()))
    call = ModelCall(SMOLLM2_MODEL, messages=(), prompt=PROMPT,
                     sampling=Sampling(temperature=0.0, seed=7, max_tokens=MAX_TOKENS))
    try:
        await engine.start()
        assert {b.protocol.continuation for b in engine.pool.backends} == {Continuation.ECHO}
        reference = "".join([e.text async for e in engine.generate(call) if isinstance(e, TextDelta)])
        deltas: list[str] = []
        killed = ""
        done = None
        async for event in engine.generate(call):
            if isinstance(event, TextDelta):
                deltas.append(event.text)
                if len(deltas) == KILL_AFTER:
                    killed = next(b.name for b in engine.pool.backends if b.in_flight)
                    llamas[killed][0].kill()
                    await asyncio.sleep(0)
            elif isinstance(event, Finished):
                done = event.stats
    finally:
        await engine.close()
    text = "".join(deltas)
    cut = "".join(deltas[:KILL_AFTER])
    print(f"reference: {reference!r}\ncontinued: {text!r} (killed {killed} after {cut!r})")
    assert done is not None and done.failed_over and done.backends[0] == killed and done.backend != killed
    assert not _repeats(text) - _repeats(reference), f"repeated spans: {_repeats(text) - _repeats(reference)}"
    # It reads on: the answer is not begun again after the cut, and goes on well past it.
    opening = " ".join(_words(reference)[:4])
    assert text.startswith(cut) and opening not in text[len(cut):]
    assert len(_words(text)) > len(_words(cut)) + 10
