"""Plan-and-execute's graph rules (`planexecute.plan.check`), which every plan about to run must
pass, a human's edit included: ids, kinds, tools, dependencies and cycles, each reported at its
field path; and `{step_id}` references and their substitution."""

from __future__ import annotations

import pytest

from llmmesh.planexecute.plan import Plan, Step, StepKind, check, references, substitute


def model(sid: str, *deps: str, description: str = "Think") -> Step:
    return Step(sid, description, StepKind.MODEL, depends_on=deps)


def tool(sid: str, name: str = "calculator", *deps: str) -> Step:
    return Step(sid, "Compute", StepKind.TOOL, name, {"expression": "1 + 1"}, deps)


def problems(*steps: Step, done: tuple[str, ...] = (), max_steps: int = 4) -> dict[str, str]:
    found = check(Plan(steps), tools=("calculator",), max_steps=max_steps, max_chars=20, done=done)
    return {v.field: v.description for v in found}


def test_a_valid_plan_has_no_problems() -> None:
    assert problems(tool("s1"), model("s2", "s1"), model("s3", "s1", "s2")) == {}


@pytest.mark.parametrize(("steps", "field", "words"), [
    ((), "steps", "at least one step"),
    ((model("a"), model("b"), model("c")), "steps", "has 3 steps; the limit is 2"),
    ((model("no spaces"),), "steps[0].id", "letters, digits"),
    ((model("a"), model("a")), "steps[1].id", "'a' is already the id of steps[0]"),
    ((model("s1"),), "steps[0].id", "'s1' is the id of a completed step"),
    ((model("a", description="  "),), "steps[0].description", "is required"),
    ((model("a", description="x" * 21),), "steps[0].description", "is 21 characters; the limit is 20"),
    ((Step("a", "Do", None),), "steps[0].kind", "STEP_KIND_MODEL or STEP_KIND_TOOL"),
    ((tool("a", "shell"),), "steps[0].tool", "unknown tool 'shell'; this run offers: calculator"),
    ((tool("a", ""),), "steps[0].tool", "must name its tool"),
    ((model("a", "a"),), "steps[0].depends_on[0]", "cannot depend on itself"),
    ((model("a"), model("b", "a", "zz")), "steps[1].depends_on[1]", "no step has the id 'zz'"),
])
def test_each_rule_is_reported_at_its_field(steps: tuple[Step, ...], field: str, words: str) -> None:
    found = problems(*steps, done=("s1",), max_steps=2)
    assert words in found[field], found


def test_every_problem_is_reported_at_once() -> None:
    assert set(problems(model("a"), model("a", description=""), tool("b", "shell", "nope"))) == {
        "steps[1].id", "steps[1].description", "steps[2].tool", "steps[2].depends_on[0]"}


def test_a_step_may_depend_on_a_completed_step_but_not_reuse_its_id() -> None:
    assert problems(model("s3", "s1"), done=("s1",)) == {}


def test_a_cycle_is_reported_with_its_path_at_the_dependency_that_closes_it() -> None:
    found = problems(model("a", "c"), model("b", "a"), model("c", "b"), model("d", "a"))
    assert found == {"steps[0].depends_on[0]": "dependencies form a cycle: a -> c -> b -> a"}


def test_cycles_are_looked_for_only_once_the_ids_are_sound() -> None:
    # The unknown id is the problem to fix first; the cycle through it does not exist yet.
    assert set(problems(model("a", "b", "x"), model("b", "a"))) == {"steps[0].depends_on[1]"}


def test_paths_carry_the_prefix_of_where_the_plan_came_from() -> None:
    found = check(Plan((model("a", "a"),)), tools=(), max_steps=4, max_chars=20, prefix="decision.edited_plan.")
    assert [v.field for v in found] == ["decision.edited_plan.steps[0].depends_on[0]"]


def test_references_are_found_once_each_in_order_through_nested_values() -> None:
    value = {"expression": "{s2} * {s1}", "notes": ["{s1} again", {"deep": "{s3}"}], "n": 3, "t": "{not id!}"}
    assert references(value) == ["s2", "s1", "s3"]


def test_substitution_fills_known_results_and_leaves_unknown_braces_alone() -> None:
    value = {"expression": "{s1} + {s9}", "list": ["{s1}"], "n": 3}
    assert substitute(value, {"s1": "42"}) == {"expression": "42 + {s9}", "list": ["42"], "n": 3}
