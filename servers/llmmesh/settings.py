"""Typed, frozen settings built once from the environment and passed down explicitly.

Every knob has one environment variable and one default: the dataclass field's, which `from_env`
falls back to (the README's configuration table restates them; tests/docs/test_settings_defaults.py
holds the two together). Parsing fails loudly with the variable's name, so a typo in a deployment
shows up at start-up, not as odd behaviour later.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from llmmesh.topology.description import GATEWAY, MONOLITH_METRICS_PORT, MONOLITH_PORT, SERVICES


class SettingsError(ValueError):
    pass


# Read by the services and the gateway alike: one variable, one default.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_GRACE_PERIOD_S = 30.0
DEFAULT_LOG_LEVEL = "INFO"


def _get(env: Mapping[str, str], name: str, default: str) -> str:
    return env.get(name, default).strip()


def _parse_int(name: str, raw: str, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise SettingsError(f"{name}={value} must be >= {minimum}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    return _parse_int(name, _get(env, name, str(default)), minimum)


def _port_or_off(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    """A port; `off` (or an empty value) is None."""
    raw = _get(env, name, "off" if default is None else str(default))
    return None if raw in ("", "off") else _parse_int(name, raw, 0)


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = _get(env, name, str(default))
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise SettingsError(f"{name}={value} must be >= {minimum}")
    return value


def _list(env: Mapping[str, str], name: str, default: str = "") -> tuple[str, ...]:
    return tuple(tok.strip() for tok in _get(env, name, default).split(",") if tok.strip())


def _pairs(env: Mapping[str, str], name: str) -> tuple[tuple[str, str], ...]:
    """`a=b,c=d` → (("a", "b"), ("c", "d"))."""
    out = []
    for tok in _list(env, name):
        key, sep, value = tok.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise SettingsError(f"{name}: {tok!r} is not of the form name=value")
        out.append((key.strip(), value.strip()))
    return tuple(out)


@dataclass(frozen=True)
class InferenceSettings:
    # Backend URLs: `http://host:11434` (Ollama), `http://host:8081#openai`, optionally
    # `name=url` and `…#ollama;models=a|b` (see llmmesh.common.backends).
    backends: tuple[str, ...] = ()
    # When set, every backend call goes through this Envoy egress URL; the chosen backend is
    # pinned with the `x-llmmesh-backend` header.
    egress_url: str = ""
    # `alias=model` pairs, e.g. fast=smollm2:135m.
    aliases: tuple[tuple[str, str], ...] = ()
    default_model: str = ""
    # A stream that gets no chunk for this long counts as a failed backend.
    idle_timeout_s: float = 30.0
    connect_timeout_s: float = 2.0
    # Attempts across backends before giving up, and the base backoff between them.
    max_attempts: int = 3
    backoff_s: float = 0.05
    # Concurrent generations allowed per backend; beyond it requests get RESOURCE_EXHAUSTED.
    max_inflight_per_backend: int = 64
    # Consecutive failures that open a backend's circuit, and how long it stays open.
    breaker_failures: int = 3
    breaker_open_s: float = 5.0
    # How often each backend's health and models are probed again. Behind the egress, a backend
    # Envoy's health checks ejected answers 503 to the probe, so no Envoy admin URL is needed.
    inventory_refresh_s: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> InferenceSettings:
        d = cls()
        return cls(
            backends=_list(env, "LLMMESH_BACKENDS"),
            egress_url=_get(env, "LLMMESH_EGRESS_URL", d.egress_url),
            aliases=_pairs(env, "LLMMESH_MODEL_ALIASES"),
            default_model=_get(env, "LLMMESH_DEFAULT_MODEL", d.default_model),
            idle_timeout_s=_float(env, "LLMMESH_IDLE_TIMEOUT_S", d.idle_timeout_s, minimum=0.01),
            connect_timeout_s=_float(env, "LLMMESH_CONNECT_TIMEOUT_S", d.connect_timeout_s, minimum=0.01),
            max_attempts=_int(env, "LLMMESH_MAX_ATTEMPTS", d.max_attempts, minimum=1),
            backoff_s=_float(env, "LLMMESH_BACKOFF_S", d.backoff_s),
            max_inflight_per_backend=_int(env, "LLMMESH_MAX_INFLIGHT_PER_BACKEND", d.max_inflight_per_backend,
                                          minimum=1),
            breaker_failures=_int(env, "LLMMESH_BREAKER_FAILURES", d.breaker_failures, minimum=1),
            breaker_open_s=_float(env, "LLMMESH_BREAKER_OPEN_S", d.breaker_open_s),
            inventory_refresh_s=_float(env, "LLMMESH_INVENTORY_REFRESH_S", d.inventory_refresh_s, minimum=0.1),
        )


@dataclass(frozen=True)
class PatternLimits:
    """Server maximums for pattern runs; requests may ask for less, never more."""

    max_panel: int = 12
    max_rounds: int = 8
    max_steps: int = 12
    max_plan_steps: int = 16
    max_replans: int = 3
    max_agents: int = 8
    max_output_tokens: int = 1024
    max_text_chars: int = 100_000
    # Structured-output attempts before a malformed model answer is reported as an error.
    json_attempts: int = 3
    tool_timeout_s: float = 10.0
    tool_output_chars: int = 16_000
    # Hosts the http_get tool may fetch from; empty disables it.
    http_tool_allow: tuple[str, ...] = ()
    # gRPC servers whose methods become tools (discovered through server reflection).
    grpc_tool_targets: tuple[str, ...] = ()
    # Seconds a stream waits for a human (plan approval, a human turn) before failing.
    human_timeout_s: float = 300.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PatternLimits:
        d = cls()
        return cls(
            max_panel=_int(env, "LLMMESH_MAX_PANEL", d.max_panel, minimum=1),
            max_rounds=_int(env, "LLMMESH_MAX_ROUNDS", d.max_rounds, minimum=1),
            max_steps=_int(env, "LLMMESH_MAX_STEPS", d.max_steps, minimum=1),
            max_plan_steps=_int(env, "LLMMESH_MAX_PLAN_STEPS", d.max_plan_steps, minimum=1),
            max_replans=_int(env, "LLMMESH_MAX_REPLANS", d.max_replans),
            max_agents=_int(env, "LLMMESH_MAX_AGENTS", d.max_agents, minimum=1),
            max_output_tokens=_int(env, "LLMMESH_MAX_OUTPUT_TOKENS", d.max_output_tokens, minimum=1),
            max_text_chars=_int(env, "LLMMESH_MAX_TEXT_CHARS", d.max_text_chars, minimum=1),
            json_attempts=_int(env, "LLMMESH_JSON_ATTEMPTS", d.json_attempts, minimum=1),
            tool_timeout_s=_float(env, "LLMMESH_TOOL_TIMEOUT_S", d.tool_timeout_s, minimum=0.01),
            tool_output_chars=_int(env, "LLMMESH_TOOL_OUTPUT_CHARS", d.tool_output_chars, minimum=1),
            http_tool_allow=_list(env, "LLMMESH_HTTP_TOOL_ALLOW"),
            grpc_tool_targets=_list(env, "LLMMESH_GRPC_TOOL_TARGETS"),
            human_timeout_s=_float(env, "LLMMESH_HUMAN_TIMEOUT_S", d.human_timeout_s, minimum=0.01),
        )


@dataclass(frozen=True)
class AuthSettings:
    # Path of the API key file (hashed keys with scopes and quotas). Empty disables authentication.
    api_keys_file: str = ""
    # File holding the mesh's internal service key (plain text, one line): pattern services present
    # it to inference, naming the caller they act for. Every process of one mesh uses the same.
    service_key_file: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AuthSettings:
        d = cls()
        return cls(api_keys_file=_get(env, "LLMMESH_API_KEYS_FILE", d.api_keys_file),
                   service_key_file=_get(env, "LLMMESH_SERVICE_KEY_FILE", d.service_key_file))


@dataclass(frozen=True)
class ServiceTlsSettings:
    """Mutual TLS between Envoy and the services (and between the services themselves).

    All three files or none: a service with them serves TLS only and requires a client
    certificate signed by `ca_file`; it presents its own certificate as a client when it calls
    another service (pattern → inference, gateway → inference). The certificate must name the
    host or IP the services are dialled by.
    """

    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.cert_file)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ServiceTlsSettings:
        names = ("LLMMESH_TLS_CERT", "LLMMESH_TLS_KEY", "LLMMESH_TLS_CA")
        values = [_get(env, n, "") for n in names]
        if any(values) and not all(values):
            missing = [n for n, v in zip(names, values, strict=True) if not v]
            raise SettingsError(f"mutual TLS needs {', '.join(names)} together; missing {', '.join(missing)}")
        return cls(*values)


@dataclass(frozen=True)
class Settings:
    # Services hosted by this process: every one is the monolith, one is a microservice.
    services: tuple[str, ...] = tuple(s.name for s in SERVICES)
    host: str = DEFAULT_HOST
    # 0 picks a free port (tests).
    port: int = MONOLITH_PORT
    # None disables the Prometheus endpoint; 0 picks a free port.
    metrics_port: int | None = MONOLITH_METRICS_PORT
    # Where pattern services reach the inference service. Empty: this process's own port.
    inference_target: str = ""
    # After SIGTERM: report NOT_SERVING for this long (so Envoy's health checks route away),
    # then stop accepting and give in-flight RPCs up to grace_period_s to finish.
    drain_delay_s: float = 2.0
    grace_period_s: float = DEFAULT_GRACE_PERIOD_S
    max_message_bytes: int = 4 * 1024 * 1024
    log_level: str = DEFAULT_LOG_LEVEL
    inference: InferenceSettings = field(default_factory=InferenceSettings)
    limits: PatternLimits = field(default_factory=PatternLimits)
    auth: AuthSettings = field(default_factory=AuthSettings)
    tls: ServiceTlsSettings = field(default_factory=ServiceTlsSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        d = cls()
        known = {s.name for s in SERVICES}
        # `all` is the spelling of the default: every service, in topology order.
        services = _list(env, "LLMMESH_SERVICES", "all")
        if services == ("all",):
            services = d.services
        unknown = sorted(set(services) - known)
        if unknown:
            raise SettingsError(f"LLMMESH_SERVICES: unknown {unknown}; known: {sorted(known)}")
        return cls(
            services=services,
            host=_get(env, "LLMMESH_HOST", d.host),
            port=_int(env, "LLMMESH_PORT", d.port),
            metrics_port=_port_or_off(env, "LLMMESH_METRICS_PORT", d.metrics_port),
            inference_target=_get(env, "LLMMESH_INFERENCE_TARGET", d.inference_target),
            drain_delay_s=_float(env, "LLMMESH_DRAIN_DELAY_S", d.drain_delay_s),
            grace_period_s=_float(env, "LLMMESH_GRACE_PERIOD_S", d.grace_period_s),
            max_message_bytes=_int(env, "LLMMESH_MAX_MESSAGE_BYTES", d.max_message_bytes, minimum=1024),
            log_level=_get(env, "LLMMESH_LOG_LEVEL", d.log_level).upper(),
            inference=InferenceSettings.from_env(env),
            limits=PatternLimits.from_env(env),
            auth=AuthSettings.from_env(env),
            tls=ServiceTlsSettings.from_env(env),
        )


@dataclass(frozen=True)
class GatewaySettings:
    """The HTTP gateway (`llmmesh-gateway`): OpenAI-compatible API and the browser playground, over
    the inference service's gRPC contract. It serves `/healthz` and Prometheus `/metrics` on its
    own port; the ingress routes only /v1/ and /playground to it."""

    host: str = DEFAULT_HOST
    # 0 picks a free port (tests).
    port: int = GATEWAY.port
    # The inference service (host:port, gRPC).
    inference_target: str = f"{DEFAULT_HOST}:{MONOLITH_PORT}"
    # Base URL of the mesh's REST API as the playground page calls it. Empty: the page's own
    # origin (it is served through the ingress), so relative URLs work.
    playground_api_url: str = ""
    # Upper bound of one model call; a request's `x-llmmesh-timeout-s` header may only lower it.
    timeout_s: float = 600.0
    # After SIGTERM: stop accepting, then give in-flight requests (streams) this long.
    grace_period_s: float = DEFAULT_GRACE_PERIOD_S
    max_body_bytes: int = 16 * 1024 * 1024
    log_level: str = DEFAULT_LOG_LEVEL
    # Mutual TLS: served to Envoy, presented to the inference service (LLMMESH_TLS_*).
    tls: ServiceTlsSettings = field(default_factory=ServiceTlsSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GatewaySettings:
        env = os.environ if env is None else env
        d = cls()
        return cls(
            host=_get(env, "LLMMESH_HOST", d.host),
            port=_int(env, "LLMMESH_GATEWAY_PORT", d.port),
            inference_target=_get(env, "LLMMESH_INFERENCE_TARGET", "") or d.inference_target,
            playground_api_url=_get(env, "LLMMESH_PLAYGROUND_API_URL", d.playground_api_url).rstrip("/"),
            timeout_s=_float(env, "LLMMESH_GATEWAY_TIMEOUT_S", d.timeout_s, minimum=0.01),
            grace_period_s=_float(env, "LLMMESH_GRACE_PERIOD_S", d.grace_period_s),
            max_body_bytes=_int(env, "LLMMESH_GATEWAY_MAX_BODY_BYTES", d.max_body_bytes, minimum=1024),
            log_level=_get(env, "LLMMESH_LOG_LEVEL", d.log_level).upper(),
            tls=ServiceTlsSettings.from_env(env),
        )
