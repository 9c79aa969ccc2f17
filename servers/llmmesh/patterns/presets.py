"""Named analysis presets (LLMMESH_PRESETS_FILE): criteria sets, jury panels and model lists a request
names instead of spelling them out (`preset` on CompareService.Run and JuryService.Evaluate).

The file is YAML (JSON is YAML too), read and validated once at start: a bad file stops the server
with its path, the preset and the problem. A preset fills only the request fields the caller left
empty, so explicit fields always win:

    presets:
      code-review:
        description: correctness first, two judges
        models: [fast, smart]           # CompareRequest.models
        criteria: [factual, coherence]  # CompareRequest.criteria
        judges: [judge-a, judge-b]      # CompareRequest.judges
        panel:                          # JuryRequest.panel (default: one juror per judge and criterion)
          - {model: judge-a, criterion: factual, weight: 2}
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from google.protobuf.message import Message

from llmmesh.common.model_call import MAX_MODEL_NAME
from llmmesh.framework.validation import Violations
from llmmesh.judge.criteria import BUILTINS
from llmmesh.settings import SettingsError

NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_KEYS = ("description", "models", "criteria", "judges", "panel")
_JUROR_KEYS = ("name", "model", "criterion", "instructions", "weight")
M = TypeVar("M", bound=Message)


class PresetsError(SettingsError):
    pass


@dataclass(frozen=True)
class Preset:
    name: str = ""
    description: str = ""
    models: tuple[str, ...] = ()
    criteria: tuple[str, ...] = ()
    judges: tuple[str, ...] = ()
    # Jurors as JuryService's Juror fields ({"model": …, "criterion": …, "weight": …}).
    panel: tuple[Mapping[str, Any], ...] = field(default=(), hash=False)

    def fill(self, msg: M, fields: Mapping[str, str]) -> M:
        """A copy of `msg` whose empty repeated fields (request field → preset attribute) hold the
        preset's values; fields the caller set are kept as they are."""
        out = type(msg)()
        out.CopyFrom(msg)
        for request_field, attribute in fields.items():
            target = getattr(out, request_field)
            if len(target):
                continue
            for value in getattr(self, attribute):
                if isinstance(value, Mapping):
                    target.add(**value)
                else:
                    target.append(value)
        return out


NO_PRESET = Preset()


@dataclass(frozen=True)
class Presets:
    by_name: Mapping[str, Preset] = field(default_factory=dict)

    def resolve(self, name: str, path: str, v: Violations) -> Preset:
        """The preset a request names ("" names none); an unknown name is a violation of `path`."""
        if not name:
            return NO_PRESET
        preset = self.by_name.get(name)
        if preset is None:
            available = (f"available: {', '.join(sorted(self.by_name))}" if self.by_name
                         else "this server has no presets (LLMMESH_PRESETS_FILE)")
            v.add(path, f"unknown preset {name!r}; {available}")
            return NO_PRESET
        return preset


def load(path: str) -> Presets:
    """The presets of the file at `path` ("" is none); PresetsError naming the path, preset and
    problem when the file cannot be read or is not a valid presets file."""
    if not path:
        return Presets()
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise PresetsError(f"LLMMESH_PRESETS_FILE: cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise PresetsError(f"LLMMESH_PRESETS_FILE: {path} is not YAML or JSON: {exc}") from None
    if not isinstance(doc, dict) or set(doc) != {"presets"} or not isinstance(doc["presets"], dict):
        raise PresetsError(f"LLMMESH_PRESETS_FILE: {path} must be a mapping with one key, `presets`, "
                           "holding a mapping of preset names to presets")
    presets = {}
    for name, entry in doc["presets"].items():
        try:
            presets[name] = _preset(name, entry)
        except ValueError as exc:
            raise PresetsError(f"LLMMESH_PRESETS_FILE: {path}: preset {name!r}: {exc}") from None
    return Presets(presets)


def _preset(name: object, entry: object) -> Preset:
    if not isinstance(name, str) or not NAME.match(name):
        raise ValueError(f"the name must match {NAME.pattern}")
    if not isinstance(entry, dict):
        raise ValueError("must be a mapping of " + ", ".join(_KEYS))
    unknown = sorted(map(str, set(entry) - set(_KEYS)))
    if unknown:
        raise ValueError(f"unknown keys {unknown}; expected some of {list(_KEYS)}")
    description = entry.get("description", "")
    if not isinstance(description, str):
        raise ValueError("description must be a string")
    models = _names(entry, "models", MAX_MODEL_NAME)
    judges = _names(entry, "judges", MAX_MODEL_NAME)
    criteria = _names(entry, "criteria", 64)
    for i, criterion in enumerate(criteria):
        _criterion(criterion, f"criteria[{i}]")
    panel = entry.get("panel", [])
    if not isinstance(panel, list):
        raise ValueError("panel must be a list of jurors")
    jurors = tuple(_juror(j, f"panel[{i}]") for i, j in enumerate(panel))
    if not jurors and criteria:  # the jury's panel of a preset that names none: one juror per judge and criterion
        jurors = tuple({"model": j, "criterion": c} for j in judges or ("",) for c in criteria)
    if not (models or criteria or judges or jurors):
        raise ValueError(f"sets none of {list(_KEYS[1:])}")
    return Preset(name, description, models, criteria, judges, jurors)


def _names(entry: Mapping[str, Any], key: str, max_chars: int) -> tuple[str, ...]:
    values = entry.get(key, [])
    if not isinstance(values, list) or not all(isinstance(x, str) and x.strip() for x in values):
        raise ValueError(f"{key} must be a list of non-empty strings")
    for i, value in enumerate(values):
        if len(value) > max_chars:
            raise ValueError(f"{key}[{i}] is {len(value)} characters; the limit is {max_chars}")
        if value in values[:i]:
            raise ValueError(f"{key}[{i}] duplicates {key}[{values.index(value)}] {value!r}")
    return tuple(values)


def _criterion(name: str, where: str) -> None:
    if name not in BUILTINS:
        raise ValueError(f"{where}: unknown criterion {name!r}; built-in: {', '.join(sorted(BUILTINS))}")


def _juror(juror: object, where: str) -> Mapping[str, Any]:
    if not isinstance(juror, dict):
        raise ValueError(f"{where} must be a mapping of {', '.join(_JUROR_KEYS)}")
    unknown = sorted(map(str, set(juror) - set(_JUROR_KEYS)))
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; expected some of {list(_JUROR_KEYS)}")
    for key in ("name", "model", "criterion", "instructions"):
        if not isinstance(juror.get(key, ""), str):
            raise ValueError(f"{where}.{key} must be a string")
    if len(juror.get("model", "")) > MAX_MODEL_NAME:
        raise ValueError(f"{where}.model is longer than {MAX_MODEL_NAME} characters")
    if juror.get("criterion"):
        _criterion(juror["criterion"], f"{where}.criterion")
    weight = juror.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) or weight <= 0:
        raise ValueError(f"{where}.weight must be a finite number greater than 0")
    return dict(juror)
