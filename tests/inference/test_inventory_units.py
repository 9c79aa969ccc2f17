"""Probing a backend over a fake transport: its inventory and health, and what its models can do
(Ollama /api/show and /api/ps, llama.cpp /props, /v1/models), including backends that cannot tell."""

from __future__ import annotations

from llmmesh.common.backends import parse_backend
from llmmesh.inference.capabilities import Capabilities
from llmmesh.inference.failures import BackendFailure, ModelMissing
from llmmesh.inference.inventory import probe
from llmmesh.inference.pool import Backend, make_backend
from tests.support.fake_transport import FakeTransport

TAGS = {"models": [{"name": "llama3.1:8b"}, {"name": "smol:135m"}]}
PS = {"models": [{"name": "llama3.1:8b", "context_length": 8192}]}
SHOW = {"model_info": {"general.architecture": "llama", "llama.context_length": 131072},
        "capabilities": ["completion", "tools"]}
MODELS = {"data": [{"id": "qwen", "max_model_len": 32768}]}


def ollama() -> Backend:
    return make_backend(parse_backend("o=http://o.invalid:11434"), 3, 5.0)


def openai() -> Backend:
    return make_backend(parse_backend("l=http://l.invalid:8080#openai"), 3, 5.0)


async def test_an_ollama_backend_reports_models_loaded_ones_and_their_capabilities() -> None:
    transport = FakeTransport(docs={("o", "/api/tags"): TAGS, ("o", "/api/ps"): PS, ("o", "/api/show"): SHOW})
    backend = ollama()
    await probe(transport, backend, 1.0)
    assert backend.healthy and backend.last_error == ""
    assert (backend.models, backend.loaded) == ({"llama3.1:8b", "smol:135m"}, {"llama3.1:8b"})
    # The loaded model's window is the num_ctx it runs with; the other gets Ollama's default.
    assert backend.capabilities == {"llama3.1:8b": Capabilities(8192, True), "smol:135m": Capabilities(4096, True)}
    await probe(transport, backend, 1.0)
    assert sum(s.path == "/api/show" for s in transport.sent) == 2  # asked once per model, not per refresh


async def test_a_model_ollama_cannot_describe_stays_unknown_and_the_backend_healthy() -> None:
    def show(body):
        return SHOW if body["model"] == "smol:135m" else BackendFailure("o", "HTTP 500: boom")

    transport = FakeTransport(docs={("o", "/api/tags"): TAGS, ("o", "/api/ps"): {"models": []},
                                    ("o", "/api/show"): show})
    backend = ollama()
    await probe(transport, backend, 1.0)
    assert backend.healthy and set(backend.capabilities) == {"smol:135m"}


async def test_a_failed_or_malformed_probe_marks_the_backend_down_and_a_good_one_up_again() -> None:
    backend = ollama()
    transport = FakeTransport(docs={("o", "/api/tags"): BackendFailure("o", "HTTP 503: no healthy upstream"),
                                    ("o", "/api/ps"): PS})
    await probe(transport, backend, 1.0)
    assert not backend.healthy and "no healthy upstream" in backend.last_error
    transport.docs[("o", "/api/tags")] = {"models": [{"no name": 1}]}
    await probe(transport, backend, 1.0)
    assert not backend.healthy and backend.last_error == "malformed inventory response"
    transport.docs[("o", "/api/tags")] = {"models": [{"name": "smol:135m"}]}
    transport.docs[("o", "/api/show")] = SHOW
    backend.capabilities["gone:1b"] = Capabilities(2048, False)
    await probe(transport, backend, 1.0)
    assert backend.healthy and backend.models == {"smol:135m"} and "gone:1b" not in backend.capabilities


async def test_llama_cpp_props_give_the_window_tools_and_slots_of_every_model() -> None:
    props = {"default_generation_settings": {"n_ctx": 4096}, "chat_template_caps": {"supports_tools": True},
             "total_slots": 4}
    transport = FakeTransport(docs={("l", "/v1/models"): MODELS, ("l", "/props"): props})
    backend = openai()
    await probe(transport, backend, 1.0)
    assert backend.models == backend.loaded == {"qwen"}
    assert backend.capabilities == {"qwen": Capabilities(4096, True)}
    assert backend.slots == 4


async def test_an_openai_server_without_props_keeps_the_window_models_reports() -> None:
    transport = FakeTransport(docs={("l", "/v1/models"): MODELS, ("l", "/props"): ModelMissing("l", "not found")})
    backend = openai()
    await probe(transport, backend, 1.0)
    assert backend.capabilities == {"qwen": Capabilities(32768, None)}


async def test_props_down_for_a_moment_are_asked_again_at_the_next_refresh() -> None:
    transport = FakeTransport(docs={("l", "/v1/models"): MODELS, ("l", "/props"): BackendFailure("l", "timed out")})
    backend = openai()
    await probe(transport, backend, 1.0)
    assert backend.healthy and backend.capabilities == {}
    transport.docs[("l", "/props")] = {"default_generation_settings": {"n_ctx": 2048}}
    await probe(transport, backend, 1.0)
    assert backend.capabilities == {"qwen": Capabilities(2048, False)}


async def test_a_probe_lost_once_in_passing_is_asked_again_before_the_backend_is_marked_down() -> None:
    backend = ollama()
    answers = iter([BackendFailure("o", "HTTP 503: connection termination"), TAGS])

    def tags(_body):
        return next(answers)

    transport = FakeTransport(docs={("o", "/api/tags"): tags, ("o", "/api/ps"): PS, ("o", "/api/show"): SHOW})
    await probe(transport, backend, 1.0)
    assert backend.healthy and backend.models == {"llama3.1:8b", "smol:135m"}
    assert sum(s.path == "/api/tags" for s in transport.sent) == 2
