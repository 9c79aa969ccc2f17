"""A backend's API key, loaded once from where its configuration points (`api_key_env=VAR`,
`api_key_file=PATH`). The key lives only here: repr hides it, and `redact` takes it out of any text
that leaves the process (errors a backend echoed, ListBackends' last error, logs)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from llmmesh.common.backends import BackendConfig

REDACTED = "[redacted]"


@dataclass(frozen=True)
class Credentials:
    key: str = field(default="", repr=False)

    def redact(self, text: str) -> str:
        return text.replace(self.key, REDACTED) if self.key else text


def load_credentials(config: BackendConfig, env: Mapping[str, str] | None = None) -> Credentials:
    """The key `config` names; ValueError (naming the variable or file, never a value) when it is
    missing, so a deployment without its secret fails at start-up."""
    env = os.environ if env is None else env
    if config.api_key_env:
        key = env.get(config.api_key_env, "").strip()
        if not key:
            raise ValueError(f"backend {config.name}: environment variable {config.api_key_env} "
                             "(api_key_env) is not set")
        return Credentials(key)
    if config.api_key_file:
        try:
            with open(config.api_key_file, encoding="utf-8") as f:
                key = f.readline().strip()
        except OSError as exc:
            raise ValueError(f"backend {config.name}: cannot read api_key_file {config.api_key_file}: "
                             f"{exc.strerror}") from None
        if not key:
            raise ValueError(f"backend {config.name}: api_key_file {config.api_key_file} is empty")
        return Credentials(key)
    return Credentials()
