"""Suite-wide fixtures: a fresh Prometheus registry per test, and settings for port-0 servers."""

from __future__ import annotations

import dataclasses

import pytest
from prometheus_client import CollectorRegistry

from llmmesh.settings import Settings
from tests.support.inproc import inproc_mesh


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def settings() -> Settings:
    return dataclasses.replace(Settings.from_env({}), port=0, metrics_port=0, drain_delay_s=0.2,
                               grace_period_s=5.0)


@pytest.fixture
def inference_mesh(settings: Settings, registry: CollectorRegistry):
    """`async with inference_mesh(*sim_configs, services=..., limits=..., **inference_settings) as m`."""

    def make(*configs, **kwargs):
        return inproc_mesh(settings, registry, *configs, **kwargs)

    return make
