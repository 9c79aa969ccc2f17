"""Backend configuration: `[name=]http://host:port[#ollama|#openai][;models=a|b][;ctx=N][;tools=native|prompted]`.

`ctx` and `tools` state what the backend's API may not tell (an OpenAI-compatible server other
than llama.cpp): the context window of its models, and whether they call tools natively. They
override what the backend reports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit


class Protocol(StrEnum):
    OLLAMA = "ollama"
    OPENAI = "openai"


# Cheap endpoints that answer only when the server is up and serving its API (Envoy's active
# health checks, the launcher's readiness probes). Ollama also serves /v1/models.
HEALTH_PATHS = {Protocol.OLLAMA: "/api/tags", Protocol.OPENAI: "/v1/models"}
# Names the backend a request is pinned to, from the inference service to the Envoy egress.
BACKEND_HEADER = "x-llmmesh-backend"


@dataclass(frozen=True)
class BackendConfig:
    name: str
    url: str  # scheme://host:port, no trailing slash
    protocol: Protocol
    # Models served, when known up front; otherwise discovered from the backend.
    models: tuple[str, ...] = ()
    context_window: int = 0  # 0: as the backend reports
    native_tools: bool | None = None  # None: as the backend reports

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)


_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def parse_backend(spec: str) -> BackendConfig:
    spec = spec.strip()
    options = ""
    if ";" in spec:
        spec, options = spec.split(";", 1)
    protocol = Protocol.OLLAMA
    if "#" in spec:
        spec, proto = spec.rsplit("#", 1)
        try:
            protocol = Protocol(proto.strip().lower())
        except ValueError:
            raise ValueError(f"backend {spec!r}: protocol must be 'ollama' or 'openai', not {proto!r}") from None
    name = ""
    if "=" in spec.split("://", 1)[0]:
        name, spec = spec.split("=", 1)
    parts = urlsplit(spec.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"backend URL {spec!r} must look like http://host:port")
    url = f"{parts.scheme}://{parts.netloc}".rstrip("/")
    name = (name or f"{parts.hostname}-{parts.port or 80}").strip().lower().replace(".", "-")
    if not _NAME.match(name):
        raise ValueError(f"backend name {name!r} must match {_NAME.pattern}")
    models: tuple[str, ...] = ()
    context_window, native_tools = 0, None
    for opt in filter(None, options.split(";")):
        key, _, value = (part.strip() for part in opt.partition("="))
        if key == "models":
            models = tuple(m.strip() for m in value.split("|") if m.strip())
        elif key == "ctx":
            if not value.isdigit() or not 256 <= int(value) <= 1_048_576:
                raise ValueError(f"backend {name}: ctx must be a number of tokens from 256 to 1048576, not {value!r}")
            context_window = int(value)
        elif key == "tools":
            if value not in ("native", "prompted"):
                raise ValueError(f"backend {name}: tools must be 'native' or 'prompted', not {value!r}")
            native_tools = value == "native"
        else:
            raise ValueError(f"backend {name}: unknown option {key!r}")
    return BackendConfig(name, url, protocol, models, context_window, native_tools)


def parse_backends(specs: tuple[str, ...]) -> tuple[BackendConfig, ...]:
    backends = tuple(parse_backend(s) for s in specs)
    names = [b.name for b in backends]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicate backend names {dupes}; name them with name=url")
    return backends
