"""Real providers' shapes through the real Envoy egress: an OpenAI API under a path prefix that needs
a key, Anthropic's Messages API with its key, an HTTPS backend behind a private CA (the egress
originates TLS, checks the certificate and its name), and the demo: an OpenAI-shaped backend failing
mid-answer and the Anthropic-shaped one finishing it. The inference engine talks plain HTTP to the
egress; keys travel in its request headers and never into Envoy's config."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from llmmesh.common.model_call import Finished, ModelCall, TextDelta
from llmmesh.inference.engine import InferenceEngine
from llmmesh.inference.metrics import InferenceMetrics
from llmmesh.settings import InferenceSettings
from llmmesh.simulator.app import create_app
from llmmesh.simulator.config import ScriptRule, SimulatorConfig
from llmmesh.simulator.runner import server_tls, start_simulator
from llmmesh.topology.description import Shape
from llmmesh.topology.params import Backend
from llmmesh.topology.presets import local_params
from llmmesh.topology.render import render_yaml
from tests.support.certs import make_certificates, other_ca_certificates
from tests.support.envoy_proc import EnvoyProcess, start_envoy
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e

KEYS = {"OAI_KEY": "sk-oai-egress-1", "ANT_KEY": "sk-ant-egress-2"}
PROMPT = "Tell me about Paris"
RESPONSE = ("Paris, the capital of France, is famous for its museums, its food and the river Seine that runs "
            "through it from east to west.")
RULE = ScriptRule(match=PROMPT, response=RESPONSE)


@dataclass
class Providers:
    envoy: EnvoyProcess
    config_text: str
    engine: InferenceEngine
    oai_url: str  # the simulator's own routes (its control API too) sit under its prefix


async def _under(prefix: str, config: SimulatorConfig) -> tuple[web.AppRunner, int]:
    """A simulator whose API sits under `prefix`, as behind a path-routing proxy."""
    proxy = web.Application()
    proxy.add_subapp(prefix, create_app(config))
    runner = web.AppRunner(proxy)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, runner.addresses[0][1]


@pytest.fixture
async def providers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Providers]:
    for name, key in KEYS.items():
        monkeypatch.setenv(name, key)
    certs, strangers = make_certificates(tmp_path / "certs"), other_ca_certificates(tmp_path / "other")
    proxied_runner, proxied_port = await _under("/engines", SimulatorConfig(
        name="oai", models=("m",), scripts=(RULE,), api_key=KEYS["OAI_KEY"], continuation="echo"))
    claude = await start_simulator(SimulatorConfig(name="claude", models=("m",), scripts=(RULE,),
                                                   api_key=KEYS["ANT_KEY"], continuation="continue"))
    tls = await start_simulator(SimulatorConfig(name="tls", models=("secure",)),
                                ssl_context=server_tls(str(certs.path("server.pem")), str(certs.path("server.key"))))
    ollama_runner, ollama_port = await _under("/ollama", SimulatorConfig(name="local", models=("local",)))
    specs = (
        f"oai=http://127.0.0.1:{proxied_port}/engines/v1#openai;api_key_env=OAI_KEY",
        f"claude=http://127.0.0.1:{claude.port}#anthropic;api_key_env=ANT_KEY",
        f"tls=https://localhost:{tls.port}#openai;ca_file={certs.path('ca.pem')}",
        f"untrusted=https://localhost:{tls.port}#openai;ca_file={strangers.path('ca.pem')};models=secure",
        f"local=http://127.0.0.1:{ollama_port}/ollama",
    )
    egress_port = free_port()
    params = local_params(Shape.MONOLITH, [Backend.parse(s) for s in specs], monolith_port=free_port(),
                          ingress_port=free_port(), admin_port=free_port(), egress_port=egress_port, gateway_port=None)
    config_text = render_yaml(params)
    (tmp_path / "envoy.yaml").write_text(config_text)
    envoy = await asyncio.to_thread(start_envoy, tmp_path / "envoy.yaml", log_dir=tmp_path)
    settings = dataclasses.replace(InferenceSettings(), backends=specs, egress_url=f"http://127.0.0.1:{egress_port}",
                                   backoff_s=0.01, inventory_refresh_s=0.5)
    engine = InferenceEngine(settings, InferenceMetrics.create(CollectorRegistry()))
    try:
        await asyncio.to_thread(envoy.wait_healthy, "backend_oai", "backend_claude", "backend_tls", "backend_local")
        await engine.start()
        yield Providers(envoy, config_text, engine, f"http://127.0.0.1:{proxied_port}/engines")
    finally:
        await engine.close()
        envoy.stop()
        print(f"envoy log tail:\n{envoy.logs()}")
        for runner in (proxied_runner, ollama_runner):
            await runner.cleanup()
        for sim in (claude, tls):
            await sim.stop()


async def generate(engine: InferenceEngine, model: str, prompt: str = PROMPT) -> tuple[str, Finished]:
    events = [e async for e in engine.generate(ModelCall(model, prompt=prompt))]
    assert isinstance(events[-1], Finished)
    return "".join(e.text for e in events if isinstance(e, TextDelta)), events[-1]


async def test_every_provider_answers_through_the_egress(providers: Providers) -> None:
    engine = providers.engine
    healthy = {b.name for b in engine.pool.backends if b.healthy}
    # The inventory probes carried the keys (401 otherwise) and the paths under each API base.
    assert healthy == {"oai", "claude", "tls", "local"}, [(b.name, b.last_error) for b in engine.pool.backends]
    served = set()
    for _ in range(4):
        text, done = await generate(engine, "m")
        assert text == RESPONSE
        served.add(done.stats.backend)
    assert served == {"oai", "claude"}
    assert len((await generate(engine, "secure", "hi"))[0].split()) == 32
    assert (await generate(engine, "local", "hi"))[1].stats.backend == "local"


async def test_tls_is_verified_and_keys_stay_out_of_envoy(providers: Providers) -> None:
    envoy = providers.envoy
    # The same HTTPS server, verified against a CA that did not sign it: Envoy refuses it.
    envoy.wait_for("untrusted backend failing its checks",
                   lambda: "failed_active_hc" in "".join(envoy.health_flags("backend_untrusted").values()))
    stats = dict(line.split(": ", 1) for line in envoy.admin("/stats?filter=ssl").splitlines() if ": " in line)
    assert int(stats["cluster.backend_untrusted.ssl.fail_verify_error"]) > 0
    assert int(stats["cluster.backend_tls.ssl.handshake"]) > 0
    untrusted = next(b for b in providers.engine.pool.backends if b.name == "untrusted")
    assert not untrusted.healthy
    # Keyed backends are checked by TCP: the config holds no key (the services' headers carry it).
    for key in KEYS.values():
        assert key not in providers.config_text
    assert providers.config_text.count("tcp_health_check") == 2
    assert "sni: localhost" in providers.config_text and "host_rewrite_literal: localhost:" in providers.config_text


async def test_demo_an_openai_backend_fails_mid_answer_and_anthropic_finishes_it(providers: Providers) -> None:
    async with httpx.AsyncClient() as http:
        (await http.put(f"{providers.oai_url}/_sim/faults", json={"spec": "drop_after=4,times=1"})).raise_for_status()
    runs = [await generate(providers.engine, "m") for _ in range(2)]
    [(text, done)] = [(t, d) for t, d in runs if d.stats.failed_over]
    assert done.stats.backends == ("oai", "claude") and done.stats.backend == "claude"
    assert text == RESPONSE
