"""Typed, frozen settings built once from the environment and passed down explicitly.

Every knob has one environment variable and one default: the dataclass field's, which `from_env`
falls back to (the README's configuration table restates them; tests/docs/test_settings_defaults.py
holds the two together). Parsing fails loudly with the variable's name, so a typo in a deployment
shows up at start-up, not as odd behaviour later.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from llmmesh import env_values as ev
from llmmesh.env_values import SettingsError as SettingsError
from llmmesh.topology.description import GATEWAY, MONOLITH_METRICS_PORT, MONOLITH_PORT, SERVICES

# Read by the services and the gateway alike: one variable, one default.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_GRACE_PERIOD_S = 30.0
DEFAULT_LOG_LEVEL = "INFO"




@dataclass(frozen=True)
class InferenceSettings:
    # Backend URLs: `http://host:11434` (Ollama), `http://host:8081#openai`,
    # `https://api.anthropic.com#anthropic;api_key_env=VAR`, optionally `name=url`, a path and
    # options (see llmmesh.common.backends and docs/providers.md).
    backends: tuple[str, ...] = ()
    # When set, every backend call goes through this Envoy egress URL; the chosen backend is
    # pinned with the `x-llmmesh-backend` header.
    egress_url: str = ""
    # `alias=model` pairs, e.g. fast=smollm2:135m, or model routes: weighted targets and fallback
    # chains, `chat=a@90|b@10;sticky`, `big=a>b` (llmmesh.inference.routes).
    aliases: tuple[tuple[str, str], ...] = ()
    default_model: str = ""
    # A stream that gets no chunk for this long counts as a failed backend.
    idle_timeout_s: float = 30.0
    connect_timeout_s: float = 2.0
    # Attempts across backends before giving up, and the base backoff between them.
    max_attempts: int = 3
    backoff_s: float = 0.05
    # Concurrent generations allowed per backend; beyond it requests wait in the admission queue.
    max_inflight_per_backend: int = 64
    # Admission queue (llmmesh.inference.admission), per model: requests waiting for a slot beyond
    # which new ones get RESOURCE_EXHAUSTED (0: no queue, refuse at once), and the longest a request
    # waits (its own deadline may be shorter).
    queue_max_length: int = 256
    queue_max_wait_s: float = 30.0
    # Consecutive failures that open a backend's circuit, and how long it stays open.
    breaker_failures: int = 3
    breaker_open_s: float = 5.0
    # How often each backend's health and models are probed again. Behind the egress, a backend
    # Envoy's health checks ejected answers 503 to the probe, so no Envoy admin URL is needed.
    inventory_refresh_s: float = 5.0
    # `max_tokens` of a call to an Anthropic backend that sets none (Anthropic requires one).
    anthropic_max_tokens: int = 4096
    # The canary guard of weighted routes: over this window, a canary with at least min_requests
    # is ejected when its error rate exceeds the stable target's by more than max_error_rate, or
    # its median time to first token is above max_ttft_ratio times the stable one's.
    canary_window_s: float = 300.0
    canary_min_requests: int = 20
    canary_max_error_rate: float = 0.05
    canary_max_ttft_ratio: float = 2.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> InferenceSettings:
        d = cls()
        return cls(
            backends=ev.items(env, "LLMMESH_BACKENDS"),
            egress_url=ev.text(env, "LLMMESH_EGRESS_URL", d.egress_url),
            aliases=ev.pairs(env, "LLMMESH_MODEL_ALIASES"),
            default_model=ev.text(env, "LLMMESH_DEFAULT_MODEL", d.default_model),
            idle_timeout_s=ev.number(env, "LLMMESH_IDLE_TIMEOUT_S", d.idle_timeout_s, minimum=0.01),
            connect_timeout_s=ev.number(env, "LLMMESH_CONNECT_TIMEOUT_S", d.connect_timeout_s, minimum=0.01),
            max_attempts=ev.integer(env, "LLMMESH_MAX_ATTEMPTS", d.max_attempts, minimum=1),
            backoff_s=ev.number(env, "LLMMESH_BACKOFF_S", d.backoff_s),
            max_inflight_per_backend=ev.integer(env, "LLMMESH_MAX_INFLIGHT_PER_BACKEND", d.max_inflight_per_backend,
                                          minimum=1),
            queue_max_length=ev.integer(env, "LLMMESH_QUEUE_MAX_LENGTH", d.queue_max_length),
            queue_max_wait_s=ev.number(env, "LLMMESH_QUEUE_MAX_WAIT_S", d.queue_max_wait_s, minimum=0.01),
            breaker_failures=ev.integer(env, "LLMMESH_BREAKER_FAILURES", d.breaker_failures, minimum=1),
            breaker_open_s=ev.number(env, "LLMMESH_BREAKER_OPEN_S", d.breaker_open_s),
            inventory_refresh_s=ev.number(env, "LLMMESH_INVENTORY_REFRESH_S", d.inventory_refresh_s, minimum=0.1),
            anthropic_max_tokens=ev.integer(env, "LLMMESH_ANTHROPIC_MAX_TOKENS", d.anthropic_max_tokens, minimum=1),
            canary_window_s=ev.number(env, "LLMMESH_CANARY_WINDOW_S", d.canary_window_s, minimum=1.0),
            canary_min_requests=ev.integer(env, "LLMMESH_CANARY_MIN_REQUESTS", d.canary_min_requests, minimum=1),
            canary_max_error_rate=ev.number(env, "LLMMESH_CANARY_MAX_ERROR_RATE", d.canary_max_error_rate),
            canary_max_ttft_ratio=ev.number(env, "LLMMESH_CANARY_MAX_TTFT_RATIO", d.canary_max_ttft_ratio,
                                         minimum=1.0),
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
    # Models one comparison (CompareService) may answer with.
    max_models: int = 8
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
    # MCP servers (streamable HTTP) whose tools become tools named `<name>.<tool>`: (name, URL) pairs.
    mcp_servers: tuple[tuple[str, str], ...] = ()
    # Hosts (named exactly) whose MCP servers may be on loopback, private or link-local addresses.
    mcp_allow_internal: tuple[str, ...] = ()
    # Seconds a stream waits for a human (plan approval, a human turn) before failing.
    human_timeout_s: float = 300.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PatternLimits:
        d = cls()
        return cls(
            max_panel=ev.integer(env, "LLMMESH_MAX_PANEL", d.max_panel, minimum=1),
            max_rounds=ev.integer(env, "LLMMESH_MAX_ROUNDS", d.max_rounds, minimum=1),
            max_steps=ev.integer(env, "LLMMESH_MAX_STEPS", d.max_steps, minimum=1),
            max_plan_steps=ev.integer(env, "LLMMESH_MAX_PLAN_STEPS", d.max_plan_steps, minimum=1),
            max_replans=ev.integer(env, "LLMMESH_MAX_REPLANS", d.max_replans),
            max_agents=ev.integer(env, "LLMMESH_MAX_AGENTS", d.max_agents, minimum=1),
            max_models=ev.integer(env, "LLMMESH_MAX_MODELS", d.max_models, minimum=2),
            max_output_tokens=ev.integer(env, "LLMMESH_MAX_OUTPUT_TOKENS", d.max_output_tokens, minimum=1),
            max_text_chars=ev.integer(env, "LLMMESH_MAX_TEXT_CHARS", d.max_text_chars, minimum=1),
            json_attempts=ev.integer(env, "LLMMESH_JSON_ATTEMPTS", d.json_attempts, minimum=1),
            tool_timeout_s=ev.number(env, "LLMMESH_TOOL_TIMEOUT_S", d.tool_timeout_s, minimum=0.01),
            tool_output_chars=ev.integer(env, "LLMMESH_TOOL_OUTPUT_CHARS", d.tool_output_chars, minimum=1),
            http_tool_allow=ev.items(env, "LLMMESH_HTTP_TOOL_ALLOW"),
            grpc_tool_targets=ev.items(env, "LLMMESH_GRPC_TOOL_TARGETS"),
            mcp_servers=ev.mcp_servers(env, "LLMMESH_MCP_SERVERS"),
            mcp_allow_internal=ev.items(env, "LLMMESH_MCP_ALLOW_INTERNAL"),
            human_timeout_s=ev.number(env, "LLMMESH_HUMAN_TIMEOUT_S", d.human_timeout_s, minimum=0.01),
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
        return cls(api_keys_file=ev.text(env, "LLMMESH_API_KEYS_FILE", d.api_keys_file),
                   service_key_file=ev.text(env, "LLMMESH_SERVICE_KEY_FILE", d.service_key_file))


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
        values = [ev.text(env, n, "") for n in names]
        if any(values) and not all(values):
            missing = [n for n, v in zip(names, values, strict=True) if not v]
            raise SettingsError(f"mutual TLS needs {', '.join(names)} together; missing {', '.join(missing)}")
        return cls(*values)


@dataclass(frozen=True)
class RunStoreSettings:
    """Where pattern runs are stored (llmmesh.runs) and how much of them.

    Without a database URL, runs go to SQLite under the state directory, which `./scripts/up` also
    uses; with one (`postgresql://…`), every replica shares that PostgreSQL database.
    """

    # Files this process keeps between runs: the embedded run store `runs.db`.
    state_dir: str = ".llmmesh"
    # `postgresql://user:password@host:5432/db` (or `sqlite:///path`). Empty: SQLite in state_dir.
    database_url: str = ""
    # Runs waiting to be written; beyond it a finished run is not stored (and counted as lost).
    queue_size: int = 1024
    # Events kept per run, and their size in bytes (as JSON); the rest are dropped, and counted.
    max_events: int = 2000
    max_event_bytes: int = 1024 * 1024
    # Runs older than this many days, and beyond this many (newest kept), are deleted; 0 keeps all.
    retention_days: float = 30.0
    retention_count: int = 0
    # How often retention is applied.
    prune_interval_s: float = 3600.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RunStoreSettings:
        d = cls()
        return cls(
            state_dir=ev.text(env, "LLMMESH_STATE_DIR", d.state_dir) or d.state_dir,
            database_url=ev.text(env, "LLMMESH_DATABASE_URL", d.database_url),
            queue_size=ev.integer(env, "LLMMESH_RUNS_QUEUE_SIZE", d.queue_size, minimum=1),
            max_events=ev.integer(env, "LLMMESH_RUNS_MAX_EVENTS", d.max_events),
            max_event_bytes=ev.integer(env, "LLMMESH_RUNS_MAX_EVENT_BYTES", d.max_event_bytes),
            retention_days=ev.number(env, "LLMMESH_RUNS_RETENTION_DAYS", d.retention_days),
            retention_count=ev.integer(env, "LLMMESH_RUNS_RETENTION_COUNT", d.retention_count),
            prune_interval_s=ev.number(env, "LLMMESH_RUNS_PRUNE_INTERVAL_S", d.prune_interval_s, minimum=1.0),
        )


class FailurePolicy(enum.Enum):
    """What a replica does while the shared-state Redis is unreachable."""

    OPEN = "open"  # serve on with this process's own state
    CLOSED = "closed"  # refuse what needs a limit checked: UNAVAILABLE


@dataclass(frozen=True)
class SharedStateSettings:
    """Where per-key limits, budgets, fairness counters and the response cache live
    (llmmesh.framework.shared_state)."""

    # `redis://host:6379/0` (or rediss://, unix://): shared by every replica. Empty: each process
    # keeps its own (the embedded default).
    redis_url: str = ""
    failure_policy: FailurePolicy = FailurePolicy.OPEN
    # Longest wait for one Redis call (connect, reply); beyond it Redis counts as unreachable.
    timeout_s: float = 0.25
    # While Redis is unreachable, it is pinged this often (requests meanwhile do not wait on it).
    retry_s: float = 1.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SharedStateSettings:
        d = cls()
        raw_policy = ev.text(env, "LLMMESH_REDIS_FAILURE_POLICY", d.failure_policy.value).lower()
        try:
            policy = FailurePolicy(raw_policy)
        except ValueError:
            raise SettingsError(f"LLMMESH_REDIS_FAILURE_POLICY={raw_policy!r}: expected open or closed") from None
        url = ev.text(env, "LLMMESH_REDIS_URL", d.redis_url)
        if url and not url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError(f"LLMMESH_REDIS_URL={url!r}: expected redis://host:port/db, rediss:// or unix://")
        return cls(redis_url=url, failure_policy=policy,
                   timeout_s=ev.number(env, "LLMMESH_REDIS_TIMEOUT_S", d.timeout_s, minimum=0.001),
                   retry_s=ev.number(env, "LLMMESH_REDIS_RETRY_S", d.retry_s, minimum=0.01))


@dataclass(frozen=True)
class CacheSettings:
    """The inference service's response cache for deterministic requests (llmmesh.inference.cache)."""

    enabled: bool = True
    ttl_s: float = 3600.0
    # Bounds of the in-process cache (Redis is bounded by its own maxmemory).
    max_entries: int = 10_000
    max_bytes: int = 64 * 1024 * 1024

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CacheSettings:
        d = cls()
        return cls(enabled=ev.flag(env, "LLMMESH_CACHE_ENABLED", d.enabled),
                   ttl_s=ev.number(env, "LLMMESH_CACHE_TTL_S", d.ttl_s, minimum=0.001),
                   max_entries=ev.integer(env, "LLMMESH_CACHE_MAX_ENTRIES", d.max_entries, minimum=1),
                   max_bytes=ev.integer(env, "LLMMESH_CACHE_MAX_BYTES", d.max_bytes, minimum=1024))


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
    # Also serve the gateway (GatewaySettings, from the same environment) in this process, its
    # inference calls made in-process (llmmesh.gateway.hosted); needs `inference` among `services`.
    serve_gateway: bool = False
    # After SIGTERM: report NOT_SERVING for this long (so Envoy's health checks route away),
    # then stop accepting and give in-flight RPCs up to grace_period_s to finish.
    drain_delay_s: float = 2.0
    grace_period_s: float = DEFAULT_GRACE_PERIOD_S
    max_message_bytes: int = 4 * 1024 * 1024
    log_level: str = DEFAULT_LOG_LEVEL
    # Prompts and completions in trace spans (tracing itself is configured by the OTEL_* variables).
    trace_content: bool = False
    # YAML (or JSON) file of named analysis presets (llmmesh.patterns.presets). Empty: none.
    presets_file: str = ""
    inference: InferenceSettings = field(default_factory=InferenceSettings)
    limits: PatternLimits = field(default_factory=PatternLimits)
    auth: AuthSettings = field(default_factory=AuthSettings)
    tls: ServiceTlsSettings = field(default_factory=ServiceTlsSettings)
    runs: RunStoreSettings = field(default_factory=RunStoreSettings)
    shared_state: SharedStateSettings = field(default_factory=SharedStateSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        d = cls()
        known = {s.name for s in SERVICES}
        # `all` is the spelling of the default: every service, in topology order.
        services = ev.items(env, "LLMMESH_SERVICES", "all")
        if services == ("all",):
            services = d.services
        unknown = sorted(set(services) - known)
        if unknown:
            raise SettingsError(f"LLMMESH_SERVICES: unknown {unknown}; known: {sorted(known)}")
        serve_gateway = ev.flag(env, "LLMMESH_SERVE_GATEWAY", d.serve_gateway)
        if serve_gateway and "inference" not in services:
            raise SettingsError("LLMMESH_SERVE_GATEWAY needs the inference service in LLMMESH_SERVICES")
        return cls(
            services=services,
            host=ev.text(env, "LLMMESH_HOST", d.host),
            port=ev.integer(env, "LLMMESH_PORT", d.port),
            metrics_port=ev.port_or_off(env, "LLMMESH_METRICS_PORT", d.metrics_port),
            inference_target=ev.text(env, "LLMMESH_INFERENCE_TARGET", d.inference_target),
            serve_gateway=serve_gateway,
            drain_delay_s=ev.number(env, "LLMMESH_DRAIN_DELAY_S", d.drain_delay_s),
            grace_period_s=ev.number(env, "LLMMESH_GRACE_PERIOD_S", d.grace_period_s),
            max_message_bytes=ev.integer(env, "LLMMESH_MAX_MESSAGE_BYTES", d.max_message_bytes, minimum=1024),
            log_level=ev.text(env, "LLMMESH_LOG_LEVEL", d.log_level).upper(),
            trace_content=ev.flag(env, "LLMMESH_TRACE_CONTENT", d.trace_content),
            presets_file=ev.text(env, "LLMMESH_PRESETS_FILE", d.presets_file),
            inference=InferenceSettings.from_env(env),
            limits=PatternLimits.from_env(env),
            auth=AuthSettings.from_env(env),
            tls=ServiceTlsSettings.from_env(env),
            runs=RunStoreSettings.from_env(env),
            shared_state=SharedStateSettings.from_env(env),
            cache=CacheSettings.from_env(env),
        )


@dataclass(frozen=True)
class IngressSettings:
    """What the Envoy renderer (`llmmesh-envoy`) takes from the environment for the ingress."""

    # Browser origins allowed to call the ingress from another origin (REST, SSE, the OpenAI API;
    # preflights included). None: browsers get no cross-origin access.
    cors_origins: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> IngressSettings:
        env = os.environ if env is None else env
        return cls(cors_origins=ev.origins(env, "LLMMESH_CORS_ORIGINS"))


@dataclass(frozen=True)
class GatewaySettings:
    """The HTTP gateway (`llmmesh-gateway`): the OpenAI- and Ollama-compatible APIs and the browser
    playground over the inference service's gRPC contract, and the patterns as an MCP server. It
    serves `/healthz` and Prometheus `/metrics` on its own port; the ingress routes only /v1/,
    /playground, /mcp and Ollama's /api/<name> paths to it."""

    host: str = DEFAULT_HOST
    # 0 picks a free port (tests).
    port: int = GATEWAY.port
    # The inference service (host:port, gRPC).
    inference_target: str = f"{DEFAULT_HOST}:{MONOLITH_PORT}"
    # Where the MCP server runs the patterns (host:port, gRPC). Empty: the inference target, which
    # hosts every pattern in the monolith; microservices point it at Envoy's internal listener
    # (INTERNAL_PORT), which reaches every service whatever the ingress speaks.
    patterns_target: str = ""
    # API keys (LLMMESH_API_KEYS_FILE): with a file, /mcp checks keys itself and lists the tools a
    # key's scopes allow. The OpenAI and Ollama routes forward keys to the services, which check them.
    api_keys_file: str = ""
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
            host=ev.text(env, "LLMMESH_HOST", d.host),
            port=ev.integer(env, "LLMMESH_GATEWAY_PORT", d.port),
            inference_target=ev.text(env, "LLMMESH_INFERENCE_TARGET", "") or d.inference_target,
            patterns_target=ev.text(env, "LLMMESH_PATTERNS_TARGET", d.patterns_target),
            api_keys_file=ev.text(env, "LLMMESH_API_KEYS_FILE", d.api_keys_file),
            playground_api_url=ev.text(env, "LLMMESH_PLAYGROUND_API_URL", d.playground_api_url).rstrip("/"),
            timeout_s=ev.number(env, "LLMMESH_GATEWAY_TIMEOUT_S", d.timeout_s, minimum=0.01),
            grace_period_s=ev.number(env, "LLMMESH_GRACE_PERIOD_S", d.grace_period_s),
            max_body_bytes=ev.integer(env, "LLMMESH_GATEWAY_MAX_BODY_BYTES", d.max_body_bytes, minimum=1024),
            log_level=ev.text(env, "LLMMESH_LOG_LEVEL", d.log_level).upper(),
            tls=ServiceTlsSettings.from_env(env),
        )
