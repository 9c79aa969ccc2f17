"""What the inference service learns about each model (context window, native tool calling) from
its backends and their configuration, and shows in ListModels."""

from __future__ import annotations

import pytest

from llmmesh.common.backends import parse_backend
from llmmesh.inference import capabilities
from llmmesh.inference.capabilities import Capabilities
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.simulator.config import SimulatorConfig
from tests.support.sims import eventually


def test_backend_options_state_the_window_tool_calling_and_slots() -> None:
    cfg = parse_backend("vllm=http://gpu:8000#openai;models=a|b;ctx=32768;tools=native;slots=16")
    assert (cfg.models, cfg.context_window, cfg.native_tools, cfg.slots) == (("a", "b"), 32768, True, 16)
    cfg = parse_backend("http://h:11434; tools = prompted")
    assert (cfg.context_window, cfg.native_tools, cfg.slots) == (0, False, 0)
    for bad in ("http://h:1;ctx=big", "http://h:1;ctx=100", "http://h:1;tools=maybe", "http://h:1;gpu=1",
                "http://h:1;slots=0", "http://h:1;slots=many"):
        with pytest.raises(ValueError):
            parse_backend(bad)


def test_ollama_show_gives_the_window_ollama_runs_with_and_the_tools_capability() -> None:
    llama31 = {"model_info": {"general.architecture": "llama", "llama.context_length": 131072},
               "capabilities": ["completion", "tools"]}
    assert capabilities.ollama_show(llama31) == Capabilities(capabilities.OLLAMA_DEFAULT_NUM_CTX, True)
    gemma = {"model_info": {"general.architecture": "gemma2", "gemma2.context_length": 2048},
             "capabilities": ["completion"]}
    assert capabilities.ollama_show(gemma) == Capabilities(2048, False)
    old = {"model_info": {"general.architecture": "llama"}}  # before Ollama listed capabilities
    assert capabilities.ollama_show(old) == Capabilities(capabilities.OLLAMA_DEFAULT_NUM_CTX, None)
    ps = {"models": [{"name": "llama3.1:8b", "context_length": 8192}, {"name": "old:1b"}]}
    assert capabilities.ollama_loaded_windows(ps) == {"llama3.1:8b": 8192}


def test_llama_cpp_props_give_the_per_slot_window_and_the_templates_tool_support() -> None:
    smollm2 = {"default_generation_settings": {"n_ctx": 4096}, "total_slots": 4,
               "chat_template_caps": {"supports_tools": False, "supports_tool_calls": False}}
    assert capabilities.llama_props(smollm2) == Capabilities(4096, False)
    older = {"default_generation_settings": {"n_ctx": 8192},
             "chat_template": "{% if tools %}{{ tools | tojson }}{% endif %}"}
    assert capabilities.llama_props(older) == Capabilities(8192, True)
    models = {"data": [{"id": "qwen", "max_model_len": 32768}, {"id": "smol", "meta": {"n_ctx": 2048}}, {"id": "x"}]}
    assert capabilities.openai_windows(models) == {"qwen": 32768, "smol": 2048}


def test_a_model_on_several_backends_gets_the_smallest_window_and_tools_only_if_all_have_them() -> None:
    merged = capabilities.merge([Capabilities(8192, True), Capabilities(4096, True), Capabilities(0, True)])
    assert merged == Capabilities(4096, True)
    assert capabilities.merge([Capabilities(8192, True), Capabilities(8192, False)]).native_tools is False
    assert capabilities.merge([Capabilities(8192, True), Capabilities()]).native_tools is None
    assert Capabilities(4096, None).overridden(2048, True) == Capabilities(2048, True)
    assert Capabilities(4096, True).overridden(0, None) == Capabilities(4096, True)


def listed(resp: pb.ListModelsResponse) -> dict[str, tuple[int, bool]]:
    return {m.name: (m.context_window, m.native_tools) for m in resp.models}


async def test_list_models_shows_each_models_window_and_native_tools(inference_mesh) -> None:
    ollama = SimulatorConfig(name="a", models=("big", "notools"), no_tools=("notools",), context_length=8192,
                             preload=("big",))
    configured = SimulatorConfig(name="b", models=("tiny",))
    openai = SimulatorConfig(name="oai", models=("remote",))
    async with inference_mesh(ollama, configured, openai, backend_options={"b": ";ctx=2048;tools=prompted"}) as m:
        models = listed(await m.stub.ListModels(pb.ListModelsRequest(), timeout=10))
    # A loaded model runs with its num_ctx (/api/ps); one not loaded yet gets Ollama's default.
    assert models["big:latest"] == (8192, True)
    assert models["notools:latest"] == (capabilities.OLLAMA_DEFAULT_NUM_CTX, False)
    assert models["tiny:latest"] == (2048, False)  # the configuration wins over /api/show
    assert models["remote:latest"] == (0, False)  # an OpenAI server that tells nothing: unknown, prompted


async def test_a_refused_chat_with_tools_turns_native_tools_off(inference_mesh) -> None:
    sim = SimulatorConfig(name="a", models=("m",), no_tools=("m",))
    async with inference_mesh(sim, backend_options={"a": ";tools=native"}) as m:
        assert listed(await m.stub.ListModels(pb.ListModelsRequest(), timeout=10))["m:latest"][1] is True
        turn = pb.ChatTurn(model="m", messages=[pb.Message(role=pb.ROLE_USER, content="hi")],
                           tools=[pb.Tool(name="clock", description="time")])
        events = [e async for e in m.stub.Chat(iter([pb.ChatRequest(turn=turn)]), timeout=10)]
        assert events[-1].WhichOneof("event") == "error"
        assert "does not support tools" in events[-1].error.message

        async def refused() -> bool:
            resp = await m.stub.ListModels(pb.ListModelsRequest(), timeout=10)
            return listed(resp)["m:latest"][1] is False
        assert await eventually(refused, timeout_s=5)
