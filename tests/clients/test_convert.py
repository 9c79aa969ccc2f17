"""Keyword arguments → request messages: short enum names, message pairs, Nones, and clear errors."""

from __future__ import annotations

import pytest

from llmmesh_client import collaboration_pb2, inference_pb2, judge_pb2, jury_pb2, planexecute_pb2
from llmmesh_client.config import ClientConfig, Deadlines
from llmmesh_client.convert import build, enum_choices, enum_value


def test_short_enum_names_nested_dicts_and_pairs() -> None:
    jury = build(jury_pb2.EvaluateRequest, {"answer": "4", "aggregation": "majority-vote", "quorum": None,
                                            "panel": [{"model": "m", "weight": 2}]})
    assert jury.aggregation == jury_pb2.AGGREGATION_MAJORITY_VOTE and jury.panel[0].weight == 2
    assert not jury.HasField("quorum")  # None leaves an optional field unset

    turn = build(inference_pb2.ChatTurn, {"messages": [("system", "be brief"), {"role": "user", "content": "hi"},
                                                       inference_pb2.Message(role=inference_pb2.ROLE_ASSISTANT)]})
    assert [m.role for m in turn.messages] == [inference_pb2.ROLE_SYSTEM, inference_pb2.ROLE_USER,
                                               inference_pb2.ROLE_ASSISTANT]

    decision = build(planexecute_pb2.PlanDecision, {"action": "edit", "edited_plan": {"steps": [
        {"id": "s1", "kind": "tool", "tool": "calculator", "arguments": {"expression": "1+1"}}]}})
    step = decision.edited_plan.steps[0]
    assert decision.action == planexecute_pb2.PLAN_DECISION_ACTION_EDIT and step.kind == planexecute_pb2.STEP_KIND_TOOL
    assert step.arguments["expression"] == "1+1"  # Struct values pass through untouched

    assert build(judge_pb2.EvaluateRequest, {"mode": "JUDGE_MODE_PAIRWISE"}).mode == judge_pb2.JUDGE_MODE_PAIRWISE
    assert build(judge_pb2.EvaluateRequest, {"mode": 1}).mode == judge_pb2.JUDGE_MODE_POINTWISE


def test_mistakes_are_reported_clearly() -> None:
    with pytest.raises(ValueError, match="round-robin, debate, mixture-of-agents"):
        build(collaboration_pb2.RunRequest, {"strategy": "chaos"})
    with pytest.raises(TypeError, match="EvaluateRequest has no field 'answr'"):
        build(judge_pb2.EvaluateRequest, {"answr": "x"})
    with pytest.raises(TypeError, match="takes a sequence"):
        build(inference_pb2.EmbedRequest, {"inputs": "one string"})
    assert enum_choices(jury_pb2.Aggregation.DESCRIPTOR) == ["mean", "median", "majority-vote", "weighted-mean"]
    assert enum_value(inference_pb2.Role.DESCRIPTOR, "Tool") == inference_pb2.ROLE_TOOL


def test_client_options() -> None:
    config = ClientConfig.build("h:1", {"timeout": 5, "api_key": "", "tls": True})
    assert config.deadlines == Deadlines.uniform(5) and config.api_key is None and config.tls is not None
    assert ClientConfig.build("h:1", {}).deadlines.session == Deadlines().session
    with pytest.raises(TypeError, match="unknown client option"):
        ClientConfig.build("h:1", {"api_token": "x"})  # type: ignore[typeddict-unknown-key]
