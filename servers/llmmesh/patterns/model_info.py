"""What a pattern needs to know about the model that will answer it: its context window and
whether it calls tools natively. Both come from the inference service's ListModels, which learns
them from the backends (Ollama /api/show and /api/ps, llama.cpp /props, or the backend's
configuration); the answer is cached per client for a short while.

A model the listing does not know (or a test double that is not a ModelClient) gets conservative
defaults: the smallest common window and prompted tool calls, which work on every model.
A run that finds out a model cannot call tools natively after all (Ollama's 400 "does not support
tools") says so with `forget_native_tools`, so later runs on this client go straight to prompted
calls.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field, replace
from typing import Any

from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.patterns import model_client

# The window assumed when nobody reported one (llama.cpp's smallest common slot size, and Ollama's
# historical default num_ctx).
DEFAULT_CONTEXT_WINDOW = 2048
# How long a listing is trusted: models get pulled and loaded, windows change with them.
CACHE_S = 30.0
# ListModels is cheap and local: a caller's deadline is no reason to wait long for it.
LIST_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ModelInfo:
    name: str
    # Tokens one request may hold, prompt and output together; DEFAULT_CONTEXT_WINDOW if unknown.
    context_window: int
    native_tools: bool


@dataclass
class _Catalog:
    models: dict[str, ModelInfo]
    default_model: str
    expires: float  # monotonic time; inf for a catalog set by `prime`
    no_native_tools: set[str] = field(default_factory=set)

    def lookup(self, model: str) -> ModelInfo:
        name = model or self.default_model
        info = self.models.get(name) or self.models.get(f"{name}:latest")
        if info is None:
            info = ModelInfo(name, DEFAULT_CONTEXT_WINDOW, native_tools=False)
        if info.name in self.no_native_tools:
            info = replace(info, native_tools=False)
        return info


# Keyed by id(client), with a weak reference to tell a new client from a collected one.
_catalogs: dict[int, tuple[weakref.ref[Any], _Catalog]] = {}


def _cached(client: Any) -> _Catalog | None:
    entry = _catalogs.get(id(client))
    if entry is None or entry[0]() is not client:
        return None
    return entry[1]


def _store(client: Any, catalog: _Catalog) -> None:
    _catalogs[id(client)] = (weakref.ref(client), catalog)


def _from_listing(resp: pb.ListModelsResponse) -> _Catalog:
    models: dict[str, ModelInfo] = {}
    for m in resp.models:
        info = ModelInfo(m.name, m.context_window or DEFAULT_CONTEXT_WINDOW, m.native_tools)
        for name in (m.name, *m.aliases):
            models[name] = info
    return _Catalog(models, resp.default_model, time.monotonic() + CACHE_S)


async def model_info(client: Any, model: str) -> ModelInfo:
    """What the inference service knows about `model` ("" = its default model)."""
    catalog = _cached(client)
    if catalog is None or catalog.expires < time.monotonic():
        if isinstance(client, model_client.ModelClient):
            fresh = _from_listing(await client.list_models(timeout_s=LIST_TIMEOUT_S))
        else:  # a test double with no inference service behind it
            fresh = _Catalog({}, "", float("inf"))
        if catalog is not None:
            fresh.no_native_tools |= catalog.no_native_tools
        catalog = fresh
        _store(client, catalog)
    return catalog.lookup(model)


def prime(client: Any, *infos: ModelInfo, default_model: str = "") -> None:
    """Tell `client`'s cache what ListModels would say (unit tests with a fake client)."""
    _store(client, _Catalog({i.name: i for i in infos}, default_model or (infos[0].name if infos else ""),
                            float("inf")))


def forget_native_tools(client: Any, model: str) -> None:
    """`model` (a name as `model_info` resolved it) turned out not to call tools natively: later
    lookups through `client` say so."""
    catalog = _cached(client)
    if catalog is None:
        catalog = _Catalog({}, "", 0.0)  # expired: the next lookup lists, and keeps this mark
        _store(client, catalog)
    catalog.no_native_tools.add(model)
