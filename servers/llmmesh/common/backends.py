"""Backend configuration:
`[name=]http(s)://host:port[/base/path][#ollama|#openai|#anthropic][;option=value…]`.

Options:
- `models=a|b`: models served, when the backend does not list them itself.
- `ctx=N`, `tools=native|prompted`: what the backend's API may not tell (an OpenAI-compatible
  server other than llama.cpp): the context window of its models, and whether they call tools
  natively. They override what the backend reports.
- `api_key_env=VAR` / `api_key_file=PATH`: the backend's API key, read by the inference service at
  start-up and sent as its protocol expects. The configuration names where the key is, never the
  key itself, so it can be rendered, logged and listed safely.
- `ca_file=PATH`: for https:// backends, the CA bundle the Envoy egress verifies the backend
  with (instead of the system bundle); a path as Envoy sees it.
- `slots=N`: requests the backend runs at once (Ollama's OLLAMA_NUM_PARALLEL, vLLM's
  max_num_seqs); more wait in the mesh's fair queue instead of inside the backend. llama.cpp says
  it itself (/props total_slots). Default: LLMMESH_MAX_INFLIGHT_PER_BACKEND.
- `continuation=continue|echo|flag`: how the server treats a trailing assistant message, which
  mid-stream failover continues from (llmmesh.inference.continuation). Default: per protocol.

The URL's path is the API base as each protocol's own clients take it: Ollama's and Anthropic's
sit under it (`/api/chat`, `/v1/messages`), an OpenAI-compatible one *is* it (`/engines/v1` →
`/engines/v1/chat/completions`; none means `/v1`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import SplitResult, urlsplit


class Protocol(StrEnum):
    OLLAMA = "ollama"
    OPENAI = "openai"
    ANTHROPIC = "anthropic"


class Continuation(StrEnum):
    """How a server answers a chat whose last message is a partial assistant answer."""

    AUTO = "auto"  # OpenAI-compatible: learned from the server (llama.cpp echoes, vLLM needs the flag)
    CONTINUE = "continue"  # goes on from it (Ollama, Anthropic)
    ECHO = "echo"  # repeats it, then goes on (llama.cpp): the echo is stripped
    FLAG = "flag"  # goes on only when asked to (vLLM's continue_final_message)


# Cheap endpoints that answer only when the server is up and serving its API (Envoy's active
# health checks, the launcher's readiness probes), below the API base. Ollama also serves /v1/models.
HEALTH_PATHS = {Protocol.OLLAMA: "/api/tags", Protocol.OPENAI: "/v1/models", Protocol.ANTHROPIC: "/v1/models"}
DEFAULT_CONTINUATION = {Protocol.OLLAMA: Continuation.CONTINUE, Protocol.OPENAI: Continuation.AUTO,
                        Protocol.ANTHROPIC: Continuation.CONTINUE}
# Names the backend a request is pinned to, from the inference service to the Envoy egress.
BACKEND_HEADER = "x-llmmesh-backend"


@dataclass(frozen=True)
class BackendConfig:
    name: str
    url: str  # scheme://host:port, no path
    protocol: Protocol
    # Models served, when known up front; otherwise discovered from the backend.
    models: tuple[str, ...] = ()
    context_window: int = 0  # 0: as the backend reports
    native_tools: bool | None = None  # None: as the backend reports
    base_path: str = ""  # the URL's path, no trailing slash ("" for none)
    api_key_env: str = ""
    api_key_file: str = ""
    ca_file: str = ""
    continuation: Continuation = Continuation.AUTO
    slots: int = 0  # 0: as the backend reports, else the inference service's cap

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def tls(self) -> bool:
        return self.url.startswith("https://")

    @property
    def keyed(self) -> bool:
        return bool(self.api_key_env or self.api_key_file)

    @property
    def shown_url(self) -> str:
        """The URL as configured: it holds no secret (credentials in a URL are refused)."""
        return self.url + self.base_path

    def api_path(self, path: str) -> str:
        return api_path(self.protocol, self.base_path, path)

    @property
    def health_path(self) -> str:
        return api_path(self.protocol, self.base_path, HEALTH_PATHS[self.protocol])


def api_path(protocol: Protocol, base_path: str, path: str) -> str:
    """`path` as the protocol's default server has it (`/api/chat`, `/v1/models`, `/props`) → the
    path on a backend whose API base is `base_path`. For OpenAI-compatible servers the base
    replaces `/v1`, and a path outside the API (llama.cpp's /props) sits beside the base's /v1."""
    if protocol is not Protocol.OPENAI or not base_path:
        return base_path + path
    if path.startswith("/v1/"):
        return base_path + path[3:]
    return base_path.removesuffix("/v1") + path


_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PATH = re.compile(r"^(/[A-Za-z0-9._~%!$&'()*+,;=:@-]+)*$")


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
            raise ValueError(f"backend {spec!r}: protocol must be 'ollama', 'openai' or 'anthropic', "
                             f"not {proto!r}") from None
    name = ""
    if "=" in spec.split("://", 1)[0]:
        name, spec = spec.split("=", 1)
    parts = urlsplit(spec.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"backend URL {_shown(parts)!r} must look like http(s)://host:port[/path]")
    if parts.username is not None or parts.password is not None or parts.query:
        # A URL is shown (ListBackends, logs, the Envoy config): a secret in it would leak.
        raise ValueError(f"backend URL {_shown(parts)!r}: no credentials or query in the URL; "
                         "use ;api_key_env=VAR or ;api_key_file=PATH")
    base_path = parts.path.rstrip("/")
    if not _PATH.match(base_path):
        raise ValueError(f"backend URL {_shown(parts)!r}: bad path {base_path!r}")
    url = f"{parts.scheme}://{parts.netloc}"
    default_port = parts.port or (443 if parts.scheme == "https" else 80)
    name = (name or f"{parts.hostname}-{default_port}").strip().lower().replace(".", "-")
    if not _NAME.match(name):
        raise ValueError(f"backend name {name!r} must match {_NAME.pattern}")
    models: tuple[str, ...] = ()
    context_window, native_tools = 0, None
    key_env = key_file = ca_file = ""
    slots = 0
    continuation = DEFAULT_CONTINUATION[protocol]
    for opt in filter(None, options.split(";")):
        key, _, value = (part.strip() for part in opt.partition("="))
        if key == "models":
            models = tuple(m.strip() for m in value.split("|") if m.strip())
        elif key == "ctx":
            if not value.isdigit() or not 256 <= int(value) <= 1_048_576:
                raise ValueError(f"backend {name}: ctx must be a number of tokens from 256 to 1048576, not {value!r}")
            context_window = int(value)
        elif key == "slots":
            if not value.isdigit() or not 1 <= int(value) <= 4096:
                raise ValueError(f"backend {name}: slots must be a number from 1 to 4096, not {value!r}")
            slots = int(value)
        elif key == "tools":
            if value not in ("native", "prompted"):
                raise ValueError(f"backend {name}: tools must be 'native' or 'prompted', not {value!r}")
            native_tools = value == "native"
        elif key == "api_key_env":
            if not _ENV_NAME.match(value):
                raise ValueError(f"backend {name}: api_key_env must name an environment variable")
            key_env = value
        elif key in ("api_key_file", "ca_file"):
            if not value:
                raise ValueError(f"backend {name}: {key} needs a path")
            key_file, ca_file = (value, ca_file) if key == "api_key_file" else (key_file, value)
        elif key == "continuation":
            try:
                continuation = Continuation(value)
            except ValueError:
                raise ValueError(f"backend {name}: continuation must be continue, echo or flag, "
                                 f"not {value!r}") from None
            if continuation is Continuation.AUTO and protocol is not Protocol.OPENAI:
                raise ValueError(f"backend {name}: continuation=auto is for OpenAI-compatible servers")
        else:
            raise ValueError(f"backend {name}: unknown option {key!r}")
    if key_env and key_file:
        raise ValueError(f"backend {name}: api_key_env or api_key_file, not both")
    if ca_file and parts.scheme != "https":
        raise ValueError(f"backend {name}: ca_file is for https:// backends")
    return BackendConfig(name, url, protocol, models, context_window, native_tools, base_path, key_env, key_file,
                         ca_file, continuation, slots)


def _shown(parts: SplitResult) -> str:
    """A URL for an error message, without what may be a secret (userinfo, query)."""
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def parse_backends(specs: tuple[str, ...]) -> tuple[BackendConfig, ...]:
    backends = tuple(parse_backend(s) for s in specs)
    names = [b.name for b in backends]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicate backend names {dupes}; name them with name=url")
    return backends
