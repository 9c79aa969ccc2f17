"""Model routes (LLMMESH_MODEL_ALIASES): the name a caller asks for → the models that answer it.

    fast=smollm2:135m                          an alias: one name for one model
    chat=llama3.1:8b@90|llama3.2:3b@10         weighted targets: each request picks one by weight
    chat=llama3.1:8b@90|llama3.2:3b@10;sticky  the caller's key picks (a hash): one key, one version
    big=llama3.1:70b@100>llama3.1:8b           a fallback chain of stages, each weighted

- Fallback: when no backend of the chosen model can serve it before its first token (NOT_FOUND,
  UNAVAILABLE: no healthy backend or every attempt failed, RESOURCE_EXHAUSTED: its queue is full),
  the next stage picks a model and serves. The final event names the route in `requested_model`
  and the models that could not serve in `fallback_from`. Once a token is out, an error is final.
- Canary guard: in a stage of several targets the heaviest is the stable one and the others are
  canaries. Over a sliding window each target's outcomes are kept; a canary with enough requests
  whose error rate exceeds the stable target's by more than LLMMESH_CANARY_MAX_ERROR_RATE, or whose
  time to first token (its own, queue wait excluded) has a median above
  LLMMESH_CANARY_MAX_TTFT_RATIO times the stable one's, is ejected: its weight goes to 0 for the
  life of the process (a rollback is a decision; bringing it back is a restart or a new config),
  with a warning log line, `llmmesh_route_canary_ejections_total` and its state in ListModels.
- Errors count against a target when the mesh or the model failed: not for a caller's bad request,
  deadline or cancellation.

The response cache keys a route by its name (a deterministic answer cached from one target is
replayed to the route's callers); a plain alias resolves to its model first, as before.
"""

from __future__ import annotations

import hashlib
import logging
import random
import statistics
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from enum import StrEnum

from llmmesh.common.model_call import Finished, GenerationEvent, ModelCall, TextDelta, ToolCalls
from llmmesh.framework.errors import Cancelled, DeadlineExceeded, InvalidArgument, NotFound, Overloaded, Unavailable
from llmmesh.inference.metrics import InferenceMetrics
from llmmesh.settings import InferenceSettings

log = logging.getLogger("llmmesh.inference.routes")

MAX_WEIGHT = 1_000_000
# The model cannot serve: the next stage may.
_FALL_BACK_ON = (NotFound, Unavailable, Overloaded)
# The caller's doing, not the target's: never counted against it.
_CALLERS_DOING = (InvalidArgument, DeadlineExceeded, Cancelled)


class TargetState(StrEnum):
    ACTIVE = "active"
    EJECTED = "ejected"


@dataclass(frozen=True)
class GuardSettings:
    window_s: float
    min_requests: int
    max_error_rate: float
    max_ttft_ratio: float

    @classmethod
    def of(cls, s: InferenceSettings) -> GuardSettings:
        return cls(s.canary_window_s, s.canary_min_requests, s.canary_max_error_rate, s.canary_max_ttft_ratio)


@dataclass
class Target:
    model: str
    configured_weight: int
    weight: int
    state: TargetState = TargetState.ACTIVE
    reason: str = ""
    # (time.monotonic(), ok, ttft_ms or None) of recent requests, oldest first.
    samples: deque[tuple[float, bool, float | None]] = field(default_factory=deque)


@dataclass
class Route:
    name: str
    stages: list[list[Target]]
    sticky: bool = False

    @property
    def routed(self) -> bool:
        """More than an alias: the route chooses per request."""
        return len(self.stages) > 1 or len(self.stages[0]) > 1 or self.sticky

    @property
    def primary(self) -> Target:
        """The stable target of the first stage: what the route is, for listings."""
        return stable(self.stages[0])


def stable(stage: list[Target]) -> Target:
    return max(stage, key=lambda t: t.configured_weight)


def parse_route(name: str, text: str) -> Route:
    """`model[@weight]|…[>…][;sticky]`; ValueError naming the route for anything else."""
    body, _, options = text.partition(";")
    sticky = False
    for opt in filter(None, (o.strip() for o in options.split(";"))):
        if opt != "sticky":
            raise ValueError(f"model route {name!r}: unknown option {opt!r} (only 'sticky')")
        sticky = True
    stages = []
    for stage_text in body.split(">"):
        stage = []
        for target_text in stage_text.split("|"):
            model, at, weight_text = target_text.strip().rpartition("@")
            if not at:
                model, weight_text = weight_text, "100"
            if not model.strip() or not weight_text.strip().isdigit() or int(weight_text) > MAX_WEIGHT:
                raise ValueError(f"model route {name!r}: {target_text.strip()!r} is not model[@weight] "
                                 f"(weight 0-{MAX_WEIGHT})")
            stage.append(Target(model.strip(), int(weight_text), int(weight_text)))
        if sum(t.weight for t in stage) <= 0:
            raise ValueError(f"model route {name!r}: stage {stage_text.strip()!r} has no weight")
        models = [t.model for t in stage]
        if len(set(models)) != len(models):
            raise ValueError(f"model route {name!r}: a model appears twice in stage {stage_text.strip()!r}")
        stages.append(stage)
    return Route(name, stages, sticky)


class ModelRoutes:
    def __init__(self, aliases: tuple[tuple[str, str], ...], guard: GuardSettings, metrics: InferenceMetrics,
                 clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None) -> None:
        self._routes = {name: parse_route(name, text) for name, text in aliases}
        self._guard = guard
        self._metrics = metrics
        self._clock = clock
        self._rng = rng or random.Random()
        for route in self._routes.values():
            for stage in route.stages:
                for t in stage:
                    metrics.route_weight.labels(route.name, t.model).set(t.weight)

    # ---- names -------------------------------------------------------------------------------

    def resolve(self, name: str) -> str:
        """An alias → its model; a route's name stays (it chooses per request); anything else as is."""
        route = self._routes.get(name)
        if route is None or route.routed:
            return name
        return route.primary.model

    def is_route(self, name: str) -> bool:
        route = self._routes.get(name)
        return route is not None and route.routed

    def aliases_of(self, model: str) -> list[str]:
        """Names whose primary model is `model` (or `model` is its `:latest`)."""
        return sorted(r.name for r in self._routes.values()
                      if model in (r.primary.model, f"{r.primary.model}:latest"))

    def targets_of(self, model: str) -> list[tuple[str, int, Target]]:
        """(route, stage, target) for every routed name that may send to `model`."""
        return [(r.name, i, t) for r in self._routes.values() if r.routed for i, stage in enumerate(r.stages)
                for t in stage if model in (t.model, f"{t.model}:latest")]

    # ---- serving -----------------------------------------------------------------------------

    def pick(self, route: Route, key: str) -> list[Target]:
        """One target per stage, in fallback order."""
        return [self._pick_in(route, stage, key) for stage in route.stages]

    def _pick_in(self, route: Route, stage: list[Target], key: str) -> Target:
        live = [t for t in stage if t.weight > 0]
        total = sum(t.weight for t in live)
        if route.sticky and key:
            digest = hashlib.sha256(f"{route.name}\x00{key}".encode()).digest()
            point = int.from_bytes(digest[:8], "big") % total
        else:
            point = self._rng.randrange(total)
        for t in live:
            if point < t.weight:
                return t
            point -= t.weight
        return live[-1]

    async def serve(self, call: ModelCall, key: str,
                    generate: Callable[[ModelCall], AsyncIterator[GenerationEvent]]) -> AsyncIterator[GenerationEvent]:
        """The events of `generate` for the model the route of `call.model` picks for `key`, falling
        back along its stages; a name that is no route goes straight through."""
        route = self._routes.get(call.model)
        if route is None or not route.routed:
            async with aclosing(generate(call)) as events:
                async for event in events:
                    yield event
            return
        could_not: list[str] = []
        chosen = self.pick(route, key)
        for n, target in enumerate(chosen):
            delivered = False
            try:
                async with aclosing(generate(replace(call, model=target.model))) as events:
                    async for event in events:
                        if isinstance(event, Finished):
                            s = event.stats
                            own_ttft = s.time_to_first_token_ms - s.queue_wait_ms if s.time_to_first_token_ms else None
                            self._observe(route, target, True, own_ttft)
                            if could_not:
                                self._metrics.route_fallbacks.labels(route.name, target.model).inc()
                            event = Finished(replace(s, requested_model=route.name, fallback_from=tuple(could_not)))
                        delivered = delivered or isinstance(event, TextDelta | ToolCalls)
                        yield event
                return
            except _CALLERS_DOING:
                raise
            except Exception as exc:
                self._observe(route, target, False, None)
                if delivered or n == len(chosen) - 1 or not isinstance(exc, _FALL_BACK_ON):
                    raise
                could_not.append(target.model)
                log.warning("route falls back", extra={"route": route.name, "model": target.model,
                                                       "next": chosen[n + 1].model, "reason": str(exc)[:300]})

    # ---- the canary guard --------------------------------------------------------------------

    def _observe(self, route: Route, target: Target, ok: bool, ttft_ms: float | None) -> None:
        now = self._clock()
        target.samples.append((now, ok, ttft_ms))
        for stage in route.stages:
            if target in stage and len(stage) > 1:
                self._judge(route, stage, now)

    def _judge(self, route: Route, stage: list[Target], now: float) -> None:
        g = self._guard
        for t in stage:
            while t.samples and t.samples[0][0] < now - g.window_s:
                t.samples.popleft()
        base = stable(stage)
        for canary in stage:
            if canary is base or canary.state is TargetState.EJECTED or len(canary.samples) < g.min_requests:
                continue
            why = _worse(canary, base, g)
            if why:
                canary.weight, canary.state, canary.reason = 0, TargetState.EJECTED, why
                self._metrics.route_weight.labels(route.name, canary.model).set(0)
                self._metrics.route_ejections.labels(route.name, canary.model).inc()
                log.warning("canary ejected", extra={"route": route.name, "model": canary.model,
                                                     "stable": base.model, "reason": why})


def _error_rate(t: Target) -> float:
    return sum(1 for _, ok, _ in t.samples if not ok) / len(t.samples) if t.samples else 0.0


def _worse(canary: Target, base: Target, g: GuardSettings) -> str:
    """Why the canary is worse than the stable target beyond the guard's thresholds ("" if not)."""
    mine, theirs = _error_rate(canary), _error_rate(base)
    if mine - theirs > g.max_error_rate:
        return f"error rate {mine:.0%} vs {theirs:.0%} on {base.model} (over {len(canary.samples)} requests)"
    mine_ttft = [x for _, ok, x in canary.samples if ok and x is not None]
    base_ttft = [x for _, ok, x in base.samples if ok and x is not None]
    if len(mine_ttft) >= g.min_requests and len(base_ttft) >= g.min_requests:
        p50, base_p50 = statistics.median(mine_ttft), statistics.median(base_ttft)
        if p50 > g.max_ttft_ratio * base_p50:
            return f"TTFT p50 {p50:.0f} ms vs {base_p50:.0f} ms on {base.model}"
    return ""
