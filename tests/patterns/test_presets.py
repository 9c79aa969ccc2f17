"""Named analysis presets: the file read and validated at start (errors name the path, preset and
problem), a preset filling only the fields a request leaves empty, and comparisons and juries run
from a preset against a real server and scripted simulators; an unknown preset is INVALID_ARGUMENT
naming `preset` and listing the available ones."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import grpc
import pytest

from llmmesh.compare.v1 import compare_service_pb2 as cpb
from llmmesh.compare.v1 import compare_service_pb2_grpc as cpb_grpc
from llmmesh.framework.server import create_server
from llmmesh.framework.validation import Violations
from llmmesh.jury.v1 import jury_service_pb2 as jpb
from llmmesh.jury.v1 import jury_service_pb2_grpc as jpb_grpc
from llmmesh.patterns import presets
from llmmesh.patterns.presets import PresetsError
from llmmesh.settings import Settings
from llmmesh.simulator.config import ScriptRule
from tests.clients.cli_proc import run_cli
from tests.clients.support import target
from tests.patterns.test_compare import MODELS, PROMPT, RULES
from tests.support.inproc import inproc_mesh
from tests.support.rpc import drain, violations
from tests.support.sims import sim

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "deploy" / "presets.yaml"
PRESETS = """
presets:
  capitals:
    description: three models on facts, one judge
    models: [m1, m2, m3]
    criteria: [factual]
    judges: [judge]
  weighted-panel:
    panel:
      - {name: strict, model: judge, criterion: factual, weight: 3}
      - {name: kind, model: judge, criterion: helpfulness}
"""
# The weighted panel's jurors: factual scores the answer 5 of 5, helpfulness 1 of 10.
JURY_ANSWER = "JURY says Paris."
JURY_RULES = (
    ScriptRule(match=f"regex:(?s)Criterion: factual.*<answer>\n{JURY_ANSWER}",
               response=json.dumps({"reasoning": "r", "score": 5})),
    ScriptRule(match=f"regex:(?s)Criterion: helpfulness.*<answer>\n{JURY_ANSWER}",
               response=json.dumps({"reasoning": "r", "score": 1})),
)


def write(tmp_path: Path, text: str, name: str = "presets.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# ---- the file ----------------------------------------------------------------------------------


def test_a_file_of_presets_loads_in_yaml_or_json(tmp_path: Path) -> None:
    loaded = presets.load(write(tmp_path, PRESETS))
    assert sorted(loaded.by_name) == ["capitals", "weighted-panel"]
    capitals = loaded.by_name["capitals"]
    assert (capitals.models, capitals.criteria, capitals.judges) == (("m1", "m2", "m3"), ("factual",), ("judge",))
    # A preset without a panel gives the jury one juror per judge and criterion.
    assert list(capitals.panel) == [{"model": "judge", "criterion": "factual"}]
    as_json = json.dumps({"presets": {"pair": {"models": ["a", "b"]}}})
    assert presets.load(write(tmp_path, as_json, "presets.json")).by_name["pair"].models == ("a", "b")
    assert presets.load("").by_name == {}


def test_the_shipped_file_is_valid() -> None:
    assert presets.load(str(SHIPPED)).by_name


@pytest.mark.parametrize("text, problem", [
    ("presets: [a]", "must be a mapping with one key, `presets`"),
    ("presets:\n  p:\n    criteria: [wisdom]", "preset 'p': criteria[0]: unknown criterion 'wisdom'; built-in:"),
    ("presets:\n  p:\n    models: [a, a]", "preset 'p': models[1] duplicates models[0] 'a'"),
    ("presets:\n  p:\n    modles: [a]", "preset 'p': unknown keys ['modles']"),
    ("presets:\n  p:\n    panel: [{model: j, weight: -1}]", "preset 'p': panel[0].weight must be a finite number"),
    ("presets:\n  p:\n    panel: [{model: j, criterion: nope}]", "preset 'p': panel[0].criterion: unknown criterion"),
    ("presets:\n  p:\n    description: nothing", "preset 'p': sets none of"),
    ("presets:\n  Bad Name:\n    models: [a]", "preset 'Bad Name': the name must match"),
    ("presets: {p: [", "is not YAML or JSON"),
])
def test_a_bad_file_names_its_path_the_preset_and_the_problem(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PresetsError) as err:
        presets.load(path)
    assert str(err.value).startswith(f"LLMMESH_PRESETS_FILE: {path}") and problem in str(err.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PresetsError, match=f"cannot read {tmp_path}/absent.yaml"):
        presets.load(str(tmp_path / "absent.yaml"))


def test_the_server_does_not_start_with_a_bad_file(tmp_path: Path, registry) -> None:
    settings = dataclasses.replace(Settings.from_env({}), port=0, metrics_port=None, services=("jury",),
                                   presets_file=write(tmp_path, "presets:\n  p:\n    criteria: [wisdom]"))
    with pytest.raises(PresetsError, match="preset 'p': criteria"):
        create_server(settings, registry)


def test_a_preset_fills_only_what_the_request_leaves_empty(tmp_path: Path) -> None:
    loaded = presets.load(write(tmp_path, PRESETS))
    v = Violations()
    fields = {"models": "models", "criteria": "criteria", "judges": "judges"}
    filled = loaded.resolve("capitals", "preset", v).fill(cpb.RunRequest(models=["x", "y"]), fields)
    assert (list(filled.models), list(filled.criteria), list(filled.judges)) == (["x", "y"], ["factual"], ["judge"])
    assert not v.items
    loaded.resolve("capitalz", "run.preset", v)
    assert [(i.field, i.description) for i in v.items] == [
        ("run.preset", "unknown preset 'capitalz'; available: capitals, weighted-panel")]


# ---- through the servicers -----------------------------------------------------------------------


@pytest.fixture
def preset_mesh(settings: Settings, registry, tmp_path: Path):
    with_presets = dataclasses.replace(settings, presets_file=write(tmp_path, PRESETS))

    def make(*configs, **kwargs):
        return inproc_mesh(with_presets, registry, *configs, **kwargs)

    return make


async def test_a_comparison_runs_from_a_preset(preset_mesh) -> None:
    async with preset_mesh(sim(*RULES, models=MODELS), services=("inference", "compare")) as m:
        stub = cpb_grpc.CompareServiceStub(m.channel)
        resp = await stub.Run(cpb.RunRequest(prompt=PROMPT, preset="capitals", reference="Paris"))
        # Explicit models win over the preset's; its criteria and judges still apply.
        two = await stub.Run(cpb.RunRequest(prompt=PROMPT, preset="capitals", models=["m3", "m2"]))
    # The same ranking as the comparison that names the preset's models, criteria and judges itself.
    assert [(r.model, r.rank, r.score) for r in resp.ranking] == [("m1", 1, 1.0), ("m2", 2, 0.5), ("m3", 3, 0.25)]
    assert list(resp.criteria) == ["factual"]
    assert {v.model for s in resp.scores for v in s.verdicts} == {"judge"}
    assert [r.model for r in two.ranking] == ["m2", "m3"] and list(two.criteria) == ["factual"]


async def test_a_jury_runs_the_presets_panel(preset_mesh) -> None:
    async with preset_mesh(sim(*JURY_RULES, models=("judge",)), services=("inference", "jury")) as m:
        resp = await jpb_grpc.JuryServiceStub(m.channel).Evaluate(jpb.EvaluateRequest(
            question="Capital of France?", answer=JURY_ANSWER, preset="weighted-panel",
            aggregation=jpb.AGGREGATION_WEIGHTED_MEAN))
    assert sorted((v.juror, v.model, v.criterion) for v in resp.verdicts) == [
        ("kind", "judge", "helpfulness"), ("strict", "judge", "factual")]
    # factual 5/5 → 1.0 weighted 3, helpfulness 1/10 → 0.0 weighted 1.
    assert resp.score == pytest.approx(0.75)


async def test_an_unknown_preset_names_the_field_and_the_available_ones(preset_mesh) -> None:
    expected = "unknown preset 'nope'; available: capitals, weighted-panel"
    async with preset_mesh(sim(*RULES, models=MODELS), services=("inference", "compare", "jury")) as m:
        compare = cpb_grpc.CompareServiceStub(m.channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await compare.Run(cpb.RunRequest(prompt=PROMPT, preset="nope"))
        # Every other violation is named too (no models came from the missing preset).
        assert violations(err.value) == {"preset": expected, "models": "name at least two models to compare; got 0"}
        _, stream_err = await drain(compare.RunStream(iter([cpb.RunStreamRequest(
            run=cpb.RunRequest(prompt=PROMPT, models=["m1", "m2"], preset="nope"))])))
        assert stream_err is not None and violations(stream_err) == {"run.preset": expected}
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await jpb_grpc.JuryServiceStub(m.channel).Evaluate(
                jpb.EvaluateRequest(question="q", answer="a", preset="nope"))
        assert violations(err.value) == {"preset": expected}


async def test_the_cli_names_a_preset(preset_mesh) -> None:
    async with preset_mesh(sim(*JURY_RULES, *RULES, models=MODELS), services=("inference", "compare", "jury")) as m:
        at = ("--target", target(m))
        compared = await run_cli("compare", PROMPT, "--preset", "capitals", "--reference", "Paris", *at)
        judged = await run_cli("--json", "jury", "--question", "q", "--answer", JURY_ANSWER,
                               "--preset", "weighted-panel", "--unary", *at)
        unknown = await run_cli("jury", "--answer", "a", "--preset", "nope", *at)
    assert compared.code == 0, compared.err
    assert [row.split()[:3] for row in compared.out.splitlines()[1:4]] == [["1", "m1", "1"], ["2", "m2", "0.5"],
                                                                          ["3", "m3", "0.25"]]
    assert judged.code == 0, judged.err
    assert sorted(v["juror"] for v in json.loads(judged.out)["verdicts"]) == ["kind", "strict"]
    assert unknown.code == 1 and "evaluate.preset: unknown preset 'nope'; available: capitals" in unknown.err
