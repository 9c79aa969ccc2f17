"""What a good result is, per pattern: one definition for the benchmark and tests/realmodel.

`check(task, result)` takes a result as the REST face returns it (a gRPC reply through
MessageToDict with proto field names gives the same) and tells
- whether it is *valid*: the pattern's own shape, and a usable answer: the model's text, not empty,
  not a degenerate loop, not a JSON key, a JSON document or a placeholder;
- whether it is *correct*, where the task labels something (tasks.yaml's `expect`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llmmesh.patterns.answer_text import is_placeholder
from llmmesh.patterns.repetition import is_degenerate

from .taskset import Task

# Near-loops the exact-repeat guard misses ("1. Bakery 2. Bakery 3. Bakery …"): long texts whose
# word trigrams are mostly repeats.
_MIN_WORDS_FOR_DIVERSITY = 30
_MIN_TRIGRAM_DIVERSITY = 0.35
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_CLOCK_TIME = re.compile(r"T(\d{2}):(\d{2})")


@dataclass(frozen=True)
class Check:
    problems: tuple[str, ...]  # why the result is not valid; empty: valid
    misses: tuple[str, ...]  # the labelled properties that do not hold
    labelled: bool  # the task labels something

    @property
    def success(self) -> bool:
        return not self.problems

    @property
    def correct(self) -> bool | None:
        """None when nothing is labelled; an invalid result is never correct."""
        return (self.success and not self.misses) if self.labelled else None


def degenerate(text: str) -> bool:
    if is_degenerate(text):
        return True
    words = re.findall(r"[^\W\d_]+", text.lower())  # letters only: list numbering does not make a loop new
    if len(words) < _MIN_WORDS_FOR_DIVERSITY:
        return False
    trigrams = list(zip(words, words[1:], words[2:], strict=False))
    return len(set(trigrams)) / len(trigrams) < _MIN_TRIGRAM_DIVERSITY


def text_problem(what: str, text: Any) -> str:
    """Why `text` is not a usable answer, or "" if it is."""
    if not isinstance(text, str) or not text.strip():
        return f"{what} is empty"
    if is_placeholder(text):
        return f"{what} is a placeholder: {text.strip()[:40]!r}"
    if text.strip()[0] in "{[":
        try:
            json.loads(text)
        except ValueError:
            pass
        else:
            return f"{what} is a JSON document, not text: {text.strip()[:60]!r}"
    if degenerate(text):
        return f"{what} is a degenerate loop: {text.strip()[:60]!r}…"
    return ""


def numbers_in(text: str) -> list[float]:
    out = []
    for m in _NUMBER.findall(text):
        try:
            out.append(float(m.replace(",", "").rstrip(".")))
        except ValueError:
            continue
    return out


def mentions_number(text: str, n: float) -> bool:
    return any(abs(v - n) < 1e-6 * max(1.0, abs(n)) for v in numbers_in(text))


# ---- per pattern: the problems of a result ------------------------------------------------------

def _in_range(result: dict[str, Any], key: str, lo: float, hi: float) -> list[str]:
    value = result.get(key)
    if not isinstance(value, int | float) or not lo <= value <= hi:
        return [f"{key} {value!r} is not within [{lo:g}, {hi:g}]"]
    return []


def _pairwise(task: Task) -> bool:
    return task.request.get("mode") == "JUDGE_MODE_PAIRWISE"


def _verdict(r: dict[str, Any]) -> str:
    """The result's verdict as the task set labels it: VERDICT_PASS → pass, VERDICT_A → a."""
    return str(r.get("verdict", "")).removeprefix("VERDICT_").lower()


def _judge(task: Task, r: dict[str, Any]) -> list[str]:
    problems = [] if r.get("judge") else ["the result does not name the judge model"]
    if _pairwise(task):
        orders = r.get("pairwise", {}).get("orders", [])
        if _verdict(r) not in ("a", "b", "tie"):
            problems.append(f"pairwise verdict {r.get('verdict')!r} is not a, b or tie")
        if [o.get("order") for o in orders] != ["a,b", "b,a"]:
            problems.append(f"pairwise orders {[o.get('order') for o in orders]} are not both orders")
        texts = [o.get("reasoning", "") for o in orders]
    else:
        if _verdict(r) not in ("pass", "fail"):
            problems.append(f"verdict {r.get('verdict')!r} is not pass or fail")
        problems += _in_range(r, "score", r.get("min_score", 0), r.get("max_score", 0))
        texts = [r.get("reasoning", "")]
    problems += [p for p in (text_problem("reasoning", t) for t in texts) if p]
    return problems


def _jury(task: Task, r: dict[str, Any]) -> list[str]:
    problems = _in_range(r, "score", 0, 1)
    if _verdict(r) not in ("pass", "fail"):
        problems.append(f"verdict {r.get('verdict')!r} is not pass or fail")
    answered = [v for v in r.get("verdicts", []) if not v.get("error")]
    if not answered or len(answered) < r.get("quorum", 1):
        problems.append(f"{len(answered)} juror(s) answered, fewer than the quorum {r.get('quorum')}")
    return problems


def _tooluse(task: Task, r: dict[str, Any]) -> list[str]:
    problems = []
    if r.get("stop_reason") != "STOP_REASON_ANSWERED":
        problems.append(f"stopped by {r.get('stop_reason')!r}, not with an answer")
    calls = [c.get("call_id") for c in r.get("calls", [])]
    if calls != [x.get("call_id") for x in r.get("results", [])]:
        problems.append("the tool calls and their results do not match")
    return problems + [p for p in [text_problem("answer", r.get("answer"))] if p]


def _planexecute(task: Task, r: dict[str, Any]) -> list[str]:
    steps = r.get("plan", {}).get("steps", [])
    problems = [] if steps else ["the result has no plan"]
    final = r.get("plan", {}).get("revision", 0)
    failed = [s.get("step_id") for s in r.get("steps", [])
              if s.get("plan_revision", 0) == final and s.get("status") != "STEP_STATUS_SUCCEEDED"]
    if failed:
        problems.append(f"steps {failed} of the final plan did not succeed")
    return problems + [p for p in [text_problem("answer", r.get("answer"))] if p]


def _reflection(task: Task, r: dict[str, Any]) -> list[str]:
    history = r.get("history", [])
    problems = [] if history and r.get("rounds") == len(history) else ["rounds and history disagree"]
    problems += _in_range(r, "final_score", 0, 10)
    return problems + [p for p in [text_problem("final draft", r.get("final_draft"))] if p]


def _collaboration(task: Task, r: dict[str, Any]) -> list[str]:
    problems = [] if r.get("transcript") else ["the result has no transcript"]
    problems += [p for p in [text_problem("answer", r.get("answer"))] if p]
    if r.get("strategy") == "STRATEGY_DEBATE":
        problems += _debate(r)
    names = {a.get("name") for a in task.request.get("agents", [])}
    if r.get("answer", "").strip() in names:
        problems.append(f"the answer is an agent's name: {r.get('answer')!r}")
    return problems


def _debate(r: dict[str, Any]) -> list[str]:
    """A debate answers with the winning argument's text; the moderator's verdict is apart."""
    verdict = r.get("verdict") or {}
    winner, answer = verdict.get("winner", ""), r.get("answer", "").strip()
    if not winner:
        return ["a debate result names no winner"]
    said = [t.get("content", "") for t in r.get("transcript", []) if t.get("agent") == winner]
    if not said:
        return [f"the winner {winner!r} never spoke"]
    if not answer or not any(answer in text for text in said):
        return [f"the answer is not the winner {winner!r}'s argument: {answer[:60]!r}"]
    return [p for p in [text_problem("the moderator's rationale", verdict.get("rationale"))] if p]


VALIDATORS: dict[str, Callable[[Task, dict[str, Any]], list[str]]] = {
    "judge": _judge, "jury": _jury, "tooluse": _tooluse, "planexecute": _planexecute,
    "reflection": _reflection, "collaboration": _collaboration,
}


# ---- labels --------------------------------------------------------------------------------------

def answer_text(pattern: str, r: dict[str, Any]) -> str:
    return {"reflection": r.get("final_draft"), "judge": r.get("reasoning")}.get(pattern, r.get("answer")) or ""


def tool_outputs(pattern: str, r: dict[str, Any], tool: str) -> list[str]:
    """Outputs of the successful calls of `tool` in a run."""
    if pattern == "tooluse":
        return [x.get("output", "") for x in r.get("results", []) if x.get("name") == tool and not x.get("error")]
    if pattern == "planexecute":
        ids = {s.get("id") for s in r.get("plan", {}).get("steps", []) if s.get("tool") == tool}
        return [s.get("output", "") for s in r.get("steps", [])
                if s.get("step_id") in ids and s.get("status") == "STEP_STATUS_SUCCEEDED"]
    return []


def _echo_misses(kind: str, answer: str, outputs: list[str]) -> list[str]:
    """The answer repeats the clock's time (HH:MM, 24- or 12-hour) or weekday."""
    said = []
    for out in outputs:
        try:
            data = json.loads(out)
        except ValueError:
            continue
        if kind == "weekday":
            said.append(data.get("weekday", ""))
        elif m := _CLOCK_TIME.search(data.get("datetime", "")):
            h, mm = int(m.group(1)), m.group(2)
            said += [f"{h:02d}:{mm}", f"{h}:{mm}", f"{(h - 1) % 12 + 1}:{mm}"]
    if not any(s and s.lower() in answer.lower() for s in said):
        return [f"the answer does not repeat the clock's {kind} ({', '.join(sorted(set(said))) or 'no output'})"]
    return []


def _misses(task: Task, r: dict[str, Any]) -> list[str]:
    e, out = task.expect, []
    if "verdict" in e and _verdict(r) != e["verdict"]:
        out.append(f"verdict {_verdict(r)!r}, expected {e['verdict']!r}")
    if "winner" in e and _verdict(r) != e["winner"]:
        out.append(f"winner {_verdict(r)!r}, expected {e['winner']!r}")
    outputs = tool_outputs(task.pattern, r, e["tool"]) if "tool" in e else []
    if "tool" in e and not outputs:
        out.append(f"no successful {e['tool']} call")
    elif "tool" in e and "number" in e and not any(mentions_number(o, e["number"]) for o in outputs):
        out.append(f"no {e['tool']} call returned {e['number']}: {outputs}")  # the number came from the model
    answer = answer_text(task.pattern, r)
    if "number" in e and not mentions_number(answer, e["number"]):
        out.append(f"the answer does not contain {e['number']}: {answer[:80]!r}")
    if "echo" in e:
        out += _echo_misses(e["echo"], answer, outputs)
    return out


def check(task: Task, result: dict[str, Any]) -> Check:
    return Check(tuple(VALIDATORS[task.pattern](task, result)), tuple(_misses(task, result)), bool(task.expect))
