"""Suite-wide fixtures: a fresh Prometheus registry per test, settings for port-0 servers, and a
real redis-server (tests.support.redis_proc)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

import llmmesh.launcher  # noqa: F401 (first: it turns gRPC's fork support off before gRPC starts)
from llmmesh.settings import RunStoreSettings, Settings
from tests.support.inproc import inproc_mesh
from tests.support.redis_proc import redis_server  # noqa: F401 (a fixture)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # The run store (SQLite) in the test's own directory.
    return dataclasses.replace(Settings.from_env({}), port=0, metrics_port=0, drain_delay_s=0.2,
                               grace_period_s=5.0, runs=RunStoreSettings(state_dir=str(tmp_path / "state")))


@pytest.fixture
def inference_mesh(settings: Settings, registry: CollectorRegistry):
    """`async with inference_mesh(*sim_configs, services=..., limits=..., **inference_settings) as m`."""

    def make(*configs, **kwargs):
        return inproc_mesh(settings, registry, *configs, **kwargs)

    return make
