"""A simulator mesh with API keys on, as `./scripts/up --backend sim --api-keys keys.json` runs it
(the gateway reading the key file too, for /mcp), shared by the Ollama and MCP front-door tests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.gateway.keyed import RULES, KeyedMesh
from tests.support.keys import KeySpec, write_keys
from tests.support.mesh import running_mesh


@pytest.fixture(scope="session")
def keyed_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyedMesh]:
    work = tmp_path_factory.mktemp("keyed-mesh")
    keys_file = (work / "keys.json").resolve()
    keys = write_keys(keys_file, app=KeySpec(("inference",)), judge=KeySpec(("judge",)), admin=KeySpec(("*",)))
    # api_keys_file alone, as `--api-keys` sets it: the launcher hands the file to the gateway too.
    with running_mesh(work / "state", backend="sim", api_keys_file=keys_file) as mesh:
        keyed = KeyedMesh(mesh, keys)
        httpx.put(f"{keyed.sim}/_sim/scripts", json={"rules": RULES}, timeout=10).raise_for_status()
        yield keyed
