"""API key files for tests: plain keys in the test, only their SHA-256 in the file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmmesh.framework.auth import hash_key


@dataclass(frozen=True)
class KeySpec:
    scopes: tuple[str, ...]
    limits: dict[str, Any] = field(default_factory=dict)


def write_keys(path: Path, **specs: KeySpec) -> dict[str, str]:
    """Write a key file with one key per name; returns name → the plain key (`key-<name>`)."""
    keys = {name: f"key-{name}-0123456789abcdef" for name in specs}
    entries = []
    for name, spec in specs.items():
        entry: dict[str, Any] = {"name": name, "sha256": hash_key(keys[name]), "scopes": list(spec.scopes)}
        if spec.limits:
            entry["limits"] = spec.limits
        entries.append(entry)
    path.write_text(json.dumps({"keys": entries}))
    return keys


def bearer(key: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {key}")]
