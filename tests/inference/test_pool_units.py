"""Choosing a backend for a model: inventory and configured models, health and open circuits,
in-flight load with a penalty for a backend that must first load the model, rotation among equals,
and the errors that say why none can take the request."""

from __future__ import annotations

import pytest

from llmmesh.common.backends import parse_backend
from llmmesh.framework.errors import NotFound, Overloaded, Unavailable
from llmmesh.inference.capabilities import Capabilities
from llmmesh.inference.pool import COLD_PENALTY, Backend, BackendPool, make_backend


def backend(spec: str, models: tuple[str, ...] = ("m:latest",), loaded: tuple[str, ...] = (),
            healthy: bool = True) -> Backend:
    b = make_backend(parse_backend(spec if "://" in spec else f"{spec}=http://{spec}.invalid:11434"), 1, 30.0)
    b.models, b.loaded, b.healthy = set(models), set(loaded), healthy
    return b


def test_a_model_is_served_under_its_name_or_with_the_latest_tag() -> None:
    b = backend("a", models=("m:latest", "x:1b"))
    assert b.serves("m") and b.serves("m:latest") and b.serves("x:1b") and not b.serves("x")
    assert (b.listed_name("m"), b.listed_name("x:1b"), b.listed_name("other")) == ("m:latest", "x:1b", "other")
    configured = backend("c=http://c.invalid:8080#openai;models=big|small", models=())
    assert configured.serves("big") and BackendPool([configured], 4).all_models() == ["big", "small"]


def test_capabilities_follow_the_configuration_and_a_refusal_of_tools() -> None:
    b = backend("a=http://a.invalid:11434;ctx=8192")
    b.capabilities["m:latest"] = Capabilities(4096, True)
    assert b.capabilities_of("m") == Capabilities(8192, True)
    b.refused_tools.add("m:latest")
    assert b.capabilities_of("m") == Capabilities(8192, False)


def test_the_least_busy_backend_wins_and_a_cold_one_counts_as_busier() -> None:
    cold, warm = backend("cold"), backend("warm", loaded=("m:latest",))
    pool = BackendPool([cold, warm], max_inflight=64)
    warm.in_flight = COLD_PENALTY - 1
    assert pool.pick("m") is warm
    warm.in_flight = COLD_PENALTY + 1
    assert pool.pick("m") is cold


def test_equally_good_backends_take_turns_and_exclusions_are_respected() -> None:
    pool = BackendPool([backend("a"), backend("b"), backend("c")], max_inflight=64)
    assert {pool.pick("m").name for _ in range(3)} == {"a", "b", "c"}
    assert {pool.pick("m", exclude={"a", "c"}).name for _ in range(3)} == {"b"}


def test_unhealthy_or_open_circuit_backends_are_skipped_and_none_left_is_unavailable() -> None:
    down, tripped, ok = backend("down", healthy=False), backend("tripped"), backend("ok")
    tripped.breaker.on_failure()  # one failure opens it (threshold 1) for 30 s
    pool = BackendPool([down, tripped, ok], max_inflight=64)
    assert {pool.pick("m").name for _ in range(4)} == {"ok"}
    with pytest.raises(Unavailable) as err:
        pool.pick("m", exclude={"ok"})
    assert "no healthy backend" in err.value.message and err.value.retry_after_s == 1.0
    # With only open circuits left, come back when the first lets a trial through.
    with pytest.raises(Unavailable) as err:
        BackendPool([tripped], max_inflight=64).pick("m")
    assert 29 < err.value.retry_after_s <= 30


def test_saturated_backends_are_overloaded() -> None:
    a = backend("a")
    a.in_flight = 2
    with pytest.raises(Overloaded):
        BackendPool([a], max_inflight=2).pick("m")


def test_a_backend_with_fewer_slots_than_the_cap_is_full_at_its_slots() -> None:
    # llama.cpp queues requests beyond its slots silently: the mesh must hold them in its own queue.
    small, big = backend("small=http://small.invalid:11434;slots=2"), backend("big")
    pool = BackendPool([small, big], max_inflight=8)
    assert (pool.capacity(small), pool.capacity(big)) == (2, 8)
    small.in_flight, big.in_flight = 2, 5
    assert pool.pick("m") is big
    big.in_flight = 8
    with pytest.raises(Overloaded):
        pool.pick("m")


def test_an_unknown_model_is_not_found_listing_the_models_there_are() -> None:
    pool = BackendPool([backend("a", models=("m1:latest",)), backend("b", models=("m2:latest",))], 4)
    assert pool.known("m1") and not pool.known("nope")
    with pytest.raises(NotFound) as err:
        pool.pick("nope")
    assert "available models: m1:latest, m2:latest" in err.value.message
    assert err.value.resource.resource_name == "nope"


def test_an_unknown_model_while_a_backend_has_no_inventory_yet_is_unavailable() -> None:
    pool = BackendPool([backend("a", models=("m1",)), backend("b", models=(), healthy=False)], 4)
    with pytest.raises(Unavailable) as err:
        pool.pick("m2")
    assert "inventory unknown for unreachable backends: b" in err.value.message
