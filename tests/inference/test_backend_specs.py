"""Backend specs as providers need them: an API base path kept per protocol, credentials named (never
written) in the spec and loaded by the inference service, https with a custom CA, and a
continuation behaviour per protocol. Secrets never reach what is shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmmesh.common.backends import Continuation, Protocol, parse_backend
from llmmesh.common.model_call import ModelCall
from llmmesh.inference.credentials import REDACTED, load_credentials
from llmmesh.inference.pool import make_backend


@pytest.mark.parametrize(("spec", "paths"), [
    # An OpenAI-compatible base *is* the API (as the OpenAI SDK's base_url): it stands for /v1;
    # llama.cpp's /props sits beside it.
    ("http://h:8080/engines/v1#openai", {"/v1/chat/completions": "/engines/v1/chat/completions",
                                         "/v1/models": "/engines/v1/models", "/props": "/engines/props"}),
    ("http://h:8080#openai", {"/v1/chat/completions": "/v1/chat/completions", "/props": "/props"}),
    ("http://h:8080/openai/#openai", {"/v1/models": "/openai/models", "/props": "/openai/props"}),
    # Ollama's and Anthropic's APIs sit under the base.
    ("http://proxy/ollama", {"/api/chat": "/ollama/api/chat", "/api/tags": "/ollama/api/tags"}),
    ("https://gw.example/anthropic#anthropic", {"/v1/messages": "/anthropic/v1/messages"}),
])
def test_the_url_path_is_the_api_base_each_protocol_way(spec: str, paths: dict[str, str]) -> None:
    cfg = parse_backend(spec)
    assert {p: cfg.api_path(p) for p in paths} == paths
    assert cfg.health_path == cfg.api_path("/api/tags" if cfg.protocol is Protocol.OLLAMA else "/v1/models")


def test_adapters_send_every_request_under_the_base() -> None:
    backend = make_backend(parse_backend("vllm=http://h:8000/engines/v1#openai"), 3, 5.0)
    path, _ = backend.protocol.request(ModelCall("m", prompt="hi"), "")
    assert path == "/engines/v1/chat/completions"
    assert backend.protocol.inventory_paths == ("/engines/v1/models",)
    assert backend.protocol.embed_request("e", ["x"])[0] == "/engines/v1/embeddings"
    assert backend.config.shown_url == "http://h:8000/engines/v1"


def test_https_defaults_and_options() -> None:
    cfg = parse_backend("https://api.anthropic.com#anthropic;api_key_env=ANTHROPIC_API_KEY")
    assert (cfg.name, cfg.port, cfg.tls, cfg.keyed) == ("api-anthropic-com-443", 443, True, True)
    assert cfg.continuation is Continuation.CONTINUE
    cfg = parse_backend("gw=https://gw:8443/v1#openai;ca_file=/etc/llmmesh/ca.pem;continuation=flag")
    assert (cfg.ca_file, cfg.continuation, cfg.keyed) == ("/etc/llmmesh/ca.pem", Continuation.FLAG, False)
    assert parse_backend("http://h:1#openai").continuation is Continuation.AUTO
    assert parse_backend("http://h:1").continuation is Continuation.CONTINUE


@pytest.mark.parametrize(("spec", "error"), [
    ("http://user:s3cret@h:1#openai", "no credentials or query in the URL"),
    ("http://h:1/v1?key=s3cret#openai", "no credentials or query in the URL"),
    ("http://h:1#openai;api_key_env=A;api_key_file=/k", "not both"),
    ("http://h:1#openai;api_key_env=not a var", "must name an environment variable"),
    ("http://h:1#openai;ca_file=/ca.pem", "ca_file is for https://"),
    ("http://h:1#anthropic;continuation=auto", "for OpenAI-compatible servers"),
    ("http://h:1#openai;continuation=guess", "continuation must be"),
    ("http://h:1#grpc", "'ollama', 'openai' or 'anthropic'"),
])
def test_bad_specs_are_refused_without_echoing_a_secret(spec: str, error: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_backend(spec)
    assert error in str(refused.value) and "s3cret" not in str(refused.value)


def test_a_key_comes_from_the_named_variable_or_file(tmp_path: Path) -> None:
    by_env = parse_backend("o=https://api.openai.com/v1#openai;api_key_env=OPENAI_KEY")
    assert load_credentials(by_env, {"OPENAI_KEY": "sk-123\n"}).key == "sk-123"
    key_file = tmp_path / "key"
    key_file.write_text("sk-from-file\n")
    by_file = parse_backend(f"o=https://api.openai.com/v1#openai;api_key_file={key_file}")
    assert load_credentials(by_file, {}).key == "sk-from-file"
    assert load_credentials(parse_backend("http://h:1"), {}).key == ""


def test_a_missing_key_fails_at_start_naming_where_it_should_be(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="environment variable OPENAI_KEY"):
        load_credentials(parse_backend("https://h#openai;api_key_env=OPENAI_KEY"), {})
    with pytest.raises(ValueError, match="cannot read api_key_file"):
        load_credentials(parse_backend(f"https://h#openai;api_key_file={tmp_path / 'none'}"), {})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        load_credentials(parse_backend(f"https://h#openai;api_key_file={tmp_path / 'empty'}"), {})


def test_credentials_are_sent_as_each_protocol_expects_and_never_shown() -> None:
    env = {"K": "sk-secret-1"}
    openai = make_backend(parse_backend("o=https://h/v1#openai;api_key_env=K"), 3, 5.0, env=env)
    anthropic = make_backend(parse_backend("a=https://h#anthropic;api_key_env=K"), 3, 5.0, env=env)
    plain = make_backend(parse_backend("p=http://h:1#openai"), 3, 5.0, env=env)
    assert openai.protocol.headers == {"authorization": "Bearer sk-secret-1"}
    assert anthropic.protocol.headers == {"x-api-key": "sk-secret-1", "anthropic-version": "2023-06-01"}
    assert plain.protocol.headers == {}
    for backend in (openai, anthropic):
        assert "sk-secret-1" not in repr(backend) and "sk-secret-1" not in repr(backend.protocol.credentials)
        assert backend.protocol.redact("Incorrect API key provided: sk-secret-1.") == \
            f"Incorrect API key provided: {REDACTED}."
