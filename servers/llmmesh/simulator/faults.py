"""Fault specs: parsing, formatting and the mutable instance-level fault state.

Spec syntax: comma-separated ``key=value`` (whitespace ignored), e.g. ``delay_ms=100,drop_after=3``.

- ``delay_ms=N``        sleep N ms before answering (before headers)
- ``token_delay_ms=N``  sleep N ms before every token
- ``status=N``          answer HTTP N with an Ollama-style ``{"error": ...}`` body
- ``fail_at_chunk=N``   after N frames, an in-stream ``{"error": ...}`` line (HTTP 200), then end;
                        non-streaming requests get HTTP 500 like Ollama
- ``hang_after=N``      after N frames, send nothing until the client goes away (``hang`` = 0)
- ``drop_after=N``      after N frames, abort the TCP connection (no terminating chunk) (``drop`` = 0)
- ``busy``              503 ``server busy`` (also ``busy=1``/``busy=true``)
- ``max_concurrency=N`` beyond N concurrent generations, 503 ``server busy``
- ``health=down|hang|up|N``  /api/tags, /api/ps, /api/version answer 503 / hang / normally / HTTP N
- ``rate=F``            apply the rest of the spec to a fraction F of requests (0..1)
- ``times=N``           instance faults only: apply to the next N requests, then clear

A "frame" is one NDJSON line (native API) or one SSE ``data:`` event (OpenAI API); the final
``done`` line / ``finish_reason`` chunk counts as a frame, so ``fail_at_chunk=0`` fails at once
and ``fail_at_chunk=<tokens>`` fails just before the final line.
"""

from __future__ import annotations

import random
from dataclasses import fields

from llmmesh.simulator.config import FaultSpec

BUSY_MESSAGE = "server busy, please try again.  maximum pending requests exceeded"

_INT_KEYS = {
    "delay_ms",
    "token_delay_ms",
    "status",
    "fail_at_chunk",
    "hang_after",
    "drop_after",
    "max_concurrency",
    "times",
}
_FLAG_ALIASES = {"busy": ("busy", True), "hang": ("hang_after", 0), "drop": ("drop_after", 0)}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class FaultSpecError(ValueError):
    """The text of a fault spec is invalid."""


def parse_fault_spec(text: str | None) -> FaultSpec:
    """Parse ``key=value,...``; empty or ``None`` gives an empty spec."""
    values: dict[str, object] = {}
    for raw in (text or "").split(","):
        item = raw.strip()
        if not item:
            continue
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep and key in _FLAG_ALIASES:
            name, flag_value = _FLAG_ALIASES[key]
            values[name] = flag_value
            continue
        if not sep:
            raise FaultSpecError(f"fault spec item {item!r} is not key=value")
        values[key] = _parse_value(key, value)
    return FaultSpec(**values)  # type: ignore[arg-type]


def _parse_value(key: str, value: str) -> object:
    if key in _INT_KEYS:
        try:
            number = int(value)
        except ValueError:
            raise FaultSpecError(f"fault {key} needs an integer, got {value!r}") from None
        if number < 0:
            raise FaultSpecError(f"fault {key} must be >= 0")
        if key == "times" and number < 1:
            raise FaultSpecError("fault times must be >= 1")
        if key == "status" and not 100 <= number <= 599:
            raise FaultSpecError(f"fault status must be an HTTP status, got {number}")
        return number
    if key == "busy":
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise FaultSpecError(f"fault busy needs a boolean, got {value!r}")
    if key == "health":
        value = value.lower()
        if value in {"up", "down", "hang"} or (value.isdigit() and 100 <= int(value) <= 599):
            return value
        raise FaultSpecError(f"fault health must be up, down, hang or an HTTP status, got {value!r}")
    if key == "rate":
        try:
            rate = float(value)
        except ValueError:
            raise FaultSpecError(f"fault rate needs a number, got {value!r}") from None
        if not 0.0 <= rate <= 1.0:
            raise FaultSpecError("fault rate must be within 0..1")
        return rate
    raise FaultSpecError(f"unknown fault key {key!r}")


def format_fault_spec(spec: FaultSpec) -> str:
    """Inverse of ``parse_fault_spec`` (canonical order, unset keys left out)."""
    parts = []
    for f in fields(spec):
        value = getattr(spec, f.name)
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        parts.append(f"{f.name}={value}")
    return ",".join(parts)


def health_status(spec: FaultSpec) -> int | None:
    """HTTP status health endpoints must answer, ``None`` when healthy; "hang" is handled apart."""
    if spec.health in (None, "up", "hang"):
        return None
    if spec.health == "down":
        return 503
    return int(spec.health)


class InstanceFaults:
    """The instance-level fault, changed at runtime through ``PUT /_sim/faults``."""

    def __init__(self, spec: FaultSpec, seed: int = 0) -> None:
        self._rng = random.Random(seed)
        self._spec = FaultSpec()
        self._remaining: int | None = None
        self.set(spec)

    def set(self, spec: FaultSpec) -> None:
        self._spec = spec
        self._remaining = spec.times

    def clear(self) -> None:
        self.set(FaultSpec())

    @property
    def spec(self) -> FaultSpec:
        return self._spec

    @property
    def remaining(self) -> int | None:
        return self._remaining

    def take(self) -> FaultSpec:
        """The instance fault for one generation/embedding request; consumes ``times``."""
        spec = self._spec
        if self._remaining is not None:
            self._remaining -= 1
            if self._remaining <= 0:
                self.clear()
        return spec

    def roll(self, spec: FaultSpec) -> FaultSpec:
        """Apply ``rate``: with probability 1-rate the request runs without a fault."""
        if spec.rate is None or spec.rate >= 1.0 or self._rng.random() < spec.rate:
            return spec
        return FaultSpec(max_concurrency=spec.max_concurrency, health=spec.health)
