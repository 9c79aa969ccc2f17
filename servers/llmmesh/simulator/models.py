"""The model catalog (/api/tags) and which models are loaded (/api/ps)."""

from __future__ import annotations

import hashlib
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

DEFAULT_KEEP_ALIVE_S = 300.0
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_FAMILIES = (
    ("llama", "llama"),
    ("smollm", "llama"),
    ("qwen", "qwen2"),
    ("gemma", "gemma"),
    ("phi", "phi3"),
    ("mistral", "llama"),
    ("nomic-embed", "nomic-bert"),
    ("all-minilm", "bert"),
)


class KeepAliveError(ValueError):
    pass


def normalize_name(name: str) -> str:
    """``llama3.2`` and ``llama3.2:latest`` name the same model, as in Ollama."""
    return name if ":" in name else f"{name}:latest"


def parse_keep_alive(value: Any) -> float | None:
    """Seconds to keep a model loaded; ``None`` = forever (negative values), 0 = unload now."""
    if value is None:
        return DEFAULT_KEEP_ALIVE_S
    if isinstance(value, bool):
        raise KeepAliveError("keep_alive must be a number or a duration string")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        negative = text.startswith("-")
        body = text.lstrip("+-")
        try:
            seconds = float(body)
        except ValueError:
            parts = _DURATION_PART.findall(body)
            if not parts or "".join(n + u for n, u in parts) != body:
                raise KeepAliveError(f"invalid keep_alive duration {value!r}") from None
            seconds = sum(float(n) * _UNIT_S[u] for n, u in parts)
        seconds = -seconds if negative else seconds
    else:
        raise KeepAliveError("keep_alive must be a number or a duration string")
    return None if seconds < 0 else seconds


def _parameter_size(tag: str) -> str:
    match = re.match(r"(\d+(?:\.\d+)?)([mb])", tag.lower())
    if not match:
        return "1B"
    return f"{match.group(1)}{match.group(2).upper()}"


def _size_bytes(parameter_size: str) -> int:
    number = float(parameter_size[:-1])
    scale = 1e6 if parameter_size.endswith("M") else 1e9
    return int(number * scale * 0.6) + 50_000_000  # ~Q4 weights plus overhead


def model_details(name: str) -> dict[str, Any]:
    base, _, tag = name.partition(":")
    family = next((fam for prefix, fam in _FAMILIES if base.startswith(prefix)), base.split("-")[0])
    return {
        "parent_model": "",
        "format": "gguf",
        "family": family,
        "families": [family],
        "parameter_size": _parameter_size(tag),
        "quantization_level": "Q4_K_M",
    }


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def now_rfc3339() -> str:
    return _rfc3339(datetime.now(UTC))


class ModelCatalog:
    def __init__(self, names: tuple[str, ...], preload: tuple[str, ...] = (), context_length: int = 4096) -> None:
        self.names = tuple(normalize_name(n) for n in names)
        self.context_length = context_length
        self.modified_at = _rfc3339(datetime.now(UTC).replace(microsecond=0))
        # model -> monotonic expiry (None = never); present = loaded
        self._loaded: dict[str, float | None] = {}
        for name in preload:
            self._loaded[normalize_name(name)] = None

    def has(self, name: str) -> bool:
        return normalize_name(name) in self.names

    def digest(self, name: str) -> str:
        return hashlib.sha256(name.encode()).hexdigest()

    def size(self, name: str) -> int:
        return _size_bytes(model_details(name)["parameter_size"])

    def tags(self) -> list[dict[str, Any]]:
        return [
            {
                "name": name,
                "model": name,
                "modified_at": self.modified_at,
                "size": self.size(name),
                "digest": self.digest(name),
                "details": model_details(name),
            }
            for name in self.names
        ]

    def is_loaded(self, name: str) -> bool:
        self._expire()
        return normalize_name(name) in self._loaded

    def touch(self, name: str, keep_alive_s: float | None) -> bool:
        """Mark a model used; returns True if it had to be "loaded" first."""
        self._expire()
        name = normalize_name(name)
        was_loaded = name in self._loaded
        if keep_alive_s == 0:
            self._loaded.pop(name, None)
        else:
            self._loaded[name] = None if keep_alive_s is None else time.monotonic() + keep_alive_s
        return not was_loaded

    def _expire(self) -> None:
        now = time.monotonic()
        for name, expiry in list(self._loaded.items()):
            if expiry is not None and expiry <= now:
                del self._loaded[name]

    def running(self) -> list[dict[str, Any]]:
        self._expire()
        out = []
        now_mono = time.monotonic()
        for name, expiry in self._loaded.items():
            if expiry is None:
                expires_at = datetime(2318, 1, 1, tzinfo=UTC)  # Ollama reports a far future date
            else:
                expires_at = datetime.now(UTC) + timedelta(seconds=expiry - now_mono)
            out.append(
                {
                    "name": name,
                    "model": name,
                    "size": self.size(name),
                    "digest": self.digest(name),
                    "details": model_details(name),
                    "expires_at": _rfc3339(expires_at),
                    "size_vram": self.size(name),
                    "context_length": self.context_length,
                }
            )
        return out
