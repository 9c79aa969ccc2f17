"""The API key file: what it may contain, how it is read, checked and (by `llmmesh-keys`) written.

    {"keys": [{"name": "ci", "sha256": "<hex digest of the key>", "scopes": ["judge", "jury"],
               "limits": {"requests_per_second": 5, "burst": 10,
                          "tokens_per_minute": 20000, "tokens_per_day": 1000000},
               "weight": 2, "max_priority": "batch"}]}

Only the SHA-256 of a key is stored. A scope is a topology service name (`inference`, `judge`, …)
or `*`. `limits` and each of its fields are optional (absent: unlimited). `weight` (default 1) is
the key's share of busy backends against other keys' in the admission queue, `max_priority`
(`interactive`, the default, or `batch`) the most urgent class it may ask for. Anything else — an
unknown scope, a duplicate name or digest, a negative rate, an unknown field — fails loudly at
start-up with the file's name, so a typo never silently opens or closes access.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from llmmesh.common.priority import Priority
from llmmesh.framework.principal import KeyLimits, Principal
from llmmesh.topology.description import SERVICES

# Beyond the services: `runs:admin` sees and deletes every key's runs (RunsService), not only its own.
RUNS_ADMIN_SCOPE = "runs:admin"
SCOPES = frozenset({"*", RUNS_ADMIN_SCOPE, *(s.name for s in SERVICES)})
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_ENTRY_FIELDS = frozenset({"name", "sha256", "scopes", "limits", "created", "weight", "max_priority"})
# Bounds of a key's admission weight: a ratio between keys, not an absolute rate.
MAX_WEIGHT = 1000.0
_LIMIT_FIELDS = {"requests_per_second": float, "burst": int, "tokens_per_minute": int, "tokens_per_day": int}


class KeyFileError(ValueError):
    pass


def _limits(raw: Any, where: str) -> KeyLimits:
    if raw is None:
        return KeyLimits()
    if not isinstance(raw, dict):
        raise KeyFileError(f"{where}.limits must be an object")
    unknown = sorted(set(raw) - set(_LIMIT_FIELDS))
    if unknown:
        raise KeyFileError(f"{where}.limits: unknown fields {unknown}; known: {sorted(_LIMIT_FIELDS)}")
    values: dict[str, Any] = {}
    for name, kind in _LIMIT_FIELDS.items():
        value = raw.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and value != int(value)):
            raise KeyFileError(f"{where}.limits.{name} must be a {'whole ' if kind is int else ''}number")
        if value <= 0:
            raise KeyFileError(f"{where}.limits.{name} must be > 0 (leave it out for no limit)")
        values[name] = kind(value)
    if "burst" in values and "requests_per_second" not in values:
        raise KeyFileError(f"{where}.limits.burst needs requests_per_second")
    return KeyLimits(**values)


def parse_entry(raw: Any, where: str) -> tuple[str, Principal]:
    """(sha256 digest, principal) of one `keys[]` entry."""
    if not isinstance(raw, dict):
        raise KeyFileError(f"{where} must be an object")
    unknown = sorted(set(raw) - _ENTRY_FIELDS)
    if unknown:
        raise KeyFileError(f"{where}: unknown fields {unknown}")
    name, digest, scopes = raw.get("name"), raw.get("sha256"), raw.get("scopes", [])
    if not isinstance(name, str) or not _NAME.match(name):
        raise KeyFileError(f"{where}.name must be 1-64 characters of letters, digits, _ . @ -")
    if not isinstance(digest, str) or not _DIGEST.match(digest.lower()):
        raise KeyFileError(f"{where}.sha256 must be a SHA-256 hex digest (64 hex digits)")
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise KeyFileError(f"{where}.scopes must be a list of service names")
    bad = sorted(set(scopes) - SCOPES)
    if bad:
        raise KeyFileError(f"{where}.scopes: unknown {bad}; known: {sorted(SCOPES)}")
    return digest.lower(), Principal(name, frozenset(scopes), _limits(raw.get("limits"), where),
                                     weight=_weight(raw.get("weight", 1.0), where),
                                     max_priority=_priority(raw.get("max_priority", "interactive"), where))


def _weight(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_WEIGHT:
        raise KeyFileError(f"{where}.weight must be a number in (0, {MAX_WEIGHT:g}]")
    return float(value)


def _priority(value: Any, where: str) -> Priority:
    found = Priority.parse(value) if isinstance(value, str) else None
    if found is None:
        raise KeyFileError(f"{where}.max_priority must be one of {[p.label for p in Priority]}")
    return found


def parse(doc: Any, source: str = "key file") -> dict[str, Principal]:
    """sha256 digest → principal, for a whole key file document."""
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise KeyFileError(f"{source}: expected {{\"keys\": [...]}}")
    out: dict[str, Principal] = {}
    names: set[str] = set()
    for i, raw in enumerate(doc["keys"]):
        digest, principal = parse_entry(raw, f"{source}: keys[{i}]")
        if digest in out:
            raise KeyFileError(f"{source}: keys[{i}] repeats the digest of key {out[digest].name!r}")
        if principal.name in names:
            raise KeyFileError(f"{source}: keys[{i}] repeats the name {principal.name!r}")
        names.add(principal.name)
        out[digest] = principal
    return out


def load(path: str | Path) -> dict[str, Principal]:
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as exc:
        raise KeyFileError(f"cannot read the API key file {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise KeyFileError(f"{path} is not valid JSON: {exc}") from None
    return parse(doc, str(path))


def read_document(path: Path) -> dict[str, Any]:
    """The raw document (for editing); an absent file is an empty one."""
    if not path.exists():
        return {"keys": []}
    doc = json.loads(path.read_text())
    parse(doc, str(path))  # refuse to edit a file the services would refuse to load
    return doc


def write_document(path: Path, doc: dict[str, Any]) -> None:
    """Atomically replace `path`. A new file is readable by its owner only (it names who may call
    what); an existing one keeps its mode (a deployment may have opened it to a container's user)."""
    parse(doc, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(doc, out, indent=2)
            out.write("\n")
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def limits_dict(limits: KeyLimits) -> dict[str, float | int]:
    return {k: v for k, v in asdict(limits).items() if v is not None}


def scopes_of(text: Iterable[str]) -> list[str]:
    return sorted({s.strip() for s in text if s.strip()})
