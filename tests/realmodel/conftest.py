"""The real-model tier's one mesh: Envoy ingress → services → Envoy egress → llama.cpp
`llama-server` running SmolLM2-135M, started once and shared by every module of this package.

Every module here is in xdist group "realmodel", so one worker runs them all against this mesh
(loading the model and starting Envoy twice would cost more than most of the tests).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llmmesh.launcher.up import Mesh
from tests.support.mesh import running_mesh


@pytest.fixture(scope="package")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    # No response cache: these tests measure the model, and repeating a deterministic call is how
    # they measure a success rate.
    with running_mesh(tmp_path_factory.mktemp("llama"), backend="llama",
                      service_env={"LLMMESH_CACHE_ENABLED": "false"}) as m:
        yield m
