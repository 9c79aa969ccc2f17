"""The README's configuration tables against the settings they document.

Every default is written once, as a settings field, and `from_env({})` falls back to it. The README
restates them: a default in backticks is the value itself (setting the variable to it changes
nothing); a default in words means unset (setting the variable empty changes nothing). Every
variable the settings read is in a table, and every variable in a table is read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from llmmesh.settings import GatewaySettings, IngressSettings, Settings

README = Path(__file__).resolve().parents[2] / "README.md"
VARIABLE = re.compile(r"`(LLMMESH_[A-Z_]+)`")
LITERAL = re.compile(r"`([^`]*)`")
# Settings, GatewaySettings or IngressSettings.
SettingsClass = type[Settings] | type[GatewaySettings] | type[IngressSettings]


class ReadRecorder(Mapping[str, str]):
    """An empty environment that remembers every variable asked for."""

    def __init__(self) -> None:
        self.read: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.read.add(name)
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def configuration_tables() -> list[dict[str, str | None]]:
    """Each table of the README's Configuration section: variable → documented default."""
    text = README.read_text()
    section = re.search(r"^## Configuration\n(.*?)^## ", text, re.S | re.M)
    assert section, "README has no '## Configuration' section"
    tables: list[dict[str, str | None]] = []
    for block in re.findall(r"(?:^\|.*\|\n)+", section.group(1), re.M):
        rows = [re.split(r"(?<!\\)\|", line)[1:-1] for line in block.splitlines()[2:]]
        table: dict[str, str | None] = {}
        for row in rows:
            names, default = VARIABLE.findall(row[0]), row[-1]
            values = LITERAL.findall(default)
            assert names, f"a configuration row names no variable: {row}"
            assert len(values) in (0, len(names)), f"{names}: {len(values)} defaults for {len(names)} variables"
            # None: a default in words, the variable unset.
            table |= dict(zip(names, values or [None] * len(names), strict=True))
        tables.append(table)
    return tables


def variables_read(settings: SettingsClass) -> set[str]:
    recorder = ReadRecorder()
    settings.from_env(recorder)
    return recorder.read


SERVICES_TABLE, GATEWAY_TABLE, INGRESS_TABLE = configuration_tables()
# Each settings class with its own table; the gateway also reads variables of the services' table.
OWN = ((Settings, SERVICES_TABLE), (GatewaySettings, GATEWAY_TABLE), (IngressSettings, INGRESS_TABLE))
READABLE = ((Settings, SERVICES_TABLE), (GatewaySettings, SERVICES_TABLE | GATEWAY_TABLE),
            (IngressSettings, INGRESS_TABLE))
IDS = ["services", "gateway", "ingress"]


def test_defaults_are_the_fields_defaults() -> None:
    assert Settings.from_env({}) == Settings()
    assert GatewaySettings.from_env({}) == GatewaySettings()
    assert IngressSettings.from_env({}) == IngressSettings()
    # The case: the field said 9451 while from_env fell back to 0.
    assert Settings.from_env({}).metrics_port == 9451


@pytest.mark.parametrize(("settings", "documented"), OWN, ids=IDS)
def test_every_documented_variable_is_read(settings: SettingsClass, documented: dict[str, str | None]) -> None:
    assert set(documented) - variables_read(settings) == set()


@pytest.mark.parametrize(("settings", "documented"), READABLE, ids=IDS)
def test_every_variable_read_is_documented(settings: SettingsClass, documented: dict[str, str | None]) -> None:
    assert variables_read(settings) - set(documented) == set()


def cases() -> list[Any]:
    return [pytest.param(settings, name, documented.get(name), id=f"{settings.__name__}-{name}")
            for settings, documented in READABLE for name in sorted(variables_read(settings))]


@pytest.mark.parametrize(("settings", "name", "default"), cases())
def test_documented_default_is_the_default(settings: SettingsClass, name: str, default: str | None) -> None:
    written = "" if default is None else default
    assert settings.from_env({name: written}) == settings.from_env({}), (
        f"README says {name} defaults to {default or 'unset'}; {settings.__name__}'s default differs")


def test_a_wrong_documented_default_is_caught() -> None:
    """The check above can fail: 9451 is not the services' default port, nor 'unset' a port."""
    assert Settings.from_env({"LLMMESH_PORT": "9451"}) != Settings.from_env({})
    assert Settings.from_env({"LLMMESH_METRICS_PORT": ""}) != Settings.from_env({})
